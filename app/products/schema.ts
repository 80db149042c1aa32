import Type, { type Static } from 'typebox';
import { ListQuerySchema, PageSchema, SortSchema, TimestampSchema, UuidSchema } from '../schemas/common.js';

const MAX_INT = 2_147_483_647;

export const SkuSchema = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$', description: 'letters, digits, . _ -; up to 64' });
export const ProductNameSchema = Type.String({ minLength: 1, maxLength: 200 });
export const DescriptionSchema = Type.String({ maxLength: 2000 });
export const PriceCentsSchema = Type.Integer({ minimum: 0, maximum: MAX_INT, description: 'price in cents' });
export const StockSchema = Type.Integer({ minimum: 0, maximum: MAX_INT });

export const ProductSchema = Type.Object({
  id: UuidSchema,
  sku: Type.String(),
  name: Type.String(),
  description: Type.Union([Type.String(), Type.Null()]),
  priceCents: Type.Integer(),
  stock: Type.Integer(),
  version: Type.Integer(),
  createdAt: TimestampSchema,
  updatedAt: TimestampSchema,
});
export type Product = Static<typeof ProductSchema>;

export const CreateProductSchema = Type.Object(
  {
    sku: SkuSchema,
    name: ProductNameSchema,
    description: Type.Optional(DescriptionSchema),
    priceCents: PriceCentsSchema,
    stock: StockSchema,
  },
  { additionalProperties: false },
);
export type CreateProduct = Static<typeof CreateProductSchema>;

export const PatchProductSchema = Type.Object(
  {
    version: Type.Integer({ minimum: 1, maximum: MAX_INT, description: 'the version you read; a stale one gets 409 VERSION_CONFLICT' }),
    sku: Type.Optional(SkuSchema),
    name: Type.Optional(ProductNameSchema),
    description: Type.Optional(Type.Union([DescriptionSchema, Type.Null()])),
    priceCents: Type.Optional(PriceCentsSchema),
    stock: Type.Optional(StockSchema),
  },
  { additionalProperties: false, minProperties: 2 },
);
export type PatchProduct = Static<typeof PatchProductSchema>;

export const productSortFields = ['price', 'name', 'createdAt'] as const;
export const ProductListQuerySchema = ListQuerySchema({
  q: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'matches the name' })),
  sort: Type.Optional(SortSchema(productSortFields)),
});
export type ProductListQuery = Static<typeof ProductListQuerySchema>;

export const ProductPageSchema = PageSchema(ProductSchema);
