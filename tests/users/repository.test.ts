import { randomBytes } from 'node:crypto';
import { eq, sql } from 'drizzle-orm';
import t from 'tap';
import { users } from '../../app/users/model.js';
import { UsersRepository } from '../../app/users/repository.js';
import { connectTestDatabase } from '../helpers/db.js';

/** UsersRepository and the BaseRepository behaviour it inherits, on this file's own real PostgreSQL database. */

const { db, query } = await connectTestDatabase(t, 6);
const repository = new UsersRepository(db);

const MISSING_ID = '00000000-0000-4000-8000-000000000000';
const hex = () => randomBytes(4).toString('hex');

/** A fresh live user; `tag` lets a test find only its own rows with `q`. */
function newUser(overrides: { email?: string; name?: string } = {}) {
  return repository.create({
    email: overrides.email ?? `user-${hex()}@example.com`,
    name: overrides.name ?? 'Repository Test',
    passwordHash: 'not-a-real-hash',
  });
}

/** The row as stored, soft-deleted or not. */
async function stored(id: string) {
  const [row] = await db.select().from(users).where(eq(users.id, id));
  return row;
}

t.test('create returns the stored row with its defaults', async (t) => {
  const email = `create-${hex()}@example.com`;
  const row = await newUser({ email, name: 'Created' });
  t.match(row, { email, name: 'Created', role: 'user', version: 1, deletedAt: null, passwordHash: 'not-a-real-hash' });
  t.match(row.id, /^[0-9a-f-]{36}$/);
  t.same(await stored(row.id), row, 'the returned row is what the database holds');
});

t.test('findById and getById', async (t) => {
  const row = await newUser();
  t.same(await repository.findById(row.id), row);
  t.same(await repository.getById(row.id), row);
  t.equal(await repository.findById(MISSING_ID), undefined, 'findById of an unknown id is undefined');
  await t.rejects(repository.getById(MISSING_ID), { code: 'NOT_FOUND', statusCode: 404 }, 'getById of an unknown id');
});

t.test('findByEmail is case-insensitive and ignores soft-deleted users', async (t) => {
  const email = `Mixed.Case-${hex()}@Example.COM`;
  const row = await newUser({ email });
  t.equal((await repository.findByEmail(email))?.id, row.id, 'exact');
  t.equal((await repository.findByEmail(email.toLowerCase()))?.id, row.id, 'lower case');
  t.equal((await repository.findByEmail(email.toUpperCase()))?.id, row.id, 'upper case');
  t.equal(await repository.findByEmail(`other-${hex()}@example.com`), undefined, 'unknown email');
  t.equal(await repository.findByEmail(email.replace('@', '%@')), undefined, 'no pattern matching');

  await repository.softDelete(row.id);
  t.equal(await repository.findByEmail(email), undefined, 'a soft-deleted user is not found');

  const again = await newUser({ email: email.toLowerCase() });
  t.equal((await repository.findByEmail(email))?.id, again.id, 'the live user with that email is found, not the deleted one');
});

t.test('search with q matches email or name, case-insensitively, live users only', async (t) => {
  const tag = hex();
  const byEmail = await newUser({ email: `${tag}@example.com`, name: 'Alpha' });
  const byName = await newUser({ name: `Bravo ${tag.toUpperCase()}` });
  await newUser({ name: 'Charlie' });
  const deleted = await newUser({ name: `Delta ${tag}` });
  await repository.softDelete(deleted.id);

  const page = await repository.search({ q: tag, limit: 20, offset: 0, sort: 'name' });
  t.same(
    page.items.map((u) => u.id),
    [byEmail.id, byName.id],
    'the email match and the name match, not the other or the deleted user',
  );
  t.equal(page.total, 2);

  const noMatch = await repository.search({ q: `nobody-${hex()}`, limit: 20, offset: 0 });
  t.same(noMatch, { items: [], total: 0 });
});

t.test('search matches LIKE wildcards in q literally', async (t) => {
  const tag = hex();
  const percent = await newUser({ name: `${tag} 100% pure` });
  const digits = await newUser({ name: `${tag} 1000 pure` });
  const underscore = await newUser({ name: `${tag} a_b` });
  const letter = await newUser({ name: `${tag} axb` });
  const backslash = await newUser({ name: `${tag} c\\d` });
  await newUser({ name: `${tag} cd` });

  const ids = async (q: string) => (await repository.search({ q, limit: 20, offset: 0 })).items.map((u) => u.id);
  t.same(await ids(`${tag} 100%`), [percent.id], '% matches only a percent sign');
  t.same(await ids(`${tag} a_b`), [underscore.id], '_ matches only an underscore');
  t.same(await ids(`${tag} c\\d`), [backslash.id], 'a backslash matches only a backslash');
  t.same((await ids(`${tag} 100`)).sort(), [digits.id, percent.id].sort(), 'plain text still matches as a substring');
  t.same((await ids(`${tag} a`)).sort(), [underscore.id, letter.id].sort());
  const percentOnly = await repository.search({ q: '%', limit: 100, offset: 0 });
  t.ok(percentOnly.items.every((u) => u.email.includes('%') || u.name.includes('%')), 'q=% finds only rows containing %');
  t.ok(percentOnly.items.some((u) => u.id === percent.id));
  t.notOk(percentOnly.items.some((u) => u.id === letter.id || u.id === digits.id));
});

