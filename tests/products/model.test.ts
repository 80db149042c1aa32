import { randomBytes } from 'node:crypto';
import { eq, type SQL, sql } from 'drizzle-orm';
import t from 'tap';
import { connectPostgres } from '../../app/core/adapter/postgres.js';
import { isUniqueViolation } from '../../app/core/base/errors.js';
import { products } from '../../app/products/model.js';
import { testDatabaseUrl } from '../helpers/infra.js';

/** The products table as the migrations create it, checked on this file's own real PostgreSQL database. */

const connection = await connectPostgres({ url: await testDatabaseUrl(), poolMax: 4, applicationName: 'plinth-tests' });
t.teardown(() => connection.close());
const { db } = connection;
/** Raw SQL rows; the driver-neutral Db type does not know postgres.js returns an array. */
const query = async <Row>(statement: SQL) => [...((await db.execute(statement)) as unknown as Iterable<Row>)];

const sku = (prefix = 'model') => `${prefix}-${randomBytes(4).toString('hex')}`;
const insertProduct = (fields: { sku: string; priceCents?: number; stock?: number; name?: string }) =>
  db
    .insert(products)
    .values({ name: 'Model Test', priceCents: 100, stock: 1, ...fields })
    .returning();

/** The rejection of a promise, or undefined when it resolved. */
const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => undefined,
    (e: unknown) => e,
  );

/** The PostgreSQL error under drizzle's wrapper: its SQLSTATE and constraint name. */
function pgError(error: unknown): { code?: string; constraint?: string } {
  type DbError = { code?: string; constraint?: string; constraint_name?: string; cause?: unknown };
  for (let e = error as DbError | undefined; e; e = e.cause as DbError | undefined) {
    if (typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code)) return { code: e.code, constraint: e.constraint_name ?? e.constraint };
  }
  return {};
}

t.test('the products table exists with the expected columns', async (t) => {
  const columns = await query<{
    column_name: string;
    data_type: string;
    udt_name: string;
    is_nullable: 'YES' | 'NO';
    column_default: string | null;
  }>(sql`
    select column_name, data_type, udt_name, is_nullable, column_default
    from information_schema.columns
    where table_schema = 'public' and table_name = 'products'
    order by column_name`);
  const byName = Object.fromEntries(columns.map((c) => [c.column_name, c]));

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
  t.match(byName.id, { udt_name: 'uuid', is_nullable: 'NO' });
  t.match(byName.id?.column_default, /gen_random_uuid\(\)/);
  t.match(byName.sku, { data_type: 'text', is_nullable: 'NO' });
  t.match(byName.name, { data_type: 'text', is_nullable: 'NO' });
  t.match(byName.description, { data_type: 'text', is_nullable: 'YES' });
  t.match(byName.price_cents, { data_type: 'integer', is_nullable: 'NO' });
  t.match(byName.stock, { data_type: 'integer', is_nullable: 'NO' });
  t.match(byName.version, { data_type: 'integer', is_nullable: 'NO' });
  t.match(byName.version?.column_default, /^1$/, 'version defaults to 1');
  for (const name of ['created_at', 'updated_at'] as const) {
    t.match(byName[name], { data_type: 'timestamp with time zone', is_nullable: 'NO' }, name);
    t.match(byName[name]?.column_default, /now\(\)/, `${name} defaults to now()`);
  }
  t.match(byName.deleted_at, { data_type: 'timestamp with time zone', is_nullable: 'YES' });

  const [primaryKey] = await query<{ column_name: string }>(sql`
    select kcu.column_name
    from information_schema.table_constraints tc
    join information_schema.key_column_usage kcu using (constraint_schema, constraint_name)
    where tc.table_name = 'products' and tc.constraint_type = 'PRIMARY KEY'`);
  t.equal(primaryKey?.column_name, 'id', 'id is the primary key');
});

t.test('products_sku_live_key is a partial unique index on sku of live products', async (t) => {
  const [index] = await query<{ indexdef: string }>(sql`
    select indexdef from pg_indexes where tablename = 'products' and indexname = 'products_sku_live_key'`);
  t.ok(index, 'the index exists');
  t.match(index?.indexdef, /^CREATE UNIQUE INDEX/);
  t.match(index?.indexdef, /\(sku\)/);
  t.match(index?.indexdef, /WHERE \(deleted_at IS NULL\)/);
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
