import type { FastifyInstance } from 'fastify';
import type { New__Entity__Row } from '../../app/__entity_folder__/model.js';
import type { Create__Entity__, __Entity__ } from '../../app/__entity_folder__/schema.js';
import type { TestUser } from '../helpers/users.js';

/** Values for the __entities_label__ tests, one entry per field: change them together with the fields. */

/** A complete create body; each value differs with `i` (0, 1, 2) and a sortable one grows with it. */
export const valid = (i = 0): Create__Entity__ => ({
  __sample_values__
});

/** The same values as the table holds them. */
export const validRow = (i = 0): New__Entity__Row => ({
  __sample_row_values__
});

/** The fields a create must carry, and the ones it may leave out (null in responses). */
export const requiredFields: (keyof Create__Entity__)[] = [__required_fields__];
export const optionalFields: (keyof Create__Entity__)[] = [__optional_fields__];

/** A create body with the required fields only. */
export const requiredOnly = (i = 0): Create__Entity__ =>
  Object.fromEntries(requiredFields.map((f) => [f, valid(i)[f]])) as Create__Entity__;

/** A name that is not a field: unknown fields are rejected. */
export const UNKNOWN_FIELD = '__unknown_field__';

/** Per field, request values its rule refuses, and what is wrong with each. */
export const invalidValues: [field: keyof Create__Entity__, value: unknown, why: string][] = [
  __invalid_values__
];

/** The table's own columns: information_schema data type and nullability. */
export const columns: Record<string, { data_type: string; is_nullable: 'YES' | 'NO' }> = {
  __expected_columns__
};

/** The response fields, in any order. */
export const responseKeys = ['createdAt', 'id', 'updatedAt', 'version', ...requiredFields, ...optionalFields].sort();

/** Creates __a_entity_label__ through the admin API. */
export async function create__Entity__(
  app: FastifyInstance,
  admin: TestUser,
  input: Create__Entity__ = valid(),
): Promise<__Entity__> {
  const response = await app.inject({ method: 'POST', url: '/v1/__entities_route__', headers: admin.auth, payload: input });
  if (response.statusCode !== 201) throw new Error(`create __entity_label__ failed: ${response.statusCode} ${response.body}`);
  return response.json() as __Entity__;
}