t.test('pagination: limit, offset and the total of all matches', async (t) => {
  const tag = hex();
  const created = [];
  for (let i = 0; i < 5; i += 1) created.push(await newUser({ name: `${tag} page ${i}` }));
  const query = { q: tag, sort: 'name' as const };

  const first = await repository.search({ ...query, limit: 2, offset: 0 });
  t.equal(first.total, 5, 'total counts every match, not the page');
  t.same(first.items.map((u) => u.name), [`${tag} page 0`, `${tag} page 1`]);

  const second = await repository.search({ ...query, limit: 2, offset: 2 });
  t.same(second.items.map((u) => u.name), [`${tag} page 2`, `${tag} page 3`]);
  t.equal(second.total, 5);

  const last = await repository.search({ ...query, limit: 2, offset: 4 });
  t.same(last.items.map((u) => u.name), [`${tag} page 4`]);

  const beyond = await repository.search({ ...query, limit: 2, offset: 10 });
  t.same(beyond.items, [], 'past the end: no items');
  t.equal(beyond.total, 5, 'but the total still');

  await repository.softDelete(created[0]!.id);
  const afterDelete = await repository.search({ ...query, limit: 10, offset: 0 });
  t.equal(afterDelete.total, 4, 'a soft-deleted row leaves the total');
});

t.test('sort ascending and descending; ties are broken by id so the order is stable', async (t) => {
  const tag = hex();
  const b = await newUser({ email: `${tag}-b@example.com`, name: `${tag} Bravo` });
  const a = await newUser({ email: `${tag}-c@example.com`, name: `${tag} Alpha` });
  const c = await newUser({ email: `${tag}-a@example.com`, name: `${tag} Charlie` });
  const list = async (sort?: string) =>
    (await repository.search({ q: tag, limit: 20, offset: 0, sort: sort as never })).items.map((u) => u.id);

  t.same(await list('name'), [a.id, b.id, c.id], 'name ascending');
  t.same(await list('-name'), [c.id, b.id, a.id], 'name descending');
  t.same(await list('email'), [c.id, b.id, a.id], 'email ascending');
  t.same(await list('-email'), [a.id, b.id, c.id], 'email descending');
  t.same(await list('createdAt'), [b.id, a.id, c.id], 'createdAt ascending');
  t.same(await list('-createdAt'), [c.id, a.id, b.id], 'createdAt descending');
  t.same(await list(undefined), [c.id, a.id, b.id], 'newest first by default');

  const same = hex();
  const twins = [];
  for (let i = 0; i < 6; i += 1) twins.push(await newUser({ name: `${same} Twin` }));
  const byId = twins.map((u) => u.id).sort();
  for (const sort of ['name', '-name'] as const) {
    const all = (await repository.search({ q: same, limit: 20, offset: 0, sort })).items.map((u) => u.id);
    t.same(all, byId, `${sort}: equal names come in id order`);
    const paged = [];
    for (let offset = 0; offset < twins.length; offset += 1) {
      const page = await repository.search({ q: same, limit: 1, offset, sort });
      paged.push(...page.items.map((u) => u.id));
    }
    t.same(paged, all, `${sort}: pages of one never overlap or skip`);
  }

  await t.rejects(
    repository.list({ limit: 10, offset: 0, sort: 'passwordHash' }),
    /not a sortable field/,
    'a sort outside the whitelist is refused, not passed to SQL',
  );
});

t.test('update is guarded by the version and bumps it by one', async (t) => {
  const row = await newUser({ name: 'Before' });
  t.equal(row.version, 1);

  const updated = await repository.update(row.id, 1, { name: 'After' });
  t.equal(updated.name, 'After');
  t.equal(updated.version, 2, 'version + 1');
  t.ok(updated.updatedAt.getTime() >= row.updatedAt.getTime(), 'updatedAt moves forward');
  t.equal(updated.email, row.email, 'untouched fields stay');

  await t.rejects(repository.update(row.id, 1, { name: 'Stale' }), { code: 'VERSION_CONFLICT', statusCode: 409 });
  const afterConflict = await stored(row.id);
  t.equal(afterConflict?.name, 'After', 'a stale update writes nothing');
  t.equal(afterConflict?.version, 2, 'and does not bump the version');

  await t.rejects(repository.update(row.id, 3, { name: 'Future' }), { code: 'VERSION_CONFLICT' }, 'nor a future version');

  const again = await repository.update(row.id, 2, { role: 'admin' });
  t.match(again, { name: 'After', role: 'admin', version: 3 });

  await t.rejects(repository.update(MISSING_ID, 1, { name: 'x' }), { code: 'NOT_FOUND', statusCode: 404 }, 'unknown id');
  await repository.softDelete(row.id);
  await t.rejects(repository.update(row.id, 4, { name: 'Ghost' }), { code: 'NOT_FOUND' }, 'a soft-deleted row is not updated');
  t.equal((await stored(row.id))?.name, 'After');
});

