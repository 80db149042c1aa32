import t from 'tap';
import { Value } from 'typebox/value';
import {
  Create__Entity__Schema,
  Patch__Entity__Schema,
  __Entity__ListQuerySchema,
  __Entity__PageSchema,
  __Entity__Schema,
  __entity__SortFields,
} from '../../app/__entity_folder__/schema.js';
import { errorsOf } from '../helpers/schema.js';
import { invalidValues, optionalFields, requiredFields, responseKeys, UNKNOWN_FIELD, valid } from './fixtures.js';

/** Pure unit tests of the __entities_label__ DTOs: what a route accepts and what it refuses. */

const without = (value: object, field: string) => Object.fromEntries(Object.entries(value).filter(([key]) => key !== field));
const blames = (errors: { path: string }[], field: string) => errors.some((e) => e.path === `/${field}`);

t.test('Create__Entity__Schema', async (t) => {
  t.ok(Value.Check(Create__Entity__Schema, valid(0)), 'a complete body is accepted');
  t.ok(Value.Check(Create__Entity__Schema, valid(2)), 'with other values too');

  t.test('every required field must be present and not null', async (t) => {
    for (const field of requiredFields) {
      t.notOk(Value.Check(Create__Entity__Schema, without(valid(), field)), `without ${field}`);
      t.match(errorsOf(Create__Entity__Schema, without(valid(), field)), [{ keyword: 'required' }]);
      t.notOk(Value.Check(Create__Entity__Schema, { ...valid(), [field]: null }), `${field} null`);
    }
  });

  t.test('an optional field may be left out, but not sent as null', async (t) => {
    for (const field of optionalFields) {
      t.ok(Value.Check(Create__Entity__Schema, without(valid(), field)), `without ${field}`);
      t.notOk(Value.Check(Create__Entity__Schema, { ...valid(), [field]: null }), `${field} null (null only clears, in a patch)`);
    }
    t.ok(Value.Check(Create__Entity__Schema, Object.fromEntries(requiredFields.map((f) => [f, valid()[f]]))), 'required fields only');
  });

  t.test('each field refuses values outside its rule', async (t) => {
    for (const [field, value, why] of invalidValues) {
      const body = { ...valid(), [field]: value };
      t.notOk(Value.Check(Create__Entity__Schema, body), `${field}: ${why}`);
      t.ok(blames(errorsOf(Create__Entity__Schema, body), field), `${field}: ${why} blames /${field}`);
    }
  });

  t.test('unknown fields and the managed ones are refused', async (t) => {
    for (const extra of [{ [UNKNOWN_FIELD]: 1 }, { id: '7f1c8c3e-4a51-4d6e-9b8a-2f4e6d8c0a11' }, { version: 1 }, { deletedAt: null }]) {
      const errors = errorsOf(Create__Entity__Schema, { ...valid(), ...extra });
      t.ok(errors.some((e) => e.keyword === 'additionalProperties'), `${Object.keys(extra)[0]} is refused`);
    }
  });
});

t.test('Patch__Entity__Schema', async (t) => {
  const fields = [...requiredFields, ...optionalFields];

  t.test('version plus at least one field', async (t) => {
    for (const field of fields) {
      t.ok(Value.Check(Patch__Entity__Schema, { version: 1, [field]: valid(1)[field] }), `version and ${field}`);
    }
    t.ok(Value.Check(Patch__Entity__Schema, { version: 3, ...valid(2) }), 'version and every field');
    t.notOk(Value.Check(Patch__Entity__Schema, { version: 1 }), 'version alone changes nothing');
    t.match(errorsOf(Patch__Entity__Schema, { version: 1 }), [{ keyword: 'minProperties' }]);
    t.notOk(Value.Check(Patch__Entity__Schema, valid()), 'without version');
    t.ok(errorsOf(Patch__Entity__Schema, valid()).some((e) => e.keyword === 'required'));
  });

  t.test('version is an integer >= 1', async (t) => {
    for (const version of [0, -1, 1.5, '1', null]) {
      t.notOk(Value.Check(Patch__Entity__Schema, { ...valid(), version }), `version ${JSON.stringify(version)}`);
    }
  });

  t.test('null clears an optional field; a required one cannot be null', async (t) => {
    for (const field of optionalFields) t.ok(Value.Check(Patch__Entity__Schema, { version: 1, [field]: null }), `${field} null`);
    for (const field of requiredFields) t.notOk(Value.Check(Patch__Entity__Schema, { version: 1, [field]: null }), `${field} null`);
  });

  t.test('the field rules of a create apply', async (t) => {
    for (const [field, value, why] of invalidValues) {
      const body = { version: 1, [field]: value };
      t.notOk(Value.Check(Patch__Entity__Schema, body), `${field}: ${why}`);
      t.ok(blames(errorsOf(Patch__Entity__Schema, body), field), `${field}: ${why} blames /${field}`);
    }
  });

  t.test('unknown fields are refused', async (t) => {
    for (const extra of [{ [UNKNOWN_FIELD]: 1 }, { id: '7f1c8c3e-4a51-4d6e-9b8a-2f4e6d8c0a11' }, { deletedAt: null }]) {
      const errors = errorsOf(Patch__Entity__Schema, { version: 1, ...valid(), ...extra });
      t.ok(errors.some((e) => e.keyword === 'additionalProperties'), `${Object.keys(extra)[0]} is refused`);
    }
  });
});

