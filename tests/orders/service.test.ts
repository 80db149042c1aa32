import { randomBytes, randomUUID } from 'node:crypto';
import { eq, inArray } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import t from 'tap';
import type { Actor } from '../../app/core/base/validator.js';
import { orderItems, orders } from '../../app/orders/model.js';
import { products } from '../../app/products/model.js';
import type { Product } from '../../app/products/schema.js';
import { build } from '../helpers/app.js';
import { createProduct } from '../helpers/catalog.js';
import { createAdmin, createUser, type TestUser } from '../helpers/users.js';

/** app.orders (createOrdersService) as the app wires it: real PostgreSQL, real Redis mutex, the products service. */

const key = () => `key-${randomBytes(6).toString('hex')}`;
const asActor = (user: TestUser, role: Actor['role'] = 'user'): Actor => ({ id: user.id, role });
/** An id that sorts after every real product id, so the lines before it are processed first. */
const LAST_ID = 'ffffffff-ffff-4fff-bfff-ffffffffffff';

async function stockOf(app: FastifyInstance, id: string): Promise<number> {
  const [row] = await app.db.select({ stock: products.stock }).from(products).where(eq(products.id, id));
  if (!row) throw new Error(`no product ${id}`);
  return row.stock;
}

async function ordersOf(app: FastifyInstance, userId: string) {
  return app.db.select().from(orders).where(eq(orders.userId, userId));
}

async function itemRowsOf(app: FastifyInstance, productIds: string[]) {
  return app.db.select().from(orderItems).where(inArray(orderItems.productId, productIds));
}

/** Two new products, returned in the order the service takes their stock (product id order). */
async function twoProducts(
  app: FastifyInstance,
  admin: TestUser,
  fields: { stock?: number; priceCents?: number } = {},
): Promise<[Product, Product]> {
  const made = [await createProduct(app, admin, fields), await createProduct(app, admin, fields)];
  made.sort((a, b) => a.id.localeCompare(b.id));
  return [made[0]!, made[1]!];
}

const app = await build(t);
const admin = await createAdmin(app);
const adminActor = asActor(admin, 'admin');