t.test('concurrent updates with the same version: exactly one wins', async (t) => {
  const row = await newUser({ name: 'Race' });
  const results = await Promise.allSettled(
    ['one', 'two', 'three', 'four'].map((name) => repository.update(row.id, 1, { name })),
  );
  const won = results.filter((r) => r.status === 'fulfilled');
  const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  t.equal(won.length, 1, 'one writer wins');
  t.equal(lost.length, 3);
  for (const r of lost) t.match(r.reason, { code: 'VERSION_CONFLICT' });
  t.equal((await stored(row.id))?.version, 2);
});

t.test('softDelete hides the row everywhere but keeps it; restore brings it back', async (t) => {
  const tag = hex();
  const row = await newUser({ name: `${tag} soft` });

  const deleted = await repository.softDelete(row.id);
  t.type(deleted.deletedAt, Date, 'deletedAt is set');
  t.equal(deleted.version, 2, 'soft delete bumps the version');

  t.equal(await repository.findById(row.id), undefined, 'findById');
  await t.rejects(repository.getById(row.id), { code: 'NOT_FOUND' }, 'getById');
  t.equal(await repository.findByEmail(row.email), undefined, 'findByEmail');
  t.same(await repository.search({ q: tag, limit: 20, offset: 0 }), { items: [], total: 0 }, 'search');
  t.ok(await stored(row.id), 'the row is still in the table');
  await t.rejects(repository.softDelete(row.id), { code: 'NOT_FOUND' }, 'deleting twice is NOT_FOUND');
  await t.rejects(repository.softDelete(MISSING_ID), { code: 'NOT_FOUND' });

  const restored = await repository.restore(row.id);
  t.equal(restored.deletedAt, null);
  t.equal(restored.version, 3);
  t.equal((await repository.findById(row.id))?.id, row.id, 'visible again');
  t.equal((await repository.search({ q: tag, limit: 20, offset: 0 })).total, 1);
  await t.rejects(repository.restore(row.id), { code: 'NOT_FOUND' }, 'restoring a live row is NOT_FOUND');
  await t.rejects(repository.restore(MISSING_ID), { code: 'NOT_FOUND' });
});

t.test('transactions: repository calls take the transaction as executor', async (t) => {
  t.test('a throw after the write rolls it back', async (t) => {
    const email = `tx-${hex()}@example.com`;
    let id: string | undefined;
    await t.rejects(
      db.transaction(async (tx) => {
        const row = await repository.create({ email, name: 'In tx', passwordHash: 'x' }, tx);
        id = row.id;
        t.equal((await repository.findById(row.id, tx))?.id, row.id, 'visible inside the transaction');
        throw new Error('boom');
      }),
      /boom/,
    );
    t.ok(id);
    t.equal(await repository.findByEmail(email), undefined, 'no row by email');
    t.equal(await stored(id!), undefined, 'no row at all');
  });

  t.test('updates and soft deletes roll back too', async (t) => {
    const row = await newUser({ name: 'Original' });
    await t.rejects(
      db.transaction(async (tx) => {
        await repository.update(row.id, 1, { name: 'Changed' }, tx);
        await repository.softDelete(row.id, tx);
        throw new Error('abort');
      }),
      /abort/,
    );
    t.match(await repository.findById(row.id), { name: 'Original', version: 1, deletedAt: null });
  });

  t.test('a committed transaction keeps its writes', async (t) => {
    const email = `commit-${hex()}@example.com`;
    const row = await db.transaction(async (tx) => {
      const created = await repository.create({ email, name: 'Kept', passwordHash: 'x' }, tx);
      return repository.update(created.id, 1, { name: 'Kept and changed' }, tx);
    });
    t.match(await repository.findByEmail(email), { id: row.id, name: 'Kept and changed', version: 2 });
  });

  t.test('uncommitted writes are not visible outside the transaction', async (t) => {
    const email = `isolated-${hex()}@example.com`;
    const seenOutside = await db
      .transaction(async (tx) => {
        await repository.create({ email, name: 'Hidden', passwordHash: 'x' }, tx);
        const outside = await repository.findByEmail(email);
        throw Object.assign(new Error('rollback'), { outside });
      })
      .catch((error: { outside?: unknown }) => error.outside);
    t.equal(seenOutside, undefined);
  });
});

t.test('count of the total is a number, not a string', async (t) => {
  const tag = hex();
  await newUser({ name: `${tag} n` });
  const page = await repository.search({ q: tag, limit: 1, offset: 0 });
  t.equal(typeof page.total, 'number');
  const [{ n } = { n: -1 }] = await query<{ n: number }>(
    sql`select count(*)::int as n from users where name like ${`${tag}%`} and deleted_at is null`,
  );
  t.equal(page.total, n);
});
