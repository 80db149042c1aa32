import { randomBytes, randomUUID } from 'node:crypto';
import { eq, sql } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import t from 'tap';
import { products } from '../../app/products/model.js';
import type { Product } from '../../app/products/schema.js';
import { build } from '../helpers/app.js';
import { createProduct, orderRequest, uniqueSku } from '../helpers/catalog.js';
import { createAdmin, createUser } from '../helpers/users.js';

/** app.products (createProductsService) as the app wires it, including its read-through cache. */

const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const hex = () => randomBytes(4).toString('hex');

type Fields = Partial<{ sku: string; name: string; priceCents: number; stock: number }>;
const newProduct = (app: FastifyInstance, fields: Fields = {}) =>
  app.products.create({ sku: uniqueSku('svc'), name: 'Service Test', priceCents: 1000, stock: 10, ...fields });

async function storedRow(app: FastifyInstance, id: string) {
  const [row] = await app.db.select().from(products).where(eq(products.id, id));
  return row;
}

/**
 * Runs `action` and reports how the cache counters moved meanwhile. Errors must not move: a store
 * that failed would look like a miss and hide a broken cache.
 */
async function counted<T>(app: FastifyInstance, action: () => Promise<T>) {
  const before = app.cache.stats();
  const result = await action();
  const after = app.cache.stats();
  return {
    result,
    hits: after.hits - before.hits,
    misses: after.misses - before.misses,
    errors: after.errors - before.errors,
  };
}

const getProduct = (app: FastifyInstance, id: string) => app.inject({ method: 'GET', url: `/v1/products/${id}` });

t.test('create, get, list', async (t) => {
  const app = await build(t);

  t.test('create returns the product with version 1 and ISO timestamps', async (t) => {
    const sku = uniqueSku('create');
    const product = await app.products.create({ sku, name: 'Lamp', priceCents: 4999, stock: 7 });
    t.match(product, { sku, name: 'Lamp', description: null, priceCents: 4999, stock: 7, version: 1 });
    t.match(product.id, /^[0-9a-f-]{36}$/);
    t.match(product.createdAt, ISO_UTC);
    t.match(product.updatedAt, ISO_UTC);
    t.notOk('deletedAt' in product, 'soft deletion stays internal');
    t.match(await storedRow(app, product.id), { sku, priceCents: 4999, stock: 7, version: 1, deletedAt: null });

    const described = await newProduct(app, { name: 'With text' });
    t.equal(described.description, null);
    const withText = await app.products.create({ sku: uniqueSku(), name: 'D', description: 'Bright', priceCents: 1, stock: 1 });
    t.equal(withText.description, 'Bright');
  });

  t.test('get returns what create stored; an unknown id is NOT_FOUND', async (t) => {
    const product = await newProduct(app);
    t.same(await app.products.get(product.id), product);
    await t.rejects(app.products.get(randomUUID()), { code: 'NOT_FOUND', statusCode: 404 });
  });

  t.test('list pages through the live products', async (t) => {
    const tag = hex();
    const cheap = await newProduct(app, { name: `${tag} cheap`, priceCents: 10 });
    const dear = await newProduct(app, { name: `${tag} dear`, priceCents: 90 });
    t.same(await app.products.list({ q: tag, sort: '-price', limit: 10, offset: 0 }), {
      items: [dear, cheap],
      total: 2,
      limit: 10,
      offset: 0,
    });
    t.same(await app.products.list({ q: tag, sort: 'price', limit: 1, offset: 1 }), { items: [dear], total: 2, limit: 1, offset: 1 });
  });
});

