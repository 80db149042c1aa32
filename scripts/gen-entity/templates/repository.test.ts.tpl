import { eq } from 'drizzle-orm';
import t from 'tap';
import { __entities__ } from '../../app/__entity_folder__/model.js';
import { __Entities__Repository } from '../../app/__entity_folder__/repository.js';
import { __entity__SortFields } from '../../app/__entity_folder__/schema.js';
import { connectTestDatabase } from '../helpers/db.js';
import { validRow } from './fixtures.js';

/** __Entities__Repository on this file's own PostgreSQL database: pages, sorting, version-guarded writes. */

const { db } = await connectTestDatabase(t, 4);
const repository = new __Entities__Repository(db);
const MISSING_ID = '00000000-0000-4000-8000-000000000000';

/** The row as stored, soft-deleted or not. */
async function stored(id: string) {
  const [row] = await db.select().from(__entities__).where(eq(__entities__.id, id));
  return row;
}

/** Ids of all live rows in the order `sort` gives, keeping only `ids`. */
async function order(sort: string | undefined, ids: string[]) {
  const page = await repository.search({ limit: 100, offset: 0, sort: sort as never });
  return page.items.map((row) => row.id).filter((id) => ids.includes(id));
}

t.test('create returns the stored row with its defaults', async (t) => {
  const row = await repository.create(validRow(0));
  t.has(row, { ...validRow(0), version: 1, deletedAt: null });
  t.same(await stored(row.id), row, 'the returned row is what the database holds');
  t.same(await repository.getById(row.id), row);
  t.same(await repository.findById(row.id), row);
});

t.test('search pages through the live rows with a total, newest first by default', async (t) => {
  const before = (await repository.search({ limit: 1, offset: 0 })).total;
  const first = await repository.create(validRow(0));
  const second = await repository.create(validRow(1));
  const third = await repository.create(validRow(2));

  const page = await repository.search({ limit: 2, offset: 0 });
  t.equal(page.total, before + 3, 'total counts every live row, not the page');
  t.same(page.items.map((row) => row.id), [third.id, second.id], 'newest first');
  const next = await repository.search({ limit: 2, offset: 1 });
  t.same(next.items.map((row) => row.id), [second.id, first.id]);
  t.same(await repository.search({ limit: 2, offset: before + 3 }), { items: [], total: before + 3 }, 'past the end: no items');

  await repository.softDelete(second.id);
  t.equal((await repository.search({ limit: 1, offset: 0 })).total, before + 2, 'a soft-deleted row leaves the total');
  t.same(await order(undefined, [first.id, second.id, third.id]), [third.id, first.id], 'and the pages');
});

t.test('sort by each whitelisted field, both ways', async (t) => {
  // Created in the order b, a, c; every sortable field grows from a to c.
  const b = await repository.create(validRow(1));
  const a = await repository.create(validRow(0));
  const c = await repository.create(validRow(2));
  const ids = [a.id, b.id, c.id];

  t.same(await order('createdAt', ids), [b.id, a.id, c.id], 'createdAt');
  t.same(await order('-createdAt', ids), [c.id, a.id, b.id], '-createdAt');
  for (const field of __entity__SortFields.filter((f) => f !== 'createdAt')) {
    t.same(await order(field, ids), [a.id, b.id, c.id], field);
    t.same(await order(`-${field}`, ids), [c.id, b.id, a.id], `-${field}`);
  }
  await t.rejects(
    repository.list({ limit: 10, offset: 0, sort: 'version' }),
    /not a sortable field/,
    'a sort outside the whitelist is refused, not passed to SQL',
  );
});

t.test('update is version-guarded and bumps the version', async (t) => {
  const row = await repository.create(validRow(0));
  const updated = await repository.update(row.id, 1, validRow(1));
  t.has(updated, { ...validRow(1), version: 2 });
  t.ok(updated.updatedAt.getTime() >= row.updatedAt.getTime(), 'updatedAt moves forward');

  await t.rejects(repository.update(row.id, 1, validRow(2)), { code: 'VERSION_CONFLICT', statusCode: 409 });
  await t.rejects(repository.update(row.id, 7, validRow(2)), { code: 'VERSION_CONFLICT' }, 'a future version too');
  t.has(await stored(row.id), { ...validRow(1), version: 2 }, 'a refused update writes nothing');
  await t.rejects(repository.update(MISSING_ID, 1, validRow(2)), { code: 'NOT_FOUND', statusCode: 404 });
});

t.test('softDelete hides the row from every read and write; the row stays', async (t) => {
  const row = await repository.create(validRow(0));
  const deleted = await repository.softDelete(row.id);
  t.type(deleted.deletedAt, Date);
  t.equal(deleted.version, 2, 'deleting bumps the version');
  t.equal(await repository.findById(row.id), undefined);
  await t.rejects(repository.getById(row.id), { code: 'NOT_FOUND', statusCode: 404 });
  await t.rejects(repository.update(row.id, 2, validRow(1)), { code: 'NOT_FOUND' });
  await t.rejects(repository.softDelete(row.id), { code: 'NOT_FOUND' }, 'deleting twice is NOT_FOUND');
  await t.rejects(repository.softDelete(MISSING_ID), { code: 'NOT_FOUND' });
  t.type((await stored(row.id))?.deletedAt, Date, 'the row is kept, marked deleted');
});
