import { randomBytes } from 'node:crypto';
import { eq } from 'drizzle-orm';
import t from 'tap';
import { products } from '../../app/products/model.js';
import { ProductsRepository } from '../../app/products/repository.js';
import { connectTestDatabase } from '../helpers/db.js';

/** ProductsRepository on this file's own real PostgreSQL database: search, sorting and the stock moves. */

const { db } = await connectTestDatabase(t, 12);
const repository = new ProductsRepository(db);

const MISSING_ID = '00000000-0000-4000-8000-000000000000';
const hex = () => randomBytes(4).toString('hex');

/** A fresh live product. */
function newProduct(fields: Partial<{ sku: string; name: string; priceCents: number; stock: number }> = {}) {
  return repository.create({ sku: `repo-${hex()}`, name: 'Repository Test', priceCents: 100, stock: 10, ...fields });
}

/** The row as stored, soft-deleted or not. */
async function stored(id: string) {
  const [row] = await db.select().from(products).where(eq(products.id, id));
  return row;
}

t.test('create returns the stored row with its defaults', async (t) => {
  const sku = `create-${hex()}`;
  const row = await newProduct({ sku, name: 'Created', priceCents: 999, stock: 3 });
  t.match(row, { sku, name: 'Created', description: null, priceCents: 999, stock: 3, version: 1, deletedAt: null });
  t.same(await stored(row.id), row, 'the returned row is what the database holds');
  t.same(await repository.getById(row.id), row);
});

t.test('search with q matches the name, case-insensitively, live products only', async (t) => {
  const tag = hex();
  const lower = await newProduct({ name: `lamp ${tag}` });
  const upper = await newProduct({ name: `Desk ${tag.toUpperCase()}` });
  await newProduct({ name: 'Unrelated' });
  const bySkuOnly = await newProduct({ sku: `sku-${tag}`, name: 'Name without the tag' });
  const deleted = await newProduct({ name: `Gone ${tag}` });
  await repository.softDelete(deleted.id);

  const page = await repository.search({ q: tag, limit: 20, offset: 0, sort: 'name' });
  t.same(
    page.items.map((p) => p.id),
    [upper.id, lower.id],
    'the two name matches, in name order; not the deleted one',
  );
  t.equal(page.total, 2);
  t.notOk(page.items.some((p) => p.id === bySkuOnly.id), 'q searches the name, not the sku');

  t.same(await repository.search({ q: `nothing-${hex()}`, limit: 20, offset: 0 }), { items: [], total: 0 });
});

t.test('search matches LIKE wildcards in q literally', async (t) => {
  const tag = hex();
  const percent = await newProduct({ name: `${tag} 100% cotton` });
  const digits = await newProduct({ name: `${tag} 1000 threads` });
  const underscore = await newProduct({ name: `${tag} a_b` });
  const letter = await newProduct({ name: `${tag} axb` });
  const backslash = await newProduct({ name: `${tag} c\\d` });
  await newProduct({ name: `${tag} cd` });

  const ids = async (q: string) => (await repository.search({ q, limit: 20, offset: 0 })).items.map((p) => p.id);
  t.same(await ids(`${tag} 100%`), [percent.id], '% matches only a percent sign');
  t.same(await ids(`${tag} a_b`), [underscore.id], '_ matches only an underscore');
  t.same(await ids(`${tag} c\\d`), [backslash.id], 'a backslash matches only a backslash');
  t.same((await ids(`${tag} 100`)).sort(), [digits.id, percent.id].sort(), 'plain text still matches as a substring');
  t.same((await ids(`${tag} a`)).sort(), [underscore.id, letter.id].sort());

  const percentOnly = await repository.search({ q: '%', limit: 100, offset: 0 });
  t.ok(percentOnly.items.every((p) => p.name.includes('%')), 'q=% finds only names containing %');
  t.ok(percentOnly.items.some((p) => p.id === percent.id));
});