t.test('sku uniqueness: SKU_TAKEN', async (t) => {
  const app = await build(t);

  t.test('a duplicate sku is SKU_TAKEN; nothing is written', async (t) => {
    const first = await newProduct(app);
    await t.rejects(newProduct(app, { sku: first.sku }), { code: 'SKU_TAKEN', statusCode: 409 });
    const [{ n } = { n: -1 }] = await app.db
      .select({ n: sql<number>`count(*)::int` })
      .from(products)
      .where(eq(products.sku, first.sku));
    t.equal(n, 1);
  });

  t.test('5 concurrent creates of one sku: exactly one wins, the others are SKU_TAKEN', async (t) => {
    const sku = uniqueSku('race');
    const results = await Promise.allSettled([1, 2, 3, 4, 5].map((i) => newProduct(app, { sku, name: `Racer ${i}` })));
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    t.equal(won.length, 1, 'one create wins');
    t.equal(lost.length, 4);
    for (const r of lost) t.match(r.reason, { code: 'SKU_TAKEN', statusCode: 409 }, 'the others are SKU_TAKEN, not a 500');
    const [{ n } = { n: -1 }] = await app.db
      .select({ n: sql<number>`count(*)::int` })
      .from(products)
      .where(eq(products.sku, sku));
    t.equal(n, 1, 'one row in the database');
  });

  t.test('updating to a taken sku is SKU_TAKEN; keeping its own sku is fine', async (t) => {
    const a = await newProduct(app);
    const b = await newProduct(app);
    await t.rejects(app.products.update(b.id, { version: 1, sku: a.sku }), { code: 'SKU_TAKEN', statusCode: 409 });
    t.match(await storedRow(app, b.id), { sku: b.sku, version: 1 }, 'b is unchanged');
    t.match(await app.products.update(a.id, { version: 1, sku: a.sku, name: 'Same sku' }), { sku: a.sku, version: 2 });
  });

  t.test('two concurrent renames to one new sku: one wins, the other is SKU_TAKEN', async (t) => {
    const sku = uniqueSku('rename');
    const [a, b] = [await newProduct(app), await newProduct(app)];
    const results = await Promise.allSettled([a, b].map((p) => app.products.update(p.id, { version: 1, sku })));
    t.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    t.equal(lost.length, 1);
    t.match(lost[0]?.reason, { code: 'SKU_TAKEN', statusCode: 409 });
  });

  t.test('the sku of a removed product can be used again', async (t) => {
    const gone = await newProduct(app);
    await app.products.remove(gone.id);
    const again = await newProduct(app, { sku: gone.sku });
    t.not(again.id, gone.id);
  });
});

t.test('update and remove', async (t) => {
  const app = await build(t);

  t.test('update applies the patch and bumps the version', async (t) => {
    const product = await newProduct(app, { priceCents: 100 });
    const updated = await app.products.update(product.id, { version: 1, priceCents: 150, description: 'New text' });
    t.match(updated, { id: product.id, sku: product.sku, name: product.name, priceCents: 150, description: 'New text', version: 2 });
    t.ok(updated.updatedAt >= product.updatedAt);
    const cleared = await app.products.update(product.id, { version: 2, description: null });
    t.match(cleared, { description: null, version: 3 });
  });

  t.test('a stale version is VERSION_CONFLICT and changes nothing', async (t) => {
    const product = await newProduct(app, { priceCents: 100 });
    await app.products.update(product.id, { version: 1, priceCents: 200 });
    await t.rejects(app.products.update(product.id, { version: 1, priceCents: 1 }), { code: 'VERSION_CONFLICT', statusCode: 409 });
    await t.rejects(app.products.update(product.id, { version: 5, priceCents: 1 }), { code: 'VERSION_CONFLICT' }, 'a future one too');
    t.match(await storedRow(app, product.id), { priceCents: 200, version: 2 });
    t.match(await app.products.get(product.id), { priceCents: 200, version: 2 });
  });

  t.test('concurrent updates with one version: exactly one wins', async (t) => {
    const product = await newProduct(app);
    const results = await Promise.allSettled([1, 2, 3, 4].map((i) => app.products.update(product.id, { version: 1, stock: i })));
    t.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    for (const r of results.filter((r): r is PromiseRejectedResult => r.status === 'rejected')) {
      t.match(r.reason, { code: 'VERSION_CONFLICT' });
    }
    t.equal((await storedRow(app, product.id))?.version, 2);
  });

  t.test('an unknown product is NOT_FOUND for update and remove', async (t) => {
    await t.rejects(app.products.update(randomUUID(), { version: 1, name: 'X' }), { code: 'NOT_FOUND', statusCode: 404 });
    await t.rejects(app.products.remove(randomUUID()), { code: 'NOT_FOUND', statusCode: 404 });
  });

  t.test('remove soft-deletes: get, list and update stop seeing it; the row stays', async (t) => {
    const tag = hex();
    const product = await newProduct(app, { name: `${tag} doomed` });
    await app.products.remove(product.id);
    await t.rejects(app.products.get(product.id), { code: 'NOT_FOUND' });
    t.same(await app.products.list({ q: tag, limit: 20, offset: 0 }), { items: [], total: 0, limit: 20, offset: 0 });
    await t.rejects(app.products.update(product.id, { version: 2, name: 'Ghost' }), { code: 'NOT_FOUND' });
    await t.rejects(app.products.remove(product.id), { code: 'NOT_FOUND' }, 'removing twice is NOT_FOUND');
    const row = await storedRow(app, product.id);
    t.type(row?.deletedAt, Date, 'the row is kept, marked deleted');
  });
});

