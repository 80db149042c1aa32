import { randomBytes, randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { eq, sql } from 'drizzle-orm';
import t from 'tap';
import { orderItems, orders, type OrderStatus } from '../../app/orders/model.js';
import { type NewOrder, OrdersRepository } from '../../app/orders/repository.js';
import { products } from '../../app/products/model.js';
import { users } from '../../app/users/model.js';
import { connectTestDatabase } from '../helpers/db.js';

/** OrdersRepository on this file's own real PostgreSQL database. */

const { db, query } = await connectTestDatabase(t, 6);
const repository = new OrdersRepository(db);

const hex = () => randomBytes(4).toString('hex');

async function newUser() {
  const [row] = await db.insert(users).values({ email: `order-repo-${hex()}@example.com`, name: 'Repo', passwordHash: 'x' }).returning();
  return row!;
}

async function newProduct(priceCents = 100) {
  const [row] = await db.insert(products).values({ sku: `repo-${hex()}`, name: 'Repo product', priceCents, stock: 100 }).returning();
  return row!;
}

/** An order of `userId` with one line per product given (by default one line of a new product). */
async function newOrder(userId: string, given?: { productId: string; quantity?: number; unitPriceCents?: number }[], key = `k-${hex()}`) {
  const lines = given ?? [{ productId: (await newProduct()).id }];
  const items = lines.map((l) => ({
    productId: l.productId,
    quantity: l.quantity ?? 1,
    unitPriceCents: l.unitPriceCents ?? 100,
  }));
  const order: NewOrder = {
    userId,
    idempotencyKey: key,
    totalCents: items.reduce((sum, i) => sum + i.quantity * i.unitPriceCents, 0),
    items,
  };
  return db.transaction((tx) => repository.insert(order, tx));
}

const itemsStored = (orderId: string) => db.select().from(orderItems).where(eq(orderItems.orderId, orderId));

t.test('insert writes the order and its items in the caller\'s transaction', async (t) => {
  const user = await newUser();
  const [a, b] = [await newProduct(), await newProduct()];
  const key = `insert-${hex()}`;
  const row = await newOrder(
    user.id,
    [
      { productId: a.id, quantity: 2, unitPriceCents: 250 },
      { productId: b.id, quantity: 1, unitPriceCents: 1000 },
    ],
    key,
  );
  t.match(row, { userId: user.id, idempotencyKey: key, totalCents: 1500, status: 'pending', version: 1, deletedAt: null });
  t.match(row.id, /^[0-9a-f-]{36}$/);
  t.same((await db.select().from(orders).where(eq(orders.id, row.id)))[0], row, 'the returned row is what is stored');

  const items = await itemsStored(row.id);
  t.same(
    items.sort((x, y) => x.productId.localeCompare(y.productId)),
    [
      { orderId: row.id, productId: a.id, quantity: 2, unitPriceCents: 250 },
      { orderId: row.id, productId: b.id, quantity: 1, unitPriceCents: 1000 },
    ].sort((x, y) => x.productId.localeCompare(y.productId)),
    'one item row per line, pointing at the order',
  );
});

t.test('insert is all or nothing: a bad item rolls the order back with its transaction', async (t) => {
  const user = await newUser();
  const product = await newProduct();
  const key = `atomic-${hex()}`;
  const order: NewOrder = {
    userId: user.id,
    idempotencyKey: key,
    totalCents: 200,
    items: [
      { productId: product.id, quantity: 1, unitPriceCents: 100 },
      { productId: randomUUID(), quantity: 1, unitPriceCents: 100 },
    ],
  };
  await t.rejects(db.transaction((tx) => repository.insert(order, tx)), 'an item of an unknown product fails the insert');
  t.equal(await repository.findByIdempotencyKey(user.id, key), undefined, 'no order row is left behind');
  const [{ n } = { n: -1 }] = await query<{ n: number }>(sql`select count(*)::int as n from order_items where product_id = ${product.id}`);
  t.equal(n, 0, 'nor any item');
});

t.test('findByIdempotencyKey looks up (user, key)', async (t) => {
  const user = await newUser();
  const other = await newUser();
  const key = `idem-${hex()}`;
  const row = await newOrder(user.id, undefined, key);

  t.same(await repository.findByIdempotencyKey(user.id, key), row, 'the order of this user and key');
  t.equal(await repository.findByIdempotencyKey(other.id, key), undefined, 'the same key of another user is not it');
  t.equal(await repository.findByIdempotencyKey(user.id, `${key}-x`), undefined, 'another key of the same user');
  t.equal(await repository.findByIdempotencyKey(user.id, key.toUpperCase()), undefined, 'keys are case-sensitive');

  const theirs = await newOrder(other.id, undefined, key);
  t.equal((await repository.findByIdempotencyKey(other.id, key))?.id, theirs.id, 'each user has its own order for the key');
  t.equal((await repository.findByIdempotencyKey(user.id, key))?.id, row.id);

  const inside = await db.transaction(async (tx) => {
    const items = [{ productId: (await newProduct()).id, quantity: 1, unitPriceCents: 100 }];
    const created = await repository.insert({ userId: user.id, idempotencyKey: `tx-${key}`, totalCents: 100, items }, tx);
    const found = await repository.findByIdempotencyKey(user.id, `tx-${key}`, tx);
    return { created, found };
  });
  t.same(inside.found, inside.created, 'inside a transaction it sees the transaction\'s own insert');
});

t.test('itemsOf returns the items of several orders grouped by order id', async (t) => {
  const user = await newUser();
  const [p1, p2, p3] = [await newProduct(), await newProduct(), await newProduct()];
  const first = await newOrder(user.id, [
    { productId: p1.id, quantity: 1, unitPriceCents: 10 },
    { productId: p2.id, quantity: 2, unitPriceCents: 20 },
  ]);
  const second = await newOrder(user.id, [{ productId: p3.id, quantity: 3, unitPriceCents: 30 }]);
  const [empty] = await db.insert(orders).values({ userId: user.id, idempotencyKey: `empty-${hex()}`, totalCents: 0 }).returning();
  if (!empty) throw new Error('no order row');
  const unknown = randomUUID();

  const grouped = await repository.itemsOf([first.id, second.id, empty.id, unknown]);
  t.same([...grouped.keys()].sort(), [first.id, second.id, empty.id, unknown].sort(), 'one entry per id asked');
  const byProduct = (a: { productId: string }, b: { productId: string }) => a.productId.localeCompare(b.productId);
  t.same(
    grouped.get(first.id),
    [
      { orderId: first.id, productId: p1.id, quantity: 1, unitPriceCents: 10 },
      { orderId: first.id, productId: p2.id, quantity: 2, unitPriceCents: 20 },
    ].sort(byProduct),
    'the first order has its two items, in product id order',
  );
  t.same(grouped.get(second.id), [{ orderId: second.id, productId: p3.id, quantity: 3, unitPriceCents: 30 }]);
  t.same(grouped.get(empty.id), [], 'an order without items: an empty list');
  t.same(grouped.get(unknown), [], 'an unknown id: an empty list');

  const alone = await repository.itemsOf([second.id]);
  t.same([...alone.keys()], [second.id], 'only the orders asked for');
  t.same((await repository.itemsOf([])).size, 0, 'no ids: an empty map');
});

t.test('search filters by user and status, paginates and counts', async (t) => {
  const alice = await newUser();
  const bob = await newUser();
  const created: string[] = [];
  for (let i = 0; i < 5; i += 1) created.push((await newOrder(alice.id)).id);
  const bobs = await newOrder(bob.id);
  await db.update(orders).set({ status: 'paid' }).where(eq(orders.id, created[1]!));
  await db.update(orders).set({ status: 'paid' }).where(eq(orders.id, created[3]!));
  await db.update(orders).set({ status: 'cancelled' }).where(eq(orders.id, bobs.id));

  const all = await repository.search({ userId: alice.id, limit: 20, offset: 0 });
  t.equal(all.total, 5);
  t.same(all.items.map((o) => o.id), [...created].reverse(), 'newest first by default; only this user\'s orders');
  t.ok(all.items.every((o) => o.userId === alice.id));

  const paid = await repository.search({ userId: alice.id, status: 'paid', limit: 20, offset: 0 });
  t.same(paid.items.map((o) => o.id).sort(), [created[1], created[3]].sort(), 'user and status together');
  t.equal(paid.total, 2);

  const cancelled = await repository.search({ userId: alice.id, status: 'cancelled', limit: 20, offset: 0 });
  t.same(cancelled, { items: [], total: 0 }, 'bob\'s cancelled order is not alice\'s');

  const anyUserCancelled = await repository.search({ status: 'cancelled', limit: 100, offset: 0 });
  t.ok(anyUserCancelled.items.some((o) => o.id === bobs.id), 'without a user: every user\'s orders');
  t.ok(anyUserCancelled.items.every((o) => o.status === 'cancelled'), 'still only that status');

  const first = await repository.search({ userId: alice.id, limit: 2, offset: 0, sort: 'createdAt' });
  t.same(first.items.map((o) => o.id), created.slice(0, 2));
  t.equal(first.total, 5, 'total counts every match, not the page');
  const second = await repository.search({ userId: alice.id, limit: 2, offset: 2, sort: 'createdAt' });
  t.same(second.items.map((o) => o.id), created.slice(2, 4));
  const last = await repository.search({ userId: alice.id, limit: 2, offset: 4, sort: 'createdAt' });
  t.same(last.items.map((o) => o.id), created.slice(4));
  const beyond = await repository.search({ userId: alice.id, limit: 2, offset: 10 });
  t.same(beyond, { items: [], total: 5 }, 'past the end: no items, the total still');

  await db.update(orders).set({ deletedAt: new Date() }).where(eq(orders.id, created[0]!));
  t.equal((await repository.search({ userId: alice.id, limit: 20, offset: 0 })).total, 4, 'a soft-deleted order is not listed');
});

t.test('search sorts by total, both ways', async (t) => {
  const user = await newUser();
  const product = await newProduct();
  const totals = [300, 100, 200];
  const ids: Record<number, string> = {};
  for (const price of totals) ids[price] = (await newOrder(user.id, [{ productId: product.id, unitPriceCents: price }])).id;
  const list = async (sort: string) =>
    (await repository.search({ userId: user.id, limit: 20, offset: 0, sort })).items.map((o) => o.id);
  t.same(await list('total'), [ids[100], ids[200], ids[300]], 'total ascending');
  t.same(await list('-total'), [ids[300], ids[200], ids[100]], 'total descending');
});

t.test('update is version-guarded and bumps the version', async (t) => {
  const user = await newUser();
  const row = await newOrder(user.id);
  const moved = await repository.update(row.id, 1, { status: 'paid' });
  t.match(moved, { id: row.id, status: 'paid', version: 2 });
  t.ok(moved.updatedAt.getTime() >= row.updatedAt.getTime());
  await t.rejects(repository.update(row.id, 1, { status: 'cancelled' }), { code: 'VERSION_CONFLICT', statusCode: 409 }, 'a stale version');
  t.equal((await repository.getById(row.id)).status, 'paid', 'the stale update changed nothing');
  await t.rejects(repository.update(randomUUID(), 1, { status: 'paid' }), { code: 'NOT_FOUND' });
});

t.test('lock', async (t) => {
  const user = await newUser();

  t.test('returns the current row inside a transaction; unknown and deleted orders are NOT_FOUND', async (t) => {
    const row = await newOrder(user.id);
    t.same(await db.transaction((tx) => repository.lock(row.id, tx)), row);
    await t.rejects(db.transaction((tx) => repository.lock(randomUUID(), tx)), { code: 'NOT_FOUND', statusCode: 404 });
    await db.update(orders).set({ deletedAt: new Date() }).where(eq(orders.id, row.id));
    await t.rejects(db.transaction((tx) => repository.lock(row.id, tx)), { code: 'NOT_FOUND' }, 'a soft-deleted order');
  });

  /** Opens a transaction that locks `id` and keeps it until `release()`; `run` may write before the commit. */
  function holdLock(id: string, run: (tx: typeof db) => Promise<unknown> = async () => {}) {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let locked!: () => void;
    const isLocked = new Promise<void>((resolve) => (locked = resolve));
    const done = db.transaction(async (tx) => {
      await repository.lock(id, tx);
      locked();
      await released;
      await run(tx);
    });
    return { isLocked, release, done };
  }

  t.test('holds the row: another transaction cannot lock it meanwhile', async (t) => {
    const row = await newOrder(user.id);
    const holder = holdLock(row.id);
    await holder.isLocked;
    const blocked = db.transaction(async (tx) => {
      await tx.execute(sql`set local lock_timeout = '200ms'`);
      return repository.lock(row.id, tx);
    });
    await t.rejects(blocked, 'the second lock gives up (lock_timeout) while the first holds the row');
    const cause = await blocked.catch((e: unknown) => e);
    const code = (e: unknown): string | undefined => {
      for (let x = e as { code?: string; cause?: unknown } | undefined; x; x = x.cause as typeof x) if (x.code === '55P03') return x.code;
      return undefined;
    };
    t.equal(code(cause), '55P03', 'because of lock_not_available');
    holder.release();
    await holder.done;
    t.same(await db.transaction((tx) => repository.lock(row.id, tx)), row, 'free again after the commit');
  });

  t.test('a waiting locker gets the row as the holder committed it', async (t) => {
    const row = await newOrder(user.id);
    const holder = holdLock(row.id, (tx) => repository.update(row.id, row.version, { status: 'paid' as OrderStatus }, tx));
    await holder.isLocked;
    const waiter = db.transaction((tx) => repository.lock(row.id, tx));

    // Wait (by polling, not a fixed sleep) until the second transaction is blocked on the row lock.
    const deadline = Date.now() + 10_000;
    for (;;) {
      const [{ n } = { n: 0 }] = await query<{ n: number }>(sql`
        select count(*)::int as n from pg_stat_activity
        where datname = current_database() and wait_event_type = 'Lock' and query ilike '%for update%'`);
      if (n > 0) break;
      if (Date.now() > deadline) throw new Error('the second lock never waited');
      await delay(10);
    }
    holder.release();
    await holder.done;
    t.match(await waiter, { id: row.id, status: 'paid', version: row.version + 1 }, 'it sees the committed move, not the row it first found');
  });
});