t.test('create', async (t) => {
  t.test('copies prices at order time and computes the total on the server', async (t) => {
    const buyer = await createUser(app, 'price');
    const [a, b] = await twoProducts(app, admin);
    await app.products.update(a.id, { version: a.version, priceCents: 1250 });
    await app.products.update(b.id, { version: b.version, priceCents: 399 });

    const { order, created } = await app.orders.create(
      asActor(buyer),
      {
        items: [
          { productId: b.id, quantity: 3 },
          { productId: a.id, quantity: 2 },
        ],
      },
      key(),
    );
    t.equal(created, true);
    t.match(order, { userId: buyer.id, status: 'pending', version: 1, totalCents: 2 * 1250 + 3 * 399 });
    t.same(
      [...order.items].sort((x, y) => x.productId.localeCompare(y.productId)),
      [
        { productId: a.id, quantity: 2, unitPriceCents: 1250 },
        { productId: b.id, quantity: 3, unitPriceCents: 399 },
      ],
    );

    // The catalog price changes afterwards: the order keeps what the buyer was charged.
    const current = await app.products.get(a.id);
    await app.products.update(a.id, { version: current.version, priceCents: 9999 });
    const again = await app.orders.get(asActor(buyer), order.id);
    t.equal(again.items.find((i) => i.productId === a.id)?.unitPriceCents, 1250, 'unitPriceCents is the price at order time');
    t.equal(again.totalCents, 2 * 1250 + 3 * 399, 'the total does not move either');
    t.equal(
      again.totalCents,
      again.items.reduce((sum, i) => sum + i.quantity * i.unitPriceCents, 0),
      'totalCents = sum of quantity x unitPriceCents',
    );
    const [row] = await app.db.select().from(orders).where(eq(orders.id, order.id));
    t.equal(row?.totalCents, 2 * 1250 + 3 * 399, 'as stored');
  });

  t.test('takes the stock of every product of the order', async (t) => {
    const buyer = await createUser(app, 'multi');
    const [a, b] = await twoProducts(app, admin, { stock: 10 });
    await app.products.get(a.id); // cached before the order
    await app.orders.create(
      asActor(buyer),
      {
        items: [
          { productId: a.id, quantity: 4 },
          { productId: b.id, quantity: 10 },
        ],
      },
      key(),
    );
    t.equal(await stockOf(app, a.id), 6);
    t.equal(await stockOf(app, b.id), 0, 'all of it may be taken');
    t.equal((await app.products.get(a.id)).stock, 6, 'the cached product is invalidated');
  });

  t.test('if one item lacks stock nothing at all is written', async (t) => {
    const buyer = await createUser(app, 'short');
    // The short product is the second one taken: the first one's stock was already taken when it fails.
    const [enough, short] = await twoProducts(app, admin, { stock: 10 });
    await app.products.get(enough.id);
    const attempt = app.orders.create(
      asActor(buyer),
      {
        items: [
          { productId: enough.id, quantity: 2 },
          { productId: short.id, quantity: 11 },
        ],
      },
      key(),
    );
    await t.rejects(attempt, { code: 'INSUFFICIENT_STOCK', statusCode: 409, message: new RegExp(short.id) });
    t.equal(await stockOf(app, enough.id), 10, 'the other product keeps its stock');
    t.equal(await stockOf(app, short.id), 10);
    t.equal((await app.products.get(enough.id)).stock, 10, 'as the catalog says');
    t.same(await ordersOf(app, buyer.id), [], 'no order row');
    t.same(await itemRowsOf(app, [enough.id, short.id]), [], 'no item rows');

    // The short product listed first fails the same way.
    const [first, second] = await twoProducts(app, admin, { stock: 1 });
    await t.rejects(
      app.orders.create(
        asActor(buyer),
        {
          items: [
            { productId: first.id, quantity: 2 },
            { productId: second.id, quantity: 1 },
          ],
        },
        key(),
      ),
      { code: 'INSUFFICIENT_STOCK' },
    );
    t.equal(await stockOf(app, second.id), 1);
    t.same(await ordersOf(app, buyer.id), []);
  });

  t.test('a failed attempt does not spend its key: the same key may be retried', async (t) => {
    const buyer = await createUser(app, 'retry');
    const product = await createProduct(app, admin, { stock: 1 });
    const k = key();
    await t.rejects(app.orders.create(asActor(buyer), { items: [{ productId: product.id, quantity: 2 }] }, k), {
      code: 'INSUFFICIENT_STOCK',
    });
    const { order, created } = await app.orders.create(asActor(buyer), { items: [{ productId: product.id, quantity: 1 }] }, k);
    t.equal(created, true);
    t.equal(order.items[0]?.quantity, 1);
    t.equal(await stockOf(app, product.id), 0);
  });

  t.test('an unknown product is UNKNOWN_PRODUCT and nothing is written', async (t) => {
    const buyer = await createUser(app, 'unknown');
    const product = await createProduct(app, admin, { stock: 5 });
    await t.rejects(
      app.orders.create(
        asActor(buyer),
        {
          items: [
            { productId: product.id, quantity: 1 },
            { productId: LAST_ID, quantity: 1 },
          ],
        },
        key(),
      ),
      { code: 'UNKNOWN_PRODUCT', statusCode: 422, message: new RegExp(LAST_ID) },
    );
    await t.rejects(app.orders.create(asActor(buyer), { items: [{ productId: randomUUID(), quantity: 1 }] }, key()), {
      code: 'UNKNOWN_PRODUCT',
    });
    t.equal(await stockOf(app, product.id), 5, 'the known product keeps its stock');
    t.same(await ordersOf(app, buyer.id), [], 'no order row');
    t.same(await itemRowsOf(app, [product.id]), []);
  });

  t.test('a soft-deleted product is UNKNOWN_PRODUCT and nothing is written', async (t) => {
    const buyer = await createUser(app, 'deleted');
    const [live, deleted] = await twoProducts(app, admin, { stock: 5 });
    await app.products.remove(deleted.id);
    await t.rejects(
      app.orders.create(
        asActor(buyer),
        {
          items: [
            { productId: live.id, quantity: 1 },
            { productId: deleted.id, quantity: 1 },
          ],
        },
        key(),
      ),
      { code: 'UNKNOWN_PRODUCT', statusCode: 422 },
    );
    await t.rejects(app.orders.create(asActor(buyer), { items: [{ productId: deleted.id, quantity: 1 }] }, key()), {
      code: 'UNKNOWN_PRODUCT',
    });
    t.equal(await stockOf(app, live.id), 5);
    t.equal(await stockOf(app, deleted.id), 5, 'a deleted product\'s stock is not taken');
    t.same(await ordersOf(app, buyer.id), []);
  });

  t.test('a product listed twice is BAD_REQUEST and nothing is written', async (t) => {
    const buyer = await createUser(app, 'twice');
    const product = await createProduct(app, admin, { stock: 5 });
    const line = { productId: product.id, quantity: 1 };
    await t.rejects(app.orders.create(asActor(buyer), { items: [line, line] }, key()), { code: 'BAD_REQUEST', statusCode: 400 });
    t.equal(await stockOf(app, product.id), 5);
    t.same(await ordersOf(app, buyer.id), []);
  });

  t.test('the same key again (one after the other): the same order, created false, stock taken once', async (t) => {
    const buyer = await createUser(app, 'idem');
    const product = await createProduct(app, admin, { stock: 10 });
    const k = key();
    const input = { items: [{ productId: product.id, quantity: 3 }] };
    const first = await app.orders.create(asActor(buyer), input, k);
    const second = await app.orders.create(asActor(buyer), input, k);
    const third = await app.orders.create(asActor(buyer), { items: [{ productId: product.id, quantity: 5 }] }, k);
    t.equal(first.created, true);
    t.equal(second.created, false, 'a repeat is not a creation');
    t.same(second.order, first.order, 'the repeat answers the first order');
    t.equal(third.created, false);
    t.same(third.order, first.order, 'even when the body differs, the key decides');
    t.equal(await stockOf(app, product.id), 7, 'stock taken once');
    t.equal((await ordersOf(app, buyer.id)).length, 1, 'one order row');
  });

  t.test('the same key from different users: two orders', async (t) => {
    const alice = await createUser(app, 'alice');
    const bob = await createUser(app, 'bob');
    const product = await createProduct(app, admin, { stock: 10 });
    const k = key();
    const input = { items: [{ productId: product.id, quantity: 2 }] };
    const a = await app.orders.create(asActor(alice), input, k);
    const b = await app.orders.create(asActor(bob), input, k);
    t.equal(a.created, true);
    t.equal(b.created, true, 'a key belongs to its user');
    t.not(a.order.id, b.order.id);
    t.equal(a.order.userId, alice.id);
    t.equal(b.order.userId, bob.id);
    t.equal(await stockOf(app, product.id), 6, 'each order took its stock');
  });
});

