import { randomBytes } from 'node:crypto';
import { eq, sql } from 'drizzle-orm';
import t from 'tap';
import { isUniqueViolation } from '../../app/core/base/errors.js';
import { users } from '../../app/users/model.js';
import { connectTestDatabase, enumLabelsOf, expectCommonColumns, indexDefinitionOf } from '../helpers/db.js';
import { failure } from '../helpers/wait.js';

/** The users table as the migrations create it, checked on this file's own real PostgreSQL database. */

const { db, query } = await connectTestDatabase(t, 4);

const tag = () => randomBytes(4).toString('hex');
const insertUser = (email: string) =>
  db.insert(users).values({ email, name: 'Model Test', passwordHash: 'not-a-hash' }).returning();

t.test('the users table exists with the expected columns', async (t) => {
  const byName = await expectCommonColumns(t, db, 'users');
  t.same(Object.keys(byName).sort(), [
    'created_at',
    'deleted_at',
    'email',
    'id',
    'name',
    'password_hash',
    'role',
    'updated_at',
    'version',
  ]);
  t.match(byName.email, { data_type: 'text', is_nullable: 'NO' });
  t.match(byName.name, { data_type: 'text', is_nullable: 'NO' });
  t.match(byName.password_hash, { data_type: 'text', is_nullable: 'NO' });
  t.match(byName.role, { udt_name: 'user_role', is_nullable: 'NO' });

  t.same(await enumLabelsOf(db, 'user_role'), ['user', 'admin'], 'role is the user_role enum of user and admin');
});

t.test('users_email_live_key is a partial unique index on lower(email) of live users', async (t) => {
  const index = await indexDefinitionOf(db, 'users', 'users_email_live_key');
  t.ok(index, 'the index exists');
  t.match(index, /^CREATE UNIQUE INDEX/);
  t.match(index, /lower\(email\)/);
  t.match(index, /WHERE \(deleted_at IS NULL\)/);
});

t.test('a second live user with the same email in another case is rejected', async (t) => {
  const email = `Dup-${tag()}@Example.com`;
  const [first] = await insertUser(email);
  t.ok(first);

  const error = await failure(insertUser(email.toLowerCase()));
  t.ok(error, 'the insert fails');
  t.ok(isUniqueViolation(error, 'users_email_live_key'), 'as a violation of users_email_live_key');
  t.notOk(isUniqueViolation(error, 'some_other_key'), 'and not of another constraint');

  const error2 = await failure(insertUser(email.toUpperCase()));
  t.ok(isUniqueViolation(error2, 'users_email_live_key'), 'upper case is the same email too');

  const [{ n } = { n: -1 }] = await query<{ n: number }>(
    sql`select count(*)::int as n from users where lower(email) = ${email.toLowerCase()}`,
  );
  t.equal(n, 1, 'only the first row was written');
});

t.test('the same email is allowed again once the first user is soft-deleted', async (t) => {
  const email = `reuse-${tag()}@example.com`;
  const [first] = await insertUser(email);
  await db.update(users).set({ deletedAt: new Date() }).where(eq(users.id, first!.id));

  const [second] = await insertUser(email.toUpperCase());
  t.ok(second, 'a new live user with that email is inserted');
  t.not(second?.id, first?.id);

  const error = await failure(insertUser(email));
  t.ok(isUniqueViolation(error, 'users_email_live_key'), 'but only one live user may hold it');

  // Two soft-deleted users with the same email do not conflict either.
  await db.update(users).set({ deletedAt: new Date() }).where(eq(users.id, second!.id));
  const [third] = await insertUser(email);
  t.ok(third);
});

t.test('role defaults to user, version to 1, timestamps to now, id to a fresh uuid', async (t) => {
  const before = await query<{ now: Date | string }>(sql`select now() as now`);
  const [row] = await insertUser(`defaults-${tag()}@example.com`);
  t.ok(row);
  t.equal(row?.role, 'user');
  t.equal(row?.version, 1);
  t.equal(row?.deletedAt, null);
  t.match(row?.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  t.type(row?.createdAt, Date);
  t.type(row?.updatedAt, Date);
  const started = new Date(String(before[0]?.now)).getTime();
  t.ok(row!.createdAt.getTime() >= started - 1000, 'createdAt is about now');

  // The database applies the defaults itself, not only drizzle.
  const [raw] = await query<{ role: string; version: number }>(sql`
    insert into users (email, name, password_hash) values (${`raw-${tag()}@example.com`}, 'Raw', 'x')
    returning role, version`);
  t.same(raw, { role: 'user', version: 1 });
});

t.test('role accepts only user and admin', async (t) => {
  const error = await failure(
    db.execute(sql`insert into users (email, name, password_hash, role)
      values (${`role-${tag()}@example.com`}, 'Role', 'x', 'root')`),
  );
  t.ok(error, 'an unknown role is refused by the enum');
});
