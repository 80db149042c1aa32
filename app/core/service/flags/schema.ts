import Type, { type Static } from 'typebox';
import { TimestampSchema, UuidSchema } from '../../../schemas/common.js';

export const FlagKeySchema = Type.String({
  pattern: '^[a-z0-9][a-z0-9._-]{0,99}$',
  description: 'lowercase letters, digits, dot, dash, underscore; up to 100 characters',
});

export const FlagKeyParamsSchema = Type.Object({ key: FlagKeySchema }, { additionalProperties: false });

export const PutFlagSchema = Type.Object(
  {
    enabled: Type.Boolean(),
    rolloutPercent: Type.Integer({ minimum: 0, maximum: 100 }),
    allowUserIds: Type.Optional(Type.Array(UuidSchema, { maxItems: 1000, uniqueItems: true })),
    description: Type.Optional(Type.String({ maxLength: 500 })),
  },
  { additionalProperties: false },
);
export type PutFlag = Static<typeof PutFlagSchema>;

export const FlagSchema = Type.Object({
  key: Type.String(),
  enabled: Type.Boolean(),
  rolloutPercent: Type.Integer(),
  allowUserIds: Type.Array(Type.String()),
  description: Type.Union([Type.String(), Type.Null()]),
  version: Type.Integer(),
  createdAt: TimestampSchema,
  updatedAt: TimestampSchema,
});
export type Flag = Static<typeof FlagSchema>;

export const EvaluationSchema = Type.Record(Type.String(), Type.Boolean(), {
  description: 'every known flag, evaluated for the caller',
});