t.test('one order per key across two instances on one database', async (t) => {
  for (const [name, env] of [
    ['sharing the Redis mutex', {}],
    ['each with its in-process mutex: the unique index decides', { REDIS_URL: undefined }],
  ] as const) {
    t.test(name, async (t) => {
      const first = await build(t, { env });
      const second = await build(t, { env });
      const buyer = await createUser(app, 'instances');
      const product = await createProduct(app, admin, { stock: 100 });
      const k = key();
      const input = { items: [{ productId: product.id, quantity: 2 }] };
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) => (i % 2 ? second : first).orders.create(asActor(buyer), input, k)),
      );
      t.equal(new Set(results.map((r) => r.order.id)).size, 1, 'every answer is the same order');
      t.equal(results.filter((r) => r.created).length, 1, 'created once');
      t.equal(await stockOf(app, product.id), 98, 'stock taken once');
      t.equal((await ordersOf(app, buyer.id)).length, 1, 'one order row');
    });
  }
});

t.test('status moves', async (t) => {
  /** A pending order of a new buyer for `quantity` of a product with stock 10. */
  async function pendingOrder(quantity = 3) {
    const buyer = await createUser(app, 'moves');
    const product = await createProduct(app, admin, { stock: 10 });
    const { order } = await app.orders.create(asActor(buyer), { items: [{ productId: product.id, quantity }] }, key());
    return { buyer, product, order };
  }

  t.test('cancel from pending restores the stock and bumps the version', async (t) => {
    const { buyer, product, order } = await pendingOrder(3);
    t.equal(await stockOf(app, product.id), 7);
    await app.products.get(product.id); // cached with 7
    const cancelled = await app.orders.cancel(asActor(buyer), order.id);
    t.match(cancelled, { id: order.id, status: 'cancelled', version: 2, totalCents: order.totalCents });
    t.same(cancelled.items, order.items, 'the items stay on the order');
    t.equal(await stockOf(app, product.id), 10, 'stock restored');
    t.equal((await app.products.get(product.id)).stock, 10, 'and the cached product is invalidated');
    t.match(await app.orders.get(asActor(buyer), order.id), { status: 'cancelled', version: 2 });
  });

  t.test('cancel twice: INVALID_TRANSITION, stock restored once', async (t) => {
    const { buyer, product, order } = await pendingOrder(3);
    await app.orders.cancel(asActor(buyer), order.id);
    await t.rejects(app.orders.cancel(asActor(buyer), order.id), { code: 'INVALID_TRANSITION', statusCode: 409 });
    t.equal(await stockOf(app, product.id), 10, 'not restored a second time');
    t.match(await app.orders.get(asActor(buyer), order.id), { status: 'cancelled', version: 2 }, 'unchanged');
  });

  t.test('cancel: another user is told NOT_FOUND, an admin may cancel', async (t) => {
    const { buyer, product, order } = await pendingOrder(2);
    const stranger = await createUser(app, 'stranger');
    await t.rejects(app.orders.cancel(asActor(stranger), order.id), { code: 'NOT_FOUND', statusCode: 404 });
    t.match(await app.orders.get(asActor(buyer), order.id), { status: 'pending', version: 1 }, 'untouched');
    t.equal(await stockOf(app, product.id), 8);
    t.match(await app.orders.cancel(adminActor, order.id), { status: 'cancelled', version: 2 });
    t.equal(await stockOf(app, product.id), 10);
    await t.rejects(app.orders.cancel(adminActor, randomUUID()), { code: 'NOT_FOUND' }, 'an unknown order');
  });

  t.test('markPaid then ship; each move bumps the version by one', async (t) => {
    const { buyer, product, order } = await pendingOrder(3);
    const paid = await app.orders.markPaid(order.id);
    t.match(paid, { id: order.id, status: 'paid', version: 2 });
    const shipped = await app.orders.ship(order.id);
    t.match(shipped, { id: order.id, status: 'shipped', version: 3 });
    t.equal(await stockOf(app, product.id), 7, 'paying and shipping do not touch the stock');
    t.match(await app.orders.get(asActor(buyer), order.id), { status: 'shipped', version: 3 });
    t.ok(Date.parse(shipped.updatedAt) >= Date.parse(order.updatedAt));

    await t.rejects(app.orders.ship(order.id), { code: 'INVALID_TRANSITION' }, 'shipped is final');
    await t.rejects(app.orders.cancel(asActor(buyer), order.id), { code: 'INVALID_TRANSITION' });
    await t.rejects(app.orders.markPaid(order.id), { code: 'INVALID_TRANSITION' });
    t.equal(await stockOf(app, product.id), 7);
  });

  t.test('ship from pending is INVALID_TRANSITION and changes nothing', async (t) => {
    const { buyer, order } = await pendingOrder();
    await t.rejects(app.orders.ship(order.id), { code: 'INVALID_TRANSITION', statusCode: 409 });
    t.match(await app.orders.get(asActor(buyer), order.id), { status: 'pending', version: 1 });
  });

  t.test('cancel from paid is INVALID_TRANSITION and keeps the stock taken', async (t) => {
    const { buyer, product, order } = await pendingOrder(3);
    await app.orders.markPaid(order.id);
    await t.rejects(app.orders.cancel(asActor(buyer), order.id), { code: 'INVALID_TRANSITION', statusCode: 409 });
    await t.rejects(app.orders.markFailed(order.id), { code: 'INVALID_TRANSITION' }, 'a late payment failure neither');
    t.equal(await stockOf(app, product.id), 7);
    t.match(await app.orders.get(asActor(buyer), order.id), { status: 'paid', version: 2 });
  });

  t.test('markFailed: pending becomes cancelled and the stock comes back', async (t) => {
    const { buyer, product, order } = await pendingOrder(4);
    t.equal(await stockOf(app, product.id), 6);
    t.match(await app.orders.markFailed(order.id), { status: 'cancelled', version: 2 });
    t.equal(await stockOf(app, product.id), 10);
    t.match(await app.orders.get(asActor(buyer), order.id), { status: 'cancelled' });
  });

  t.test('markPaid on a cancelled order is INVALID_TRANSITION', async (t) => {
    const { buyer, order } = await pendingOrder();
    await app.orders.cancel(asActor(buyer), order.id);
    await t.rejects(app.orders.markPaid(order.id), { code: 'INVALID_TRANSITION', statusCode: 409 });
    await t.rejects(app.orders.ship(order.id), { code: 'INVALID_TRANSITION' });
    t.match(await app.orders.get(asActor(buyer), order.id), { status: 'cancelled', version: 2 });
    await t.rejects(app.orders.markPaid(randomUUID()), { code: 'NOT_FOUND', statusCode: 404 }, 'an unknown order');
  });

  t.test('cancelling a multi-product order restores every product', async (t) => {
    const buyer = await createUser(app, 'multi-cancel');
    const [a, b] = await twoProducts(app, admin, { stock: 10 });
    const { order } = await app.orders.create(
      asActor(buyer),
      {
        items: [
          { productId: a.id, quantity: 1 },
          { productId: b.id, quantity: 9 },
        ],
      },
      key(),
    );
    await app.orders.cancel(asActor(buyer), order.id);
    t.equal(await stockOf(app, a.id), 10);
    t.equal(await stockOf(app, b.id), 10);
  });

  t.test('5 concurrent cancels of one order: exactly one succeeds, stock restored once', async (t) => {
    const { buyer, product, order } = await pendingOrder(3);
    const results = await Promise.allSettled(
      Array.from({ length: 5 }, (_, i) => app.orders.cancel(i % 2 ? adminActor : asActor(buyer), order.id)),
    );
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    t.equal(won.length, 1, 'one cancel wins');
    t.equal(lost.length, 4);
    for (const r of lost) t.match(r.reason, { code: 'INVALID_TRANSITION', statusCode: 409 }, 'the others see it cancelled');
    t.equal(await stockOf(app, product.id), 10, 'stock restored exactly once');
    t.match(await app.orders.get(asActor(buyer), order.id), { status: 'cancelled', version: 2 }, 'one version bump');
  });
});

