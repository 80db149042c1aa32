import { randomBytes, randomUUID } from 'node:crypto';
import { eq, sql } from 'drizzle-orm';
import t from 'tap';
import { isUniqueViolation } from '../../app/core/base/errors.js';
import { orderItems, orders } from '../../app/orders/model.js';
import { products } from '../../app/products/model.js';
import { users } from '../../app/users/model.js';
import { columnsOf, connectTestDatabase, enumLabelsOf, expectCommonColumns, indexDefinitionOf, primaryKeyOf } from '../helpers/db.js';
import { failure } from '../helpers/wait.js';

/** The orders and order_items tables as the migrations create them, on this file's own real PostgreSQL database. */

const { db, query } = await connectTestDatabase(t, 4);

const hex = () => randomBytes(4).toString('hex');

async function newUser() {
  const [row] = await db.insert(users).values({ email: `order-model-${hex()}@example.com`, name: 'Model', passwordHash: 'x' }).returning();
  return row!;
}

async function newProduct() {
  const [row] = await db.insert(products).values({ sku: `model-${hex()}`, name: 'Model product', priceCents: 100, stock: 10 }).returning();
  return row!;
}

const insertOrder = (userId: string, idempotencyKey: string) =>
  db.insert(orders).values({ userId, idempotencyKey, totalCents: 0 }).returning();

t.test('the orders table exists with the expected columns', async (t) => {
  const byName = await expectCommonColumns(t, db, 'orders');
  t.same(Object.keys(byName).sort(), [
    'created_at',
    'deleted_at',
    'id',
    'idempotency_key',
    'status',
    'total_cents',
    'updated_at',
    'user_id',
    'version',
  ]);
  t.match(byName.user_id, { udt_name: 'uuid', is_nullable: 'NO' });
  t.match(byName.status, { udt_name: 'order_status', is_nullable: 'NO' });
  t.match(byName.status?.column_default, /'pending'/, 'status defaults to pending in the database');
  t.match(byName.total_cents, { data_type: 'bigint', is_nullable: 'NO' });
  t.match(byName.idempotency_key, { data_type: 'text', is_nullable: 'NO' });

  t.same(await enumLabelsOf(db, 'order_status'), ['pending', 'paid', 'cancelled', 'shipped'], 'the four statuses');
});

t.test('the order_items table exists with the expected columns', async (t) => {
  const byName = await columnsOf(db, 'order_items');
  t.same(Object.keys(byName).sort(), ['order_id', 'product_id', 'quantity', 'unit_price_cents']);
  t.match(byName.order_id, { udt_name: 'uuid', is_nullable: 'NO' });
  t.match(byName.product_id, { udt_name: 'uuid', is_nullable: 'NO' });
  t.match(byName.quantity, { data_type: 'integer', is_nullable: 'NO' });
  t.match(byName.unit_price_cents, { data_type: 'integer', is_nullable: 'NO' });
  t.same(await primaryKeyOf(db, 'order_items'), ['order_id', 'product_id'], 'one line per product and order');
});

t.test('orders_user_idempotency_key is a unique index on (user_id, idempotency_key)', async (t) => {
  const index = await indexDefinitionOf(db, 'orders', 'orders_user_idempotency_key');
  t.ok(index, 'the index exists');
  t.match(index, /^CREATE UNIQUE INDEX/);
  t.match(index, /\(user_id, idempotency_key\)/);
  t.notMatch(index, /WHERE/, 'it covers every row, not only some');
});

t.test('the same user cannot store the same idempotency key twice', async (t) => {
  const user = await newUser();
  const key = `key-${hex()}`;
  const [first] = await insertOrder(user.id, key);
  t.ok(first);

  const error = await failure(insertOrder(user.id, key));
  t.ok(error, 'the second insert fails');
  t.ok(isUniqueViolation(error, 'orders_user_idempotency_key'), 'as a violation of orders_user_idempotency_key');

  const rows = await db.select().from(orders).where(eq(orders.userId, user.id));
  t.equal(rows.length, 1, 'only the first row was written');

  const [otherKey] = await insertOrder(user.id, `key-${hex()}`);
  t.ok(otherKey, 'another key of the same user is fine');
  const other = await newUser();
  const [otherUser] = await insertOrder(other.id, key);
  t.ok(otherUser, 'the same key of another user is fine');
  t.not(otherUser?.id, first?.id);
});

t.test('status defaults to pending, version to 1, timestamps to now, id to a fresh uuid', async (t) => {
  const user = await newUser();
  const [row] = await insertOrder(user.id, `key-${hex()}`);
  t.match(row, { userId: user.id, status: 'pending', version: 1, totalCents: 0, deletedAt: null });
  t.match(row?.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  t.type(row?.createdAt, Date);
  t.type(row?.updatedAt, Date);

  // The database applies the defaults itself, not only drizzle.
  const [raw] = await query<{ status: string; version: number }>(sql`
    insert into orders (user_id, idempotency_key, total_cents) values (${user.id}, ${`raw-${hex()}`}, 5)
    returning status, version`);
  t.same(raw, { status: 'pending', version: 1 });
});

t.test('status accepts only the four statuses', async (t) => {
  const user = await newUser();
  const error = await failure(
    db.execute(sql`insert into orders (user_id, idempotency_key, total_cents, status)
      values (${user.id}, ${`bad-${hex()}`}, 0, 'refunded')`),
  );
  t.ok(error, 'an unknown status is refused by the enum');
  for (const status of ['pending', 'paid', 'cancelled', 'shipped'] as const) {
    const [row] = await db.insert(orders).values({ userId: user.id, idempotencyKey: `s-${hex()}`, totalCents: 0, status }).returning();
    t.equal(row?.status, status);
  }
});

t.test('total_cents holds more than a 32-bit integer', async (t) => {
  const user = await newUser();
  const big = 1000 * 2_147_483_647;
  const [row] = await db.insert(orders).values({ userId: user.id, idempotencyKey: `big-${hex()}`, totalCents: big }).returning();
  t.equal(row?.totalCents, big);
});

t.test('foreign keys: an order needs a user, an item needs its order and product', async (t) => {
  t.ok(await failure(insertOrder(randomUUID(), `fk-${hex()}`)), 'an order of an unknown user is refused');

  const user = await newUser();
  const product = await newProduct();
  const [order] = await insertOrder(user.id, `fk-${hex()}`);
  const line = { orderId: order!.id, productId: product.id, quantity: 2, unitPriceCents: 100 };
  await db.insert(orderItems).values(line);
  t.same(await db.select().from(orderItems).where(eq(orderItems.orderId, order!.id)), [line]);

  const duplicate = await failure(db.insert(orderItems).values({ ...line, quantity: 3 }));
  t.ok(isUniqueViolation(duplicate, 'order_items_order_id_product_id_pk'), 'a product appears once per order');
  t.ok(await failure(db.insert(orderItems).values({ ...line, orderId: randomUUID() })), 'an item of an unknown order');
  t.ok(await failure(db.insert(orderItems).values({ ...line, productId: randomUUID() })), 'an item of an unknown product');
});