t.test('__Entity__ListQuerySchema', async (t) => {
  const page = { limit: 20, offset: 0 };
  t.ok(Value.Check(__Entity__ListQuerySchema, page), 'limit and offset');
  t.same(Value.Default(__Entity__ListQuerySchema, {}), page, 'default limit 20 and offset 0');

  t.test('sort: createdAt and the sortable fields, ascending or descending', async (t) => {
    t.equal(__entity__SortFields[0], 'createdAt');
    for (const field of __entity__SortFields) {
      t.ok(Value.Check(__Entity__ListQuerySchema, { ...page, sort: field }), field);
      t.ok(Value.Check(__Entity__ListQuerySchema, { ...page, sort: `-${field}` }), `-${field}`);
    }
    for (const sort of ['id', 'updatedAt', 'version', UNKNOWN_FIELD, '--createdAt', '+createdAt', 'createdAt,id', '']) {
      t.notOk(Value.Check(__Entity__ListQuerySchema, { ...page, sort }), `'${sort}' is refused`);
      t.match(errorsOf(__Entity__ListQuerySchema, { ...page, sort }), [{ path: '/sort' }]);
    }
  });

  t.test('limit 1..100 and offset >= 0, integers; unknown parameters are refused', async (t) => {
    t.ok(Value.Check(__Entity__ListQuerySchema, { limit: 1, offset: 0 }));
    t.ok(Value.Check(__Entity__ListQuerySchema, { limit: 100, offset: 1000 }));
    for (const bad of [{ limit: 0 }, { limit: 101 }, { limit: 2.5 }, { offset: -1 }, { [UNKNOWN_FIELD]: 'x' }]) {
      t.notOk(Value.Check(__Entity__ListQuerySchema, { ...page, ...bad }), JSON.stringify(bad));
    }
  });
});

t.test('__Entity__Schema and __Entity__PageSchema', async (t) => {
  const item = {
    id: '7f1c8c3e-4a51-4d6e-9b8a-2f4e6d8c0a11',
    ...valid(),
    version: 1,
    createdAt: '2024-01-01T00:00:00.000Z',
    updatedAt: '2024-01-01T00:00:00.000Z',
  };
  t.same(Object.keys(__Entity__Schema.properties).sort(), responseKeys);
  t.notOk('deletedAt' in __Entity__Schema.properties, 'soft deletion stays internal');
  t.ok(Value.Check(__Entity__Schema, item), 'a complete item');
  for (const field of optionalFields) t.ok(Value.Check(__Entity__Schema, { ...item, [field]: null }), `${field} may be null`);
  for (const field of requiredFields) t.notOk(Value.Check(__Entity__Schema, { ...item, [field]: null }), `${field} is never null`);
  t.notOk(Value.Check(__Entity__Schema, { ...item, id: 'not-a-uuid' }), 'a malformed id');
  t.notOk(Value.Check(__Entity__Schema, { ...item, createdAt: 'yesterday' }), 'a non-ISO timestamp');
  t.ok(Value.Check(__Entity__PageSchema, { items: [item], total: 1, limit: 20, offset: 0 }), 'a page');
  t.notOk(Value.Check(__Entity__PageSchema, { items: [item], total: -1, limit: 20, offset: 0 }), 'total is never negative');
  t.notOk(Value.Check(__Entity__PageSchema, { items: [item], total: 1 }), 'limit and offset are part of a page');
});
