import Type, { type Static, type TSchema } from 'typebox';

/** DTO pieces shared by every entity: ids, timestamps, pagination, the error body. */

export const UuidSchema = Type.String({ format: 'uuid', description: 'UUID' });
export const TimestampSchema = Type.String({ format: 'date-time', description: 'ISO-8601 UTC timestamp' });

export const IdParamsSchema = Type.Object({ id: UuidSchema }, { additionalProperties: false });
export type IdParams = Static<typeof IdParamsSchema>;

export const PaginationQuerySchema = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
  // A maximum also keeps out `Infinity`, which Ajv's integer check lets through.
  offset: Type.Integer({ minimum: 0, maximum: 2_147_483_647, default: 0 }),
});

/** `?limit&offset` plus route-specific query fields; unknown query fields are rejected. */
export const ListQuerySchema = <P extends Record<string, TSchema>>(extra: P) =>
  Type.Object({ ...PaginationQuerySchema.properties, ...extra }, { additionalProperties: false });

/** `?sort=` limited to a route's whitelist; each field ascending or descending (`-field`). */
export const SortSchema = <F extends string>(fields: readonly F[]) =>
  Type.Enum(fields.flatMap((f) => [f, `-${f}`]) as (F | `-${F}`)[], {
    description: `sort by one of ${fields.join(', ')}; prefix with - for descending`,
  });

export const PageSchema = <T extends TSchema>(item: T) =>
  Type.Object({
    items: Type.Array(item),
    total: Type.Integer({ minimum: 0 }),
    limit: Type.Integer(),
    offset: Type.Integer(),
  });

export const ErrorSchema = Type.Object(
  {
    statusCode: Type.Integer(),
    code: Type.String({ description: 'stable UPPER_SNAKE error code' }),
    error: Type.String({ description: 'HTTP reason phrase' }),
    message: Type.String(),
    requestId: Type.String(),
    details: Type.Optional(
      Type.Array(
        Type.Object({
          field: Type.String(),
          rule: Type.String(),
          message: Type.String(),
        }),
      ),
    ),
  },
  { $id: 'Error', description: 'Every error answer has this shape' },
);
export type ErrorBody = Static<typeof ErrorSchema>;

/** Response schemas for the error statuses a route can answer with. */
export const errors = (...statuses: number[]) =>
  Object.fromEntries(statuses.map((s) => [s, ErrorSchema])) as Record<number, typeof ErrorSchema>;

/** For actions that take no input (POST /:id/cancel): no body, `{}` or `null`; any field is rejected. */
export const EmptyBodySchema = Type.Union([Type.Object({}, { additionalProperties: false }), Type.Null()], {
  description: 'no body, or an empty object',
});

export const NoContentSchema = Type.Null({ description: 'No content' });
