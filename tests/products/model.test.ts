import { randomBytes } from 'node:crypto';
import { eq, sql } from 'drizzle-orm';
import t from 'tap';
import { isUniqueViolation } from '../../app/core/base/errors.js';
import { products } from '../../app/products/model.js';
import { connectTestDatabase, expectCommonColumns, indexDefinitionOf } from '../helpers/db.js';
import { failure } from '../helpers/wait.js';

/** The products table as the migrations create it, checked on this file's own real PostgreSQL database. */

const { db, query } = await connectTestDatabase(t, 4);

const sku = (prefix = 'model') => `${prefix}-${randomBytes(4).toString('hex')}`;
const insertProduct = (fields: { sku: string; priceCents?: number; stock?: number; name?: string }) =>
  db
    .insert(products)
    .values({ name: 'Model Test', priceCents: 100, stock: 1, ...fields })
    .returning();

/** The PostgreSQL error under drizzle's wrapper: its SQLSTATE and constraint name. */
function pgError(error: unknown): { code?: string; constraint?: string } {
  type DbError = { code?: string; constraint?: string; constraint_name?: string; cause?: unknown };
  for (let e = error as DbError | undefined; e; e = e.cause as DbError | undefined) {
    if (typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code)) return { code: e.code, constraint: e.constraint_name ?? e.constraint };
  }
  return {};
}

t.test('the products table exists with the expected columns', async (t) => {
  const byName = await expectCommonColumns(t, db, 'products');
  t.same(Object.keys(byName).sort(), [
    'created_at',
    'deleted_at',
    'description',
    'id',
    'name',
    'price_cents',
    'sku',
    'stock',
    'updated_at',
    'version',
  ]);
  t.match(byName.sku, { data_type: 'text', is_nullable: 'NO' });
  t.match(byName.name, { data_type: 'text', is_nullable: 'NO' });
  t.match(byName.description, { data_type: 'text', is_nullable: 'YES' });
  t.match(byName.price_cents, { data_type: 'integer', is_nullable: 'NO' });
  t.match(byName.stock, { data_type: 'integer', is_nullable: 'NO' });
});

t.test('products_sku_live_key is a partial unique index on sku of live products', async (t) => {
  const index = await indexDefinitionOf(db, 'products', 'products_sku_live_key');
  t.ok(index, 'the index exists');
  t.match(index, /^CREATE UNIQUE INDEX/);
  t.match(index, /\(sku\)/);
  t.match(index, /WHERE \(deleted_at IS NULL\)/);
});

t.test('a second live product with the same sku is rejected', async (t) => {
  const code = sku('dup');
  const [first] = await insertProduct({ sku: code });
  t.ok(first);

  const error = await failure(insertProduct({ sku: code, name: 'Second' }));
  t.ok(error, 'the insert fails');
  t.ok(isUniqueViolation(error, 'products_sku_live_key'), 'as a violation of products_sku_live_key');
  t.notOk(isUniqueViolation(error, 'users_email_live_key'), 'and not of another constraint');

  const [{ n } = { n: -1 }] = await query<{ n: number }>(sql`select count(*)::int as n from products where sku = ${code}`);
  t.equal(n, 1, 'only the first row was written');

  // The sku is case-sensitive: another case is another sku.
  const [upper] = await insertProduct({ sku: code.toUpperCase() });
  t.ok(upper, 'the same letters in another case are a different sku');
});

t.test('the same sku is allowed again once the first product is soft-deleted', async (t) => {
  const code = sku('reuse');
  const [first] = await insertProduct({ sku: code });
  await db.update(products).set({ deletedAt: new Date() }).where(eq(products.id, first!.id));

  const [second] = await insertProduct({ sku: code });
  t.ok(second, 'a new live product with that sku is inserted');
  t.not(second?.id, first?.id);

  const error = await failure(insertProduct({ sku: code }));
  t.ok(isUniqueViolation(error, 'products_sku_live_key'), 'but only one live product may hold it');

  // Two soft-deleted products with the same sku do not conflict either.
  await db.update(products).set({ deletedAt: new Date() }).where(eq(products.id, second!.id));
  const [third] = await insertProduct({ sku: code });
  t.ok(third);

  // Un-deleting a row whose sku a live product holds is refused by the index too.
  const restore = await failure(db.update(products).set({ deletedAt: null }).where(eq(products.id, first!.id)));
  t.ok(isUniqueViolation(restore, 'products_sku_live_key'), 'restoring into a taken sku is refused');
});

t.test('check constraints refuse a negative price and a negative stock', async (t) => {
  const price = await failure(insertProduct({ sku: sku('price'), priceCents: -1 }));
  t.same(pgError(price), { code: '23514', constraint: 'products_price_cents_non_negative' }, 'priceCents -1');

  const stock = await failure(insertProduct({ sku: sku('stock'), stock: -1 }));
  t.same(pgError(stock), { code: '23514', constraint: 'products_stock_non_negative' }, 'stock -1');

  const [zero] = await insertProduct({ sku: sku('zero'), priceCents: 0, stock: 0 });
  t.match(zero, { priceCents: 0, stock: 0 }, 'zero is allowed for both');

  // No code path can take stock below zero: an update is refused as well, and nothing changes.
  const decrement = await failure(
    db.update(products).set({ stock: sql`${products.stock} - 1` }).where(eq(products.id, zero!.id)),
  );
  t.same(pgError(decrement), { code: '23514', constraint: 'products_stock_non_negative' }, 'stock 0 - 1 is refused');
  const discount = await failure(db.update(products).set({ priceCents: -5 }).where(eq(products.id, zero!.id)));
  t.same(pgError(discount), { code: '23514', constraint: 'products_price_cents_non_negative' }, 'price -5 is refused');
  const [after] = await db.select().from(products).where(eq(products.id, zero!.id));
  t.match(after, { priceCents: 0, stock: 0, version: 1 }, 'the row is unchanged');
});

t.test('sku, name, price and stock are required; version, timestamps and id have defaults', async (t) => {
  const [raw] = await query<{ version: number; deleted_at: Date | null; description: string | null; id: string }>(sql`
    insert into products (sku, name, price_cents, stock) values (${sku('raw')}, 'Raw', 1, 1)
    returning version, deleted_at, description, id`);
  t.match(raw, { version: 1, deleted_at: null, description: null });
  t.match(raw?.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);

  for (const [column, statement] of [
    ['sku', sql`insert into products (name, price_cents, stock) values ('x', 1, 1)`],
    ['name', sql`insert into products (sku, price_cents, stock) values (${sku('n')}, 1, 1)`],
    ['price_cents', sql`insert into products (sku, name, stock) values (${sku('p')}, 'x', 1)`],
    ['stock', sql`insert into products (sku, name, price_cents) values (${sku('s')}, 'x', 1)`],
  ] as const) {
    const error = await failure(db.execute(statement));
    t.equal(pgError(error).code, '23502', `${column} is NOT NULL`);
  }
});