t.test('get and list', async (t) => {
  const alice = await createUser(app, 'list-a');
  const bob = await createUser(app, 'list-b');
  const product = await createProduct(app, admin, { stock: 100 });
  const place = async (user: TestUser) =>
    (await app.orders.create(asActor(user), { items: [{ productId: product.id, quantity: 1 }] }, key())).order;
  const a1 = await place(alice);
  const a2 = await place(alice);
  const b1 = await place(bob);
  await app.orders.cancel(asActor(alice), a1.id);

  t.same(await app.orders.get(asActor(alice), a2.id), a2, 'the owner reads its order');
  t.same(await app.orders.get(adminActor, a2.id), a2, 'an admin too');
  await t.rejects(app.orders.get(asActor(bob), a2.id), { code: 'NOT_FOUND', statusCode: 404 }, 'another user: 404');

  const page = { limit: 20, offset: 0 };
  const mine = await app.orders.list(asActor(alice), page);
  t.same(mine.items.map((o) => o.id).sort(), [a1.id, a2.id].sort(), 'a user lists its own orders');
  t.match(mine, { total: 2, limit: 20, offset: 0 });
  t.same(mine.items.find((o) => o.id === a2.id), a2, 'with their items');

  const byAdmin = await app.orders.list(adminActor, { ...page, userId: bob.id });
  t.same(byAdmin.items.map((o) => o.id), [b1.id], 'an admin filters by user');
  const everyone = await app.orders.list(adminActor, { limit: 100, offset: 0 });
  t.ok([a1.id, a2.id, b1.id].every((id) => everyone.items.some((o) => o.id === id)), 'an admin without a filter sees all');

  await t.rejects(app.orders.list(asActor(alice), { ...page, userId: bob.id }), { code: 'FORBIDDEN', statusCode: 403 });
  const cancelled = await app.orders.list(asActor(alice), { ...page, status: 'cancelled' });
  t.same(cancelled.items.map((o) => o.id), [a1.id], 'status filter');
});
