import type { TSchema } from 'typebox';
import { Value } from 'typebox/value';

/** The rule and the path of every error the value has against the schema. */
export const errorsOf = (schema: TSchema, value: unknown) =>
  [...Value.Errors(schema, value)].map((e) => ({ keyword: e.keyword, path: e.instancePath }));