t.test('pagination: limit, offset and the total of all matches', async (t) => {
  const tag = hex();
  const created = [];
  for (let i = 0; i < 5; i += 1) created.push(await newProduct({ name: `${tag} page ${i}` }));
  const query = { q: tag, sort: 'name' as const };

  const first = await repository.search({ ...query, limit: 2, offset: 0 });
  t.equal(first.total, 5, 'total counts every match, not the page');
  t.same(first.items.map((p) => p.name), [`${tag} page 0`, `${tag} page 1`]);
  const second = await repository.search({ ...query, limit: 2, offset: 2 });
  t.same(second.items.map((p) => p.name), [`${tag} page 2`, `${tag} page 3`]);
  const beyond = await repository.search({ ...query, limit: 2, offset: 10 });
  t.same(beyond, { items: [], total: 5 }, 'past the end: no items, but the total');

  await repository.softDelete(created[0]!.id);
  t.equal((await repository.search({ ...query, limit: 10, offset: 0 })).total, 4, 'a soft-deleted row leaves the total');
});

t.test('sort by price, name and createdAt, both ways; ties broken by id', async (t) => {
  const tag = hex();
  // Created in the order b, a, c; prices make yet another order.
  const b = await newProduct({ name: `${tag} Bravo`, priceCents: 300 });
  const a = await newProduct({ name: `${tag} Alpha`, priceCents: 500 });
  const c = await newProduct({ name: `${tag} Charlie`, priceCents: 100 });
  const list = async (sort?: string) =>
    (await repository.search({ q: tag, limit: 20, offset: 0, sort: sort as never })).items.map((p) => p.id);

  t.same(await list('price'), [c.id, b.id, a.id], 'price ascending');
  t.same(await list('-price'), [a.id, b.id, c.id], 'price descending');
  t.same(await list('name'), [a.id, b.id, c.id], 'name ascending');
  t.same(await list('-name'), [c.id, b.id, a.id], 'name descending');
  t.same(await list('createdAt'), [b.id, a.id, c.id], 'createdAt ascending');
  t.same(await list('-createdAt'), [c.id, a.id, b.id], 'createdAt descending');
  t.same(await list(undefined), [c.id, a.id, b.id], 'newest first by default');

  const same = hex();
  const twins = [];
  for (let i = 0; i < 4; i += 1) twins.push(await newProduct({ name: `${same} Twin`, priceCents: 700 }));
  const byId = twins.map((p) => p.id).sort();
  for (const sort of ['price', '-price'] as const) {
    const all = (await repository.search({ q: same, limit: 20, offset: 0, sort })).items.map((p) => p.id);
    t.same(all, byId, `${sort}: equal prices come in id order`);
  }

  await t.rejects(
    repository.list({ limit: 10, offset: 0, sort: 'stock' }),
    /not a sortable field/,
    'a sort outside the whitelist is refused, not passed to SQL',
  );
});

t.test('findBySku finds the live product with exactly that sku', async (t) => {
  const sku = `find-${hex()}`;
  const row = await newProduct({ sku });
  t.equal((await repository.findBySku(sku))?.id, row.id);
  t.equal(await repository.findBySku(sku.toUpperCase()), undefined, 'skus are case-sensitive');
  t.equal(await repository.findBySku(`${sku.slice(0, -1)}_`), undefined, 'no pattern matching');
  await repository.softDelete(row.id);
  t.equal(await repository.findBySku(sku), undefined, 'a soft-deleted product is not found');
  const again = await newProduct({ sku });
  t.equal((await repository.findBySku(sku))?.id, again.id, 'the live product with that sku');
});