for (const embedded of [false, true]) {
  t.test(`the product cache (${embedded ? 'embedded stand-in' : 'Redis'})`, async (t) => {
    const app = await build(t, { embedded });
    const admin = await createAdmin(app);
    const buyer = await createUser(app, 'buyer');

    t.test('GET (miss) → PATCH price → GET shows the new price; a second GET is a hit', async (t) => {
      const product = await createProduct(app, admin, { priceCents: 1250, stock: 10 });

      const first = await counted(app, () => getProduct(app, product.id));
      t.equal(first.result.statusCode, 200);
      t.equal((first.result.json() as Product).priceCents, 1250);
      t.match(first, { hits: 0, misses: 1, errors: 0 }, 'the first read is a miss');

      const second = await counted(app, () => getProduct(app, product.id));
      t.same(second.result.json(), first.result.json(), 'the same product');
      t.match(second, { hits: 1, misses: 0, errors: 0 }, 'the second read is served from the cache');

      // Behind the service's back the database changes; the cached copy is still what is served.
      await app.db.update(products).set({ name: 'Changed behind the cache' }).where(eq(products.id, product.id));
      const cached = await counted(app, () => getProduct(app, product.id));
      t.equal((cached.result.json() as Product).name, 'Test product', 'the cached copy, not the database row');
      t.match(cached, { hits: 1, misses: 0 });

      const patch = await app.inject({
        method: 'PATCH',
        url: `/v1/products/${product.id}`,
        headers: admin.auth,
        payload: { version: 1, priceCents: 2000 },
      });
      t.equal(patch.statusCode, 200, patch.body);

      const after = await counted(app, () => getProduct(app, product.id));
      t.match(after.result.json(), { priceCents: 2000, version: 2, name: 'Changed behind the cache' }, 'the new price at once');
      t.match(after, { hits: 0, misses: 1, errors: 0 }, 'the PATCH invalidated the entry');

      const again = await counted(app, () => getProduct(app, product.id));
      t.match(again.result.json(), { priceCents: 2000, version: 2 });
      t.match(again, { hits: 1, misses: 0 }, 'and the new value is cached');
    });

    t.test('a stock change made by an order (and its cancellation) is seen at once', async (t) => {
      const product = await createProduct(app, admin, { stock: 10 });
      await getProduct(app, product.id);
      const warm = await counted(app, () => getProduct(app, product.id));
      t.match(warm, { hits: 1, misses: 0 }, 'the product is cached');
      t.equal((warm.result.json() as Product).stock, 10);

      const order = await app.inject(orderRequest(buyer, [{ productId: product.id, quantity: 3 }], `cache-${hex()}`));
      t.equal(order.statusCode, 201, order.body);

      const afterOrder = await counted(app, () => getProduct(app, product.id));
      t.match(afterOrder.result.json(), { stock: 7, version: 2 }, 'GET shows the stock the order left');
      t.match(afterOrder, { hits: 0, misses: 1 }, 'the order invalidated the entry');

      const cancel = await app.inject({
        method: 'POST',
        url: `/v1/orders/${(order.json() as { id: string }).id}/cancel`,
        headers: buyer.auth,
      });
      t.equal(cancel.statusCode, 200, cancel.body);
      t.match((await getProduct(app, product.id)).json(), { stock: 10 }, 'the cancellation put the stock back, visibly');
    });

    t.test('after DELETE, GET is 404 even though the product was cached', async (t) => {
      const product = await createProduct(app, admin);
      await getProduct(app, product.id);
      const warm = await counted(app, () => getProduct(app, product.id));
      t.match(warm, { hits: 1 }, 'the product is cached');

      const removed = await app.inject({ method: 'DELETE', url: `/v1/products/${product.id}`, headers: admin.auth });
      t.equal(removed.statusCode, 204);

      const gone = await getProduct(app, product.id);
      t.equal(gone.statusCode, 404, gone.body);
      t.equal((gone.json() as { code: string }).code, 'NOT_FOUND');
      t.equal((await getProduct(app, product.id)).statusCode, 404, 'and stays 404: a miss is not cached as the old row');
      await t.rejects(app.products.get(product.id), { code: 'NOT_FOUND' });
    });

    t.test('service writes invalidate too: update, remove, afterStockChange', async (t) => {
      const product = await newProduct(app, { priceCents: 500, stock: 5 });
      await app.products.get(product.id);
      t.match(await counted(app, () => app.products.get(product.id)), { hits: 1, misses: 0 });

      await app.products.update(product.id, { version: 1, name: 'Renamed' });
      t.match(await counted(app, () => app.products.get(product.id)), { result: { name: 'Renamed' }, misses: 1 });

      // A stock move inside another service's transaction is invalidated by afterStockChange.
      await app.db.transaction((tx) => app.products.stock.take({ productId: product.id, quantity: 2 }, tx));
      await app.products.afterStockChange([product.id]);
      t.match(await counted(app, () => app.products.get(product.id)), { result: { stock: 3, version: 3 }, misses: 1 });

      await app.products.remove(product.id);
      await t.rejects(app.products.get(product.id), { code: 'NOT_FOUND' });
    });

    t.test('a reader never sees the old price once a PATCH has returned', async (t) => {
      const product = await createProduct(app, admin, { priceCents: 0 });
      let version = 1;
      for (let price = 1; price <= 15; price += 1) {
        // A read racing the write may load either value; the read after it must see the new one.
        const [, patched] = await Promise.all([
          getProduct(app, product.id),
          app.inject({
            method: 'PATCH',
            url: `/v1/products/${product.id}`,
            headers: admin.auth,
            payload: { version, priceCents: price },
          }),
          getProduct(app, product.id),
        ]);
        t.equal(patched.statusCode, 200);
        version += 1;
        const seen = (await getProduct(app, product.id)).json() as Product;
        if (seen.priceCents !== price) t.fail(`round ${price}: GET after the PATCH returned price ${seen.priceCents}`);
      }
      t.match((await getProduct(app, product.id)).json(), { priceCents: 15, version: 16 });
    });

    if (!embedded) {
      t.test('the Redis cache is shared: a write on one instance is seen by the other at once', async (t) => {
        const other = await build(t);
        const product = await createProduct(app, admin, { priceCents: 100, stock: 5 });
        await getProduct(app, product.id);
        t.match(await counted(other, () => getProduct(other, product.id)), { hits: 1, misses: 0 }, 'the other instance hits');

        const patch = await other.inject({
          method: 'PATCH',
          url: `/v1/products/${product.id}`,
          headers: admin.auth,
          payload: { version: 1, priceCents: 300 },
        });
        t.equal(patch.statusCode, 200, patch.body);
        t.match((await getProduct(app, product.id)).json(), { priceCents: 300 }, 'the first instance sees the new price');

        const order = await other.inject(orderRequest(buyer, [{ productId: product.id, quantity: 5 }]));
        t.equal(order.statusCode, 201, order.body);
        t.match((await getProduct(app, product.id)).json(), { stock: 0 }, 'and the stock the other instance took');
      });
    }
  });
}
