import t from 'tap';
import { Value } from 'typebox/value';
import {
  CreateProductSchema,
  PatchProductSchema,
  ProductListQuerySchema,
  ProductPageSchema,
  ProductSchema,
  productSortFields,
} from '../../app/products/schema.js';
import { errorsOf } from '../helpers/schema.js';

/** Pure unit tests of the products DTOs: what a route accepts and what it refuses, before any code runs. */

const valid = { sku: 'ABC-123', name: 'A product', priceCents: 1250, stock: 10 };
const MAX_INT = 2_147_483_647;

const without = <T extends object>(value: T, field: keyof T) =>
  Object.fromEntries(Object.entries(value).filter(([key]) => key !== field));

t.test('CreateProductSchema', async (t) => {
  t.ok(Value.Check(CreateProductSchema, valid), 'a complete product is accepted');
  t.ok(Value.Check(CreateProductSchema, { ...valid, description: 'Nice' }), 'with a description');
  t.ok(Value.Check(CreateProductSchema, { ...valid, description: '' }), 'an empty description');

  t.test('sku: a letter or digit, then letters, digits, . _ -; up to 64 characters', async (t) => {
    for (const sku of ['A', '9', 'abc', 'a.b_c-d', 'SKU-0001', `a${'b'.repeat(63)}`]) {
      t.ok(Value.Check(CreateProductSchema, { ...valid, sku }), `'${sku}' is accepted`);
    }
    for (const sku of ['', '-abc', '.abc', '_abc', 'a b', 'a/b', 'a%b', 'é', 'abc\n', `a${'b'.repeat(64)}`]) {
      t.notOk(Value.Check(CreateProductSchema, { ...valid, sku }), `'${JSON.stringify(sku)}' is refused`);
      t.match(errorsOf(CreateProductSchema, { ...valid, sku }), [{ path: '/sku' }], `'${JSON.stringify(sku)}' blames /sku`);
    }
    t.notOk(Value.Check(CreateProductSchema, { ...valid, sku: 123 }), 'a number is not a sku');
  });

  t.test('name: 1..200 characters', async (t) => {
    t.ok(Value.Check(CreateProductSchema, { ...valid, name: 'n' }), 'one character');
    t.ok(Value.Check(CreateProductSchema, { ...valid, name: 'n'.repeat(200) }), '200 characters');
    t.notOk(Value.Check(CreateProductSchema, { ...valid, name: '' }), 'empty');
    t.match(errorsOf(CreateProductSchema, { ...valid, name: '' }), [{ keyword: 'minLength', path: '/name' }]);
    t.notOk(Value.Check(CreateProductSchema, { ...valid, name: 'n'.repeat(201) }), '201 characters');
    t.match(errorsOf(CreateProductSchema, { ...valid, name: 'n'.repeat(201) }), [{ keyword: 'maxLength', path: '/name' }]);
  });

  t.test('description: up to 2000 characters, a string', async (t) => {
    t.ok(Value.Check(CreateProductSchema, { ...valid, description: 'd'.repeat(2000) }));
    t.notOk(Value.Check(CreateProductSchema, { ...valid, description: 'd'.repeat(2001) }));
    t.notOk(Value.Check(CreateProductSchema, { ...valid, description: null }), 'null is only for a patch');
  });

  t.test('priceCents and stock: integers >= 0 within int4', async (t) => {
    for (const field of ['priceCents', 'stock'] as const) {
      t.ok(Value.Check(CreateProductSchema, { ...valid, [field]: 0 }), `${field} 0`);
      t.ok(Value.Check(CreateProductSchema, { ...valid, [field]: MAX_INT }), `${field} ${MAX_INT}`);
      t.notOk(Value.Check(CreateProductSchema, { ...valid, [field]: -1 }), `${field} -1`);
      t.match(errorsOf(CreateProductSchema, { ...valid, [field]: -1 }), [{ keyword: 'minimum', path: `/${field}` }]);
      t.notOk(Value.Check(CreateProductSchema, { ...valid, [field]: 1.5 }), `${field} 1.5`);
      t.match(errorsOf(CreateProductSchema, { ...valid, [field]: 1.5 }), [{ path: `/${field}` }]);
      t.notOk(Value.Check(CreateProductSchema, { ...valid, [field]: MAX_INT + 1 }), `${field} over int4`);
      t.notOk(Value.Check(CreateProductSchema, { ...valid, [field]: '10' }), `${field} as a string`);
      t.notOk(Value.Check(CreateProductSchema, { ...valid, [field]: null }), `${field} null`);
    }
  });

  t.test('every field but description is required', async (t) => {
    for (const field of ['sku', 'name', 'priceCents', 'stock'] as const) {
      t.notOk(Value.Check(CreateProductSchema, without(valid, field)), `without ${field}`);
      t.match(errorsOf(CreateProductSchema, without(valid, field)), [{ keyword: 'required' }]);
    }
  });

  t.test('rejects unknown fields', async (t) => {
    for (const extra of [{ version: 1 }, { id: '7f1c8c3e-4a51-4d6e-9b8a-2f4e6d8c0a11' }, { deletedAt: null }, { price: 10 }]) {
      t.notOk(Value.Check(CreateProductSchema, { ...valid, ...extra }), `${Object.keys(extra)[0]}`);
      t.ok(errorsOf(CreateProductSchema, { ...valid, ...extra }).some((e) => e.keyword === 'additionalProperties'));
    }
  });
});