t.test('takeStock is a conditional decrement', async (t) => {
  t.test('enough stock: the row with the stock decremented and version + 1', async (t) => {
    const row = await newProduct({ stock: 5 });
    const taken = await repository.takeStock({ productId: row.id, quantity: 3 }, db);
    t.match(taken, { id: row.id, stock: 2, version: 2, priceCents: row.priceCents });
    t.ok(taken!.updatedAt.getTime() >= row.updatedAt.getTime(), 'updatedAt moves forward');
    t.match(await stored(row.id), { stock: 2, version: 2 });

    const rest = await repository.takeStock({ productId: row.id, quantity: 2 }, db);
    t.match(rest, { stock: 0, version: 3 }, 'exactly all that is left may be taken');
  });

  t.test('not enough stock: undefined and nothing changes', async (t) => {
    const row = await newProduct({ stock: 2 });
    t.equal(await repository.takeStock({ productId: row.id, quantity: 3 }, db), undefined);
    t.match(await stored(row.id), { stock: 2, version: 1 }, 'stock and version unchanged');

    const empty = await newProduct({ stock: 0 });
    t.equal(await repository.takeStock({ productId: empty.id, quantity: 1 }, db), undefined, 'nothing from nothing');
    t.match(await stored(empty.id), { stock: 0, version: 1 });
  });

  t.test('a deleted or unknown product: undefined and nothing changes', async (t) => {
    const row = await newProduct({ stock: 5 });
    const deleted = await repository.softDelete(row.id);
    t.equal(await repository.takeStock({ productId: row.id, quantity: 1 }, db), undefined);
    t.match(await stored(row.id), { stock: 5, version: deleted.version });
    t.equal(await repository.takeStock({ productId: MISSING_ID, quantity: 1 }, db), undefined);
  });

  t.test('inside a transaction that rolls back, nothing is taken', async (t) => {
    const row = await newProduct({ stock: 4 });
    await t.rejects(
      db.transaction(async (tx) => {
        t.match(await repository.takeStock({ productId: row.id, quantity: 4 }, tx), { stock: 0 });
        throw new Error('abort');
      }),
      /abort/,
    );
    t.match(await stored(row.id), { stock: 4, version: 1 });
  });

  t.test('10 concurrent takes of 1 from a stock of 4: exactly 4 succeed, stock ends at 0', async (t) => {
    const row = await newProduct({ stock: 4 });
    const results = await Promise.all(
      Array.from({ length: 10 }, () => db.transaction((tx) => repository.takeStock({ productId: row.id, quantity: 1 }, tx))),
    );
    t.equal(results.filter(Boolean).length, 4, 'four takes got a row');
    t.equal(results.filter((r) => r === undefined).length, 6, 'six got undefined');
    t.same(results.filter(Boolean).map((r) => r!.stock).sort(), [0, 1, 2, 3], 'each saw a distinct stock');
    t.match(await stored(row.id), { stock: 0, version: 5 });
  });
});

t.test('addStock adds, never goes below 0, and bumps the version', async (t) => {
  const row = await newProduct({ stock: 3 });
  t.match(await repository.addStock(row.id, 4, db), { stock: 7, version: 2 }, '+4');
  t.match(await repository.addStock(row.id, -2, db), { stock: 5, version: 3 }, '-2');
  t.match(await repository.addStock(row.id, -100, db), { stock: 0, version: 4 }, 'a larger negative delta stops at 0');
  t.match(await stored(row.id), { stock: 0, version: 4 });

  const deleted = await newProduct({ stock: 1 });
  await repository.softDelete(deleted.id);
  t.match(await repository.addStock(deleted.id, 2, db), { stock: 3 }, 'a deleted product gets its stock back too');
  t.equal(await repository.addStock(MISSING_ID, 1, db), undefined, 'an unknown product: undefined');
});

t.test('findLive returns the live products among the ids, in id order', async (t) => {
  const rows = [await newProduct(), await newProduct(), await newProduct()];
  const deleted = await newProduct();
  await repository.softDelete(deleted.id);

  const found = await repository.findLive([...rows.map((r) => r.id), deleted.id, MISSING_ID]);
  t.same(
    found.map((r) => r.id),
    rows.map((r) => r.id).sort(),
    'the live ones in id order; not the deleted nor the unknown one',
  );
  t.same(await repository.findLive([deleted.id]), [], 'only a deleted one: nothing');
  t.same(await repository.findLive([]), [], 'no ids: nothing (and no query with an empty IN)');
});

t.test('update is version-guarded; a soft-deleted product is NOT_FOUND', async (t) => {
  const row = await newProduct({ priceCents: 100 });
  t.match(await repository.update(row.id, 1, { priceCents: 150 }), { priceCents: 150, version: 2 });
  await t.rejects(repository.update(row.id, 1, { priceCents: 1 }), { code: 'VERSION_CONFLICT', statusCode: 409 });
  t.match(await stored(row.id), { priceCents: 150, version: 2 }, 'a stale update writes nothing');
  await repository.softDelete(row.id);
  await t.rejects(repository.update(row.id, 3, { priceCents: 1 }), { code: 'NOT_FOUND', statusCode: 404 });
  t.equal(await repository.findById(row.id), undefined);
  await t.rejects(repository.getById(row.id), { code: 'NOT_FOUND' });
});
