import Type, { type Static } from 'typebox';
import { ListQuerySchema, PageSchema, SortSchema, TimestampSchema, UuidSchema } from '../schemas/common.js';
import { orderStatuses } from './model.js';

export const OrderStatusSchema = Type.Enum(orderStatuses);

export const OrderItemInputSchema = Type.Object(
  { productId: UuidSchema, quantity: Type.Integer({ minimum: 1, maximum: 1000 }) },
  { additionalProperties: false },
);

export const CreateOrderSchema = Type.Object(
  { items: Type.Array(OrderItemInputSchema, { minItems: 1, maxItems: 50 }) },
  { additionalProperties: false },
);
export type CreateOrder = Static<typeof CreateOrderSchema>;

export const IdempotencyHeadersSchema = Type.Object({
  'idempotency-key': Type.String({
    minLength: 1,
    maxLength: 128,
    description: 'the same key from the same user returns the same order',
  }),
});

export const OrderItemSchema = Type.Object({
  productId: UuidSchema,
  quantity: Type.Integer(),
  unitPriceCents: Type.Integer(),
});

export const OrderSchema = Type.Object({
  id: UuidSchema,
  userId: UuidSchema,
  status: OrderStatusSchema,
  items: Type.Array(OrderItemSchema),
  totalCents: Type.Integer(),
  version: Type.Integer(),
  createdAt: TimestampSchema,
  updatedAt: TimestampSchema,
});
export type Order = Static<typeof OrderSchema>;

export const orderSortFields = ['createdAt', 'total'] as const;
export const OrderListQuerySchema = ListQuerySchema({
  userId: Type.Optional(Type.String({ format: 'uuid', description: 'admin only: orders of one user' })),
  status: Type.Optional(OrderStatusSchema),
  sort: Type.Optional(SortSchema(orderSortFields)),
});
export type OrderListQuery = Static<typeof OrderListQuerySchema>;

export const OrderPageSchema = PageSchema(OrderSchema);