t.test('PatchProductSchema', async (t) => {
  t.test('version plus at least one field', async (t) => {
    t.ok(Value.Check(PatchProductSchema, { version: 1, name: 'New' }), 'version and name');
    t.ok(Value.Check(PatchProductSchema, { version: 3, priceCents: 0 }), 'version and price 0');
    t.ok(Value.Check(PatchProductSchema, { version: 1, stock: 5 }), 'version and stock');
    t.ok(Value.Check(PatchProductSchema, { version: 1, sku: 'NEW-1' }), 'version and sku');
    t.ok(Value.Check(PatchProductSchema, { version: 1, description: null }), 'a description can be cleared with null');
    t.ok(Value.Check(PatchProductSchema, { version: 1, sku: 'X', name: 'N', description: 'D', priceCents: 1, stock: 1 }));

    t.notOk(Value.Check(PatchProductSchema, { version: 1 }), 'version alone changes nothing');
    t.match(errorsOf(PatchProductSchema, { version: 1 }), [{ keyword: 'minProperties' }]);
    t.notOk(Value.Check(PatchProductSchema, {}), 'empty');
    t.notOk(Value.Check(PatchProductSchema, { name: 'New' }), 'without version');
    t.match(errorsOf(PatchProductSchema, { name: 'New', priceCents: 5 }), [{ keyword: 'required' }]);
  });

  t.test('version is an integer >= 1', async (t) => {
    t.notOk(Value.Check(PatchProductSchema, { version: 0, name: 'N' }), 'version 0');
    t.notOk(Value.Check(PatchProductSchema, { version: -1, name: 'N' }), 'version -1');
    t.notOk(Value.Check(PatchProductSchema, { version: 1.5, name: 'N' }), 'version 1.5');
    t.notOk(Value.Check(PatchProductSchema, { version: '1', name: 'N' }), 'version as a string');
  });

  t.test('the field rules of a create apply', async (t) => {
    t.notOk(Value.Check(PatchProductSchema, { version: 1, priceCents: -1 }), 'negative price');
    t.notOk(Value.Check(PatchProductSchema, { version: 1, priceCents: 9.99 }), 'fractional price');
    t.notOk(Value.Check(PatchProductSchema, { version: 1, stock: -1 }), 'negative stock');
    t.notOk(Value.Check(PatchProductSchema, { version: 1, stock: 0.5 }), 'fractional stock');
    t.notOk(Value.Check(PatchProductSchema, { version: 1, name: '' }), 'empty name');
    t.notOk(Value.Check(PatchProductSchema, { version: 1, sku: '-bad' }), 'bad sku');
    t.notOk(Value.Check(PatchProductSchema, { version: 1, sku: null }), 'sku cannot be null');
    t.notOk(Value.Check(PatchProductSchema, { version: 1, name: null }), 'nor name');
  });

  t.test('rejects unknown fields', async (t) => {
    t.notOk(Value.Check(PatchProductSchema, { version: 1, name: 'N', id: '7f1c8c3e-4a51-4d6e-9b8a-2f4e6d8c0a11' }));
    t.notOk(Value.Check(PatchProductSchema, { version: 1, deletedAt: null }));
    t.ok(errorsOf(PatchProductSchema, { version: 1, name: 'N', colour: 'red' }).some((e) => e.keyword === 'additionalProperties'));
  });
});

