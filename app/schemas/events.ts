import Type, { type Static, type TSchema } from 'typebox';
import { TimestampSchema, UuidSchema } from './common.js';

/**
 * The JSON envelope of every Kafka message, produced or consumed (api.md). Extra fields are tolerated
 * (a producer may add its own), missing or mistyped ones are not.
 */
export const EnvelopeSchema = <D extends TSchema>(type: string, data: D) =>
  Type.Object({
    id: UuidSchema,
    type: Type.Literal(type),
    occurredAt: TimestampSchema,
    version: Type.Literal(1),
    correlationId: Type.Optional(Type.String({ maxLength: 128 })),
    data,
  });

export interface Envelope<T = unknown> {
  id: string;
  type: string;
  occurredAt: string;
  version: 1;
  correlationId?: string;
  data: T;
}

const OrderItemEventSchema = Type.Object({
  productId: UuidSchema,
  quantity: Type.Integer({ minimum: 1 }),
  unitPriceCents: Type.Integer({ minimum: 0 }),
});
const OrderStatusEventSchema = Type.Enum(['pending', 'paid', 'cancelled', 'shipped']);

/** Topics this service produces (through the outbox), with the schema of their `data`. */
export const producedTopics = {
  'users.registered.v1': Type.Object({ userId: UuidSchema, email: Type.String() }),
  'orders.created.v1': Type.Object({
    orderId: UuidSchema,
    userId: UuidSchema,
    items: Type.Array(OrderItemEventSchema),
    totalCents: Type.Integer({ minimum: 0 }),
  }),
  'orders.status-changed.v1': Type.Object({ orderId: UuidSchema, from: OrderStatusEventSchema, to: OrderStatusEventSchema }),
} as const;

/** Topics external producers feed to this service, with the schema of their `data`. */
export const consumedTopics = {
  'payments.completed.v1': Type.Object({
    orderId: UuidSchema,
    paymentId: Type.String({ minLength: 1, maxLength: 200 }),
    amountCents: Type.Integer({ minimum: 0 }),
  }),
  'payments.failed.v1': Type.Object({
    orderId: UuidSchema,
    paymentId: Type.String({ minLength: 1, maxLength: 200 }),
    reason: Type.String({ maxLength: 1000 }),
  }),
  'inventory.adjusted.v1': Type.Object({ sku: Type.String({ minLength: 1, maxLength: 64 }), delta: Type.Integer() }),
} as const;

export type ConsumedTopic = keyof typeof consumedTopics;
export type ConsumedData<T extends ConsumedTopic> = Static<(typeof consumedTopics)[T]>;

export type ProducedTopic = keyof typeof producedTopics;
export type EventData<T extends ProducedTopic> = Static<(typeof producedTopics)[T]>;
