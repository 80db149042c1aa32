import { randomBytes, randomUUID } from 'node:crypto';
import t, { type Test } from 'tap';
import type { Product } from '../../app/products/schema.js';
import { build } from '../helpers/app.js';
import { createProduct, uniqueSku } from '../helpers/catalog.js';
import { expectError, expectValidation, ISO_UTC, type Page } from '../helpers/http.js';
import { createAdmin, createUser, type TestUser } from '../helpers/users.js';

/** /v1/products as api.md writes it, through app.inject(), on PostgreSQL + Redis and on the embedded defaults. */

const tag = (prefix = 'p') => `${prefix}${randomBytes(3).toString('hex')}`;

/** A product as api.md describes it. */
function expectProduct(t: Test, product: Product, expected: Partial<Product>) {
  t.match(product, expected);
  t.same(Object.keys(product).sort(), ['createdAt', 'description', 'id', 'name', 'priceCents', 'sku', 'stock', 'updatedAt', 'version']);
  t.match(product.id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  t.match(product.createdAt, ISO_UTC);
  t.match(product.updatedAt, ISO_UTC);
}

const auth = (user?: TestUser) => (user ? user.auth : {});

for (const embedded of [false, true]) {
  t.test(embedded ? 'embedded (PGlite, stand-ins)' : 'PostgreSQL + Redis', async (t) => {
    const app = await build(t, { embedded });
    const admin = await createAdmin(app);
    const user = await createUser(app, 'shopper');

    const get = (url: string, who?: TestUser) => app.inject({ method: 'GET', url, headers: auth(who) });
    const post = (payload: unknown, who?: TestUser) =>
      app.inject({ method: 'POST', url: '/v1/products', headers: auth(who), payload: payload as object });
    const patch = (id: string, payload: unknown, who?: TestUser) =>
      app.inject({ method: 'PATCH', url: `/v1/products/${id}`, headers: auth(who), payload: payload as object });
    const remove = (id: string, who?: TestUser) => app.inject({ method: 'DELETE', url: `/v1/products/${id}`, headers: auth(who) });
    const page = async (url: string) => {
      const response = await get(url);
      if (response.statusCode !== 200) throw new Error(`GET ${url}: ${response.statusCode} ${response.body}`);
      return response.json() as Page<Product>;
    };
    /** How many live products have `name` exactly; proves a refused write left nothing behind. */
    const countNamed = async (name: string) => (await page(`/v1/products?q=${encodeURIComponent(name)}`)).total;

    t.test('GET /v1/products (public list)', async (t) => {
      const label = tag('List');
      // Created in the order b, a, c; prices make yet another order.
      const b = await createProduct(app, admin, { name: `${label} Bravo`, priceCents: 300 });
      const a = await createProduct(app, admin, { name: `${label} Alpha`, priceCents: 500 });
      const c = await createProduct(app, admin, { name: `${label} Charlie`, priceCents: 100 });

      t.test('the page shape {items,total,limit,offset} with the defaults, no token needed', async (t) => {
        const response = await get('/v1/products');
        t.equal(response.statusCode, 200, response.body);
        const body = response.json() as Page<Product>;
        t.same(Object.keys(body).sort(), ['items', 'limit', 'offset', 'total']);
        t.equal(body.limit, 20, 'default limit 20');
        t.equal(body.offset, 0, 'default offset 0');
        t.ok(body.total >= 3, 'total counts every live product');
        t.equal(body.items.length, Math.min(body.total, 20));
        for (const item of body.items) expectProduct(t, item, {});
        t.ok(response.headers['x-request-id'], 'an x-request-id header');
      });

      t.test('?q= searches the name, wildcards literally', async (t) => {
        const found = await page(`/v1/products?q=${label}&sort=name`);
        t.same(found.items.map((p) => p.id), [a.id, b.id, c.id]);
        t.equal(found.total, 3);
        t.same(found.items[0], a, 'items are whole products');
        t.equal((await page(`/v1/products?q=${label.toLowerCase()}`)).total, 3, 'case-insensitively');
        t.equal((await page(`/v1/products?q=${tag('nobody')}`)).total, 0);
        t.equal((await page(`/v1/products?q=${encodeURIComponent(`${label}%`)}`)).total, 0, '% is not a wildcard');
        t.equal((await page(`/v1/products?q=${encodeURIComponent(`${label.slice(0, -1)}_`)}`)).total, 0, '_ is not a wildcard');
      });

      t.test('?sort= price, name, createdAt, both ways', async (t) => {
        const order = async (sort: string) => (await page(`/v1/products?q=${label}&sort=${sort}`)).items.map((p) => p.id);
        t.same(await order('price'), [c.id, b.id, a.id], 'price');
        t.same(await order('-price'), [a.id, b.id, c.id], '-price');
        t.same(await order('name'), [a.id, b.id, c.id], 'name');
        t.same(await order('-name'), [c.id, b.id, a.id], '-name');
        t.same(await order('createdAt'), [b.id, a.id, c.id], 'createdAt');
        t.same(await order('-createdAt'), [c.id, a.id, b.id], '-createdAt');
      });

      t.test('?limit= and ?offset= page through the matches', async (t) => {
        const second = await page(`/v1/products?q=${label}&sort=price&limit=1&offset=1`);
        t.same({ ids: second.items.map((p) => p.id), total: second.total, limit: second.limit, offset: second.offset }, {
          ids: [b.id],
          total: 3,
          limit: 1,
          offset: 1,
        });
        const past = await page(`/v1/products?q=${label}&offset=3`);
        t.same({ items: past.items, total: past.total }, { items: [], total: 3 });
        t.equal((await get('/v1/products?limit=100')).statusCode, 200, 'limit=100 accepted');
      });

      t.test('bad limit, offset, sort or an unknown parameter → 400 VALIDATION_ERROR', async (t) => {
        expectValidation(t, await get('/v1/products?limit=0'), 'limit');
        expectValidation(t, await get('/v1/products?limit=101'), 'limit');
        expectValidation(t, await get('/v1/products?limit=ten'), 'limit');
        expectValidation(t, await get('/v1/products?limit=1.5'), 'limit');
        expectValidation(t, await get('/v1/products?offset=-1'), 'offset');
        expectValidation(t, await get('/v1/products?offset=x'), 'offset');
        expectValidation(t, await get('/v1/products?sort=stock'), 'sort');
        expectValidation(t, await get('/v1/products?sort=priceCents'), 'sort');
        expectValidation(t, await get('/v1/products?sort=--price'), 'sort');
        expectValidation(t, await get('/v1/products?q='), 'q');
        expectValidation(t, await get('/v1/products?sku=x'), 'sku');
      });
    });

    t.test('GET /v1/products/:id', async (t) => {
      const product = await createProduct(app, admin, { name: 'Readable', priceCents: 777, stock: 4, description: 'Text' });

      t.test('200 the product, public', async (t) => {
        const response = await get(`/v1/products/${product.id}`);
        t.equal(response.statusCode, 200, response.body);
        expectProduct(t, response.json() as Product, { ...product });
        t.same(response.json(), (await get(`/v1/products/${product.id}`)).json(), 'a cached read answers the same');
      });

      t.test('unknown id → 404 NOT_FOUND; malformed id → 400', async (t) => {
        expectError(t, await get(`/v1/products/${randomUUID()}`), 404, 'NOT_FOUND');
        expectValidation(t, await get('/v1/products/not-a-uuid'), 'id');
        expectValidation(t, await get('/v1/products/123'), 'id');
        expectValidation(t, await get(`/v1/products/${product.id}x`), 'id');
      });
    });

    t.test('POST /v1/products', async (t) => {
      const valid = () => ({ sku: uniqueSku('post'), name: tag('Posted'), priceCents: 1999, stock: 3 });

      t.test('admin → 201 with version 1; readable afterwards', async (t) => {
        const input = { ...valid(), description: 'Hand made' };
        const response = await post(input, admin);
        t.equal(response.statusCode, 201, response.body);
        const created = response.json() as Product;
        expectProduct(t, created, { ...input, version: 1 });
        t.same((await get(`/v1/products/${created.id}`)).json(), created);

        const plain = await post(valid(), admin);
        t.equal(plain.statusCode, 201);
        t.equal((plain.json() as Product).description, null, 'no description → null');
        const free = await post({ ...valid(), priceCents: 0, stock: 0 }, admin);
        t.equal(free.statusCode, 201, 'price 0 and stock 0 are allowed');
      });

      t.test('duplicate sku → 409 SKU_TAKEN', async (t) => {
        const first = valid();
        t.equal((await post(first, admin)).statusCode, 201);
        const second = { ...valid(), sku: first.sku };
        const body = expectError(t, await post(second, admin), 409, 'SKU_TAKEN');
        t.match(body.message, first.sku);
        t.equal(await countNamed(second.name), 0, 'the second product was not written');
      });

      t.test('5 concurrent POSTs of one sku: one 201, four 409 SKU_TAKEN', async (t) => {
        const sku = uniqueSku('race');
        const name = tag('Racer');
        const answers = await Promise.all([1, 2, 3, 4, 5].map(() => post({ ...valid(), sku, name }, admin)));
        t.same(answers.map((a) => a.statusCode).sort(), [201, 409, 409, 409, 409]);
        for (const answer of answers.filter((a) => a.statusCode === 409)) expectError(t, answer, 409, 'SKU_TAKEN');
        t.equal(await countNamed(name), 1, 'one product exists');
      });

      t.test('invalid bodies → 400 and nothing is written', async (t) => {
        const cases: [string, Record<string, unknown>, string][] = [
          ['negative priceCents', { priceCents: -1 }, 'priceCents'],
          ['float priceCents', { priceCents: 12.5 }, 'priceCents'],
          ['priceCents as a string', { priceCents: '100' }, 'priceCents'],
          ['negative stock', { stock: -1 }, 'stock'],
          ['float stock', { stock: 0.5 }, 'stock'],
          ['bad sku', { sku: 'has space' }, 'sku'],
          ['empty name', { name: '' }, 'name'],
          ['unknown field', { colour: 'red' }, 'colour'],
          ['a version of its own', { version: 7 }, 'version'],
          ['priceCents over int4', { priceCents: 2_147_483_648 }, 'priceCents'],
          ['stock over int4', { stock: 2_147_483_648 }, 'stock'],
        ];
        for (const [what, change, field] of cases) {
          const input = { ...valid(), ...change };
          t.test(what, async (t) => {
            expectValidation(t, await post(input, admin), field);
            if (typeof input.name === 'string' && input.name) t.equal(await countNamed(input.name), 0, 'not written');
          });
        }
        for (const field of ['sku', 'name', 'priceCents', 'stock'] as const) {
          t.test(`missing ${field}`, async (t) => {
            const input: Record<string, unknown> = valid();
            delete input[field];
            expectValidation(t, await post(input, admin), field);
          });
        }
      });

      t.test('non-admin → 403 FORBIDDEN; no token → 401 UNAUTHORIZED; nothing is written', async (t) => {
        const input = valid();
        expectError(t, await post(input, user), 403, 'FORBIDDEN');
        expectError(t, await post(input), 401, 'UNAUTHORIZED');
        expectError(t, await app.inject({ method: 'POST', url: '/v1/products', headers: { authorization: 'Bearer junk' }, payload: input }), 401);
        t.equal(await countNamed(input.name), 0);
        t.equal((await post(input, admin)).statusCode, 201, 'the sku was not taken by the refused attempts');
      });
    });

    t.test('PATCH /v1/products/:id', async (t) => {
      t.test('admin → 200 with version + 1; GET shows the change', async (t) => {
        const product = await createProduct(app, admin, { priceCents: 1000 });
        const response = await patch(product.id, { version: 1, priceCents: 1500, name: 'Patched' }, admin);
        t.equal(response.statusCode, 200, response.body);
        expectProduct(t, response.json() as Product, { id: product.id, sku: product.sku, priceCents: 1500, name: 'Patched', version: 2 });
        t.match((await get(`/v1/products/${product.id}`)).json(), { priceCents: 1500, name: 'Patched', version: 2 });

        const next = await patch(product.id, { version: 2, stock: 0, description: null }, admin);
        t.match(next.json(), { stock: 0, description: null, version: 3 });
      });

      t.test('stale version → 409 VERSION_CONFLICT and the product is unchanged', async (t) => {
        const product = await createProduct(app, admin, { priceCents: 1000 });
        t.equal((await patch(product.id, { version: 1, priceCents: 1100 }, admin)).statusCode, 200);
        expectError(t, await patch(product.id, { version: 1, priceCents: 1 }, admin), 409, 'VERSION_CONFLICT');
        expectError(t, await patch(product.id, { version: 9, priceCents: 1 }, admin), 409, 'VERSION_CONFLICT');
        t.match((await get(`/v1/products/${product.id}`)).json(), { priceCents: 1100, version: 2 }, 'unchanged');
      });

      t.test('duplicate sku → 409 SKU_TAKEN and the product is unchanged', async (t) => {
        const a = await createProduct(app, admin);
        const b = await createProduct(app, admin);
        expectError(t, await patch(b.id, { version: 1, sku: a.sku }, admin), 409, 'SKU_TAKEN');
        t.match((await get(`/v1/products/${b.id}`)).json(), { sku: b.sku, version: 1 });
        t.equal((await patch(a.id, { version: 1, sku: a.sku }, admin)).statusCode, 200, 'its own sku is not taken');
      });

      t.test('invalid bodies → 400', async (t) => {
        const product = await createProduct(app, admin);
        expectValidation(t, await patch(product.id, { priceCents: 5 }, admin), 'version');
        expectValidation(t, await patch(product.id, { name: 'x', version: '1' }, admin), 'version');
        expectError(t, await patch(product.id, { version: 1 }, admin), 400, 'VALIDATION_ERROR');
        expectError(t, await patch(product.id, {}, admin), 400, 'VALIDATION_ERROR');
        expectValidation(t, await patch(product.id, { version: 1, priceCents: -1 }, admin), 'priceCents');
        expectValidation(t, await patch(product.id, { version: 1, stock: 1.5 }, admin), 'stock');
        expectValidation(t, await patch(product.id, { version: 1, name: 'x', colour: 'red' }, admin), 'colour');
        t.match((await get(`/v1/products/${product.id}`)).json(), { version: 1, name: product.name }, 'nothing changed');
      });

      t.test('unknown id → 404; malformed id → 400; non-admin → 403; no token → 401', async (t) => {
        const product = await createProduct(app, admin);
        expectError(t, await patch(randomUUID(), { version: 1, name: 'x' }, admin), 404, 'NOT_FOUND');
        expectValidation(t, await patch('not-a-uuid', { version: 1, name: 'x' }, admin), 'id');
        expectError(t, await patch(product.id, { version: 1, name: 'x' }, user), 403, 'FORBIDDEN');
        expectError(t, await patch(product.id, { version: 1, name: 'x' }), 401, 'UNAUTHORIZED');
        t.match((await get(`/v1/products/${product.id}`)).json(), { version: 1, name: product.name });
      });
    });

    t.test('DELETE /v1/products/:id', async (t) => {
      t.test('admin → 204; then GET 404 and not in the list', async (t) => {
        const name = tag('Doomed');
        const product = await createProduct(app, admin, { name });
        t.equal((await get(`/v1/products/${product.id}`)).statusCode, 200, 'read (and cached) before');

        const response = await remove(product.id, admin);
        t.equal(response.statusCode, 204, response.body);
        t.equal(response.body, '', 'no body');

        expectError(t, await get(`/v1/products/${product.id}`), 404, 'NOT_FOUND');
        t.equal(await countNamed(name), 0, 'not in the list');
        expectError(t, await patch(product.id, { version: 2, name: 'Ghost' }, admin), 404, 'NOT_FOUND');
        expectError(t, await remove(product.id, admin), 404, 'NOT_FOUND');
        t.equal((await post({ sku: product.sku, name: 'Reborn', priceCents: 1, stock: 1 }, admin)).statusCode, 201, 'its sku is free again');
      });

      t.test('unknown id → 404; malformed → 400; non-admin → 403; no token → 401', async (t) => {
        const product = await createProduct(app, admin);
        expectError(t, await remove(randomUUID(), admin), 404, 'NOT_FOUND');
        expectValidation(t, await remove('not-a-uuid', admin), 'id');
        expectError(t, await remove(product.id, user), 403, 'FORBIDDEN');
        expectError(t, await remove(product.id), 401, 'UNAUTHORIZED');
        t.equal((await get(`/v1/products/${product.id}`)).statusCode, 200, 'still there');
      });
    });
  });
}