t.test('ProductListQuerySchema', async (t) => {
  const page = { limit: 20, offset: 0 };
  t.ok(Value.Check(ProductListQuerySchema, page), 'limit and offset');

  t.test('sort is limited to the whitelist, ascending or descending', async (t) => {
    t.same([...productSortFields].sort(), ['createdAt', 'name', 'price']);
    for (const sort of ['price', '-price', 'name', '-name', 'createdAt', '-createdAt']) {
      t.ok(Value.Check(ProductListQuerySchema, { ...page, sort }), sort);
    }
    for (const sort of ['priceCents', 'stock', '-stock', 'sku', 'id', 'updatedAt', '--price', '+price', 'price,name', 'Price', '']) {
      t.notOk(Value.Check(ProductListQuerySchema, { ...page, sort }), `'${sort}' is refused`);
      t.match(errorsOf(ProductListQuerySchema, { ...page, sort }), [{ path: '/sort' }]);
    }
  });

  t.test('limit 1..100 and offset >= 0, integers; defaults 20 and 0', async (t) => {
    t.ok(Value.Check(ProductListQuerySchema, { limit: 1, offset: 0 }));
    t.ok(Value.Check(ProductListQuerySchema, { limit: 100, offset: 1000 }));
    t.notOk(Value.Check(ProductListQuerySchema, { limit: 0, offset: 0 }), 'limit 0');
    t.notOk(Value.Check(ProductListQuerySchema, { limit: 101, offset: 0 }), 'limit 101');
    t.notOk(Value.Check(ProductListQuerySchema, { limit: 20, offset: -1 }), 'offset -1');
    t.notOk(Value.Check(ProductListQuerySchema, { limit: 2.5, offset: 0 }), 'fractional limit');
    t.same(Value.Default(ProductListQuerySchema, {}), { limit: 20, offset: 0 });
  });

  t.test('q is 1..100 characters; unknown query fields are refused', async (t) => {
    t.ok(Value.Check(ProductListQuerySchema, { ...page, q: 'lamp' }));
    t.ok(Value.Check(ProductListQuerySchema, { ...page, q: '100%' }), 'wildcard characters are just text');
    t.notOk(Value.Check(ProductListQuerySchema, { ...page, q: '' }), 'empty q');
    t.notOk(Value.Check(ProductListQuerySchema, { ...page, q: 'q'.repeat(101) }), 'q over 100 characters');
    t.notOk(Value.Check(ProductListQuerySchema, { ...page, sku: 'ABC' }), 'unknown field');
  });
});

t.test('ProductSchema and ProductPageSchema', async (t) => {
  const product = {
    id: '7f1c8c3e-4a51-4d6e-9b8a-2f4e6d8c0a11',
    sku: 'ABC-1',
    name: 'A product',
    description: null,
    priceCents: 100,
    stock: 2,
    version: 1,
    createdAt: '2024-01-01T00:00:00.000Z',
    updatedAt: '2024-01-01T00:00:00.000Z',
  };
  t.same(Object.keys(ProductSchema.properties).sort(), [
    'createdAt',
    'description',
    'id',
    'name',
    'priceCents',
    'sku',
    'stock',
    'updatedAt',
    'version',
  ]);
  t.notOk('deletedAt' in ProductSchema.properties, 'soft deletion is internal');
  t.ok(Value.Check(ProductSchema, product), 'a product DTO with a null description');
  t.ok(Value.Check(ProductSchema, { ...product, description: 'Text' }), 'and with a description');
  t.notOk(Value.Check(ProductSchema, { ...product, id: 'not-a-uuid' }), 'a malformed id');
  t.notOk(Value.Check(ProductSchema, { ...product, createdAt: 'yesterday' }), 'a non-ISO timestamp');
  t.ok(Value.Check(ProductPageSchema, { items: [product], total: 1, limit: 20, offset: 0 }), 'a page');
  t.notOk(Value.Check(ProductPageSchema, { items: [product], total: -1, limit: 20, offset: 0 }), 'total is never negative');
  t.notOk(Value.Check(ProductPageSchema, { items: [product], total: 1 }), 'limit and offset are part of a page');
});
