import Type, { type Static, type TSchema } from 'typebox';
import { ListQuerySchema, PageSchema, SortSchema, TimestampSchema, UuidSchema } from '../schemas/common.js';

const nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

/** The rule of each field of __a_entity_label__, shared by create and patch. */
const fields = {
  __field_rules__
};

export const __Entity__Schema = Type.Object({
  id: UuidSchema,
  __response_fields__
  version: Type.Integer(),
  createdAt: TimestampSchema,
  updatedAt: TimestampSchema,
});
export type __Entity__ = Static<typeof __Entity__Schema>;

export const Create__Entity__Schema = Type.Object(
  {
    __create_fields__
  },
  { additionalProperties: false },
);
export type Create__Entity__ = Static<typeof Create__Entity__Schema>;

/** A patch carries the version it read and at least one field; null clears an optional field. */
export const Patch__Entity__Schema = Type.Object(
  {
    version: Type.Integer({ minimum: 1, description: 'the version you read; a stale one gets 409 VERSION_CONFLICT' }),
    __patch_fields__
  },
  { additionalProperties: false, minProperties: 2 },
);
export type Patch__Entity__ = Static<typeof Patch__Entity__Schema>;

/** What `?sort=` may name; anything else is a 400. */
export const __entity__SortFields = [
  __sort_fields__
] as const;
export const __Entity__ListQuerySchema = ListQuerySchema({
  sort: Type.Optional(SortSchema(__entity__SortFields)),
});
export type __Entity__ListQuery = Static<typeof __Entity__ListQuerySchema>;

export const __Entity__PageSchema = PageSchema(__Entity__Schema);
