import { randomBytes } from 'node:crypto';
import { and, eq, isNull, sql } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import t from 'tap';
import type { Actor } from '../../app/core/base/validator.js';
import { users } from '../../app/users/model.js';
import { build } from '../helpers/app.js';
import { createAdmin, createUser, PASSWORD, registerUser, uniqueEmail } from '../helpers/users.js';

/** app.users (createUsersService) as the app wires it: real PostgreSQL, real Redis, real argon2. */

const NEW_PASSWORD = 'a-brand-new-password';
const hex = () => randomBytes(4).toString('hex');

async function storedRow(app: FastifyInstance, id: string) {
  const [row] = await app.db.select().from(users).where(eq(users.id, id));
  return row;
}

/** GET /v1/users/me with an access token: 200 while the token is good, 401 once it is revoked. */
const me = (app: FastifyInstance, accessToken: string) =>
  app.inject({ method: 'GET', url: '/v1/users/me', headers: { authorization: `Bearer ${accessToken}` } });

const register = (app: FastifyInstance, email = uniqueEmail('svc'), password = PASSWORD) =>
  app.users.register({ email, password, name: 'Service Test' });

t.test('register', async (t) => {
  const app = await build(t);

  t.test('stores an argon2id hash, never the password, and returns no hash', async (t) => {
    const email = uniqueEmail('hash');
    const user = await register(app, email);
    t.match(user, { email, name: 'Service Test', role: 'user', version: 1 });
    t.match(user.id, /^[0-9a-f-]{36}$/);
    t.match(user.createdAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'ISO-8601 UTC timestamp');
    t.notOk('passwordHash' in user, 'the DTO has no password hash');
    t.notOk(JSON.stringify(user).includes(PASSWORD), 'nor the password');

    const row = await storedRow(app, user.id);
    t.ok(row?.passwordHash.startsWith('$argon2id$'), 'the stored hash is argon2id');
    t.not(row?.passwordHash, PASSWORD, 'the stored value is not the password');
    t.notOk(row?.passwordHash.includes(PASSWORD));

    const other = await register(app, uniqueEmail('hash'));
    t.not((await storedRow(app, other.id))?.passwordHash, row?.passwordHash, 'the same password hashes differently (salted)');
  });

  t.test('a taken email in another case is EMAIL_TAKEN', async (t) => {
    const email = `Taken-${hex()}@Example.com`;
    await register(app, email);
    await t.rejects(register(app, email.toLowerCase()), { code: 'EMAIL_TAKEN', statusCode: 409 });
    await t.rejects(register(app, email.toUpperCase()), { code: 'EMAIL_TAKEN', statusCode: 409 });
    await t.rejects(register(app, email), { code: 'EMAIL_TAKEN' }, 'and in the same case');
  });

  t.test('five concurrent registrations of one email: exactly one succeeds', async (t) => {
    const email = `race-${hex()}@example.com`;
    const variants = [email, email.toUpperCase(), email, `Race${email.slice(4)}`, email];
    const results = await Promise.allSettled(variants.map((e) => register(app, e)));
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    t.equal(won.length, 1, 'one registration wins');
    t.equal(lost.length, 4);
    for (const r of lost) t.match(r.reason, { code: 'EMAIL_TAKEN', statusCode: 409 }, 'the others are EMAIL_TAKEN, not a 500');

    const [{ n } = { n: -1 }] = await app.db
      .select({ n: sql<number>`count(*)::int` })
      .from(users)
      .where(and(eq(sql`lower(${users.email})`, email), isNull(users.deletedAt)));
    t.equal(n, 1, 'one row in the database');
  });
});

t.test('login', async (t) => {
  const app = await build(t);

  t.test('right credentials start a session; the email is case-insensitive', async (t) => {
    const { id, email } = await registerUser(app, 'login');
    const pair = await app.users.login({ email, password: PASSWORD }, '10.1.0.1');
    t.match(pair, { tokenType: 'Bearer', expiresIn: 900, accessToken: String, refreshToken: String });
    const response = await me(app, pair.accessToken);
    t.equal(response.statusCode, 200);
    t.equal(response.json().id, id);

    const upper = await app.users.login({ email: email.toUpperCase(), password: PASSWORD }, '10.1.0.1');
    t.equal((await me(app, upper.accessToken)).statusCode, 200);
  });

  t.test('a wrong password and an unknown email get the same INVALID_CREDENTIALS', async (t) => {
    const { email } = await registerUser(app, 'login');
    const wrong = await app.users.login({ email, password: 'not-the-password' }, '10.1.0.2').catch((e: Error) => e);
    const unknown = await app.users.login({ email: uniqueEmail('nobody'), password: PASSWORD }, '10.1.0.2').catch((e: Error) => e);
    t.match(wrong, { code: 'INVALID_CREDENTIALS', statusCode: 401 });
    t.match(unknown, { code: 'INVALID_CREDENTIALS', statusCode: 401 });
    t.equal((wrong as Error).message, (unknown as Error).message, 'the same message for both');
  });

  t.test('a soft-deleted user cannot log in', async (t) => {
    const { id, email } = await registerUser(app, 'login');
    await app.users.remove(id);
    await t.rejects(app.users.login({ email, password: PASSWORD }, '10.1.0.3'), { code: 'INVALID_CREDENTIALS' });
  });
});

t.test('after LOGIN_MAX_FAILURES failures the pair (email, address) is locked', async (t) => {
  const app = await build(t, { env: { LOGIN_MAX_FAILURES: '3' } });

  t.test('the next attempt is TOO_MANY_ATTEMPTS even with the right password; another address is not locked', async (t) => {
    const { email } = await registerUser(app, 'lock');
    const ip = '10.2.0.1';
    for (let i = 1; i <= 3; i += 1) {
      await t.rejects(
        app.users.login({ email, password: `wrong-${i}` }, ip),
        { code: 'INVALID_CREDENTIALS' },
        `failure ${i} is INVALID_CREDENTIALS`,
      );
    }
    await t.rejects(app.users.login({ email, password: PASSWORD }, ip), { code: 'TOO_MANY_ATTEMPTS', statusCode: 429 });
    await t.rejects(app.users.login({ email, password: 'wrong-again' }, ip), { code: 'TOO_MANY_ATTEMPTS' }, 'still locked');

    const other = await app.users.login({ email, password: PASSWORD }, '10.2.0.2');
    t.equal(other.tokenType, 'Bearer', 'the right password from another address works');
  });

  t.test('failures count per email case-insensitively', async (t) => {
    const { email } = await registerUser(app, 'lock');
    const ip = '10.2.0.3';
    for (const e of [email, email.toUpperCase(), `${email[0]?.toUpperCase()}${email.slice(1)}`]) {
      await t.rejects(app.users.login({ email: e, password: 'wrong' }, ip), { code: 'INVALID_CREDENTIALS' });
    }
    await t.rejects(app.users.login({ email, password: PASSWORD }, ip), { code: 'TOO_MANY_ATTEMPTS' });
  });

  t.test('an unknown email is locked out the same way', async (t) => {
    const email = uniqueEmail('ghost');
    const ip = '10.2.0.4';
    for (let i = 0; i < 3; i += 1) {
      await t.rejects(app.users.login({ email, password: 'wrong' }, ip), { code: 'INVALID_CREDENTIALS' });
    }
    await t.rejects(app.users.login({ email, password: 'wrong' }, ip), { code: 'TOO_MANY_ATTEMPTS' });
  });

  t.test('a successful login resets the count', async (t) => {
    const { email } = await registerUser(app, 'lock');
    const ip = '10.2.0.5';
    for (let round = 0; round < 2; round += 1) {
      for (let i = 0; i < 2; i += 1) {
        await t.rejects(app.users.login({ email, password: 'wrong' }, ip), { code: 'INVALID_CREDENTIALS' });
      }
      const pair = await app.users.login({ email, password: PASSWORD }, ip);
      t.equal(pair.tokenType, 'Bearer', `round ${round}: two failures then success is not locked`);
    }
  });

  t.test('concurrent wrong attempts cannot exceed the limit', async (t) => {
    // Attempts are counted before the password is checked, so a simultaneous burst cannot slip through.
    const { email } = await registerUser(app, 'burst');
    const ip = '10.2.0.8';
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) => app.users.login({ email, password: `wrong-${i}` }, ip)),
    );
    const codes = results.map((r) => (r.status === 'rejected' ? (r.reason as { code?: string }).code : 'ok'));
    t.ok(codes.every((c) => c === 'INVALID_CREDENTIALS' || c === 'TOO_MANY_ATTEMPTS'), 'every guess is refused');
    t.equal(codes.filter((c) => c === 'INVALID_CREDENTIALS').length, 3, 'only 3 guesses are evaluated');
    t.equal(codes.filter((c) => c === 'TOO_MANY_ATTEMPTS').length, 7, 'the rest are refused');
    await t.rejects(app.users.login({ email, password: PASSWORD }, ip), { code: 'TOO_MANY_ATTEMPTS' }, 'then locked');
  });

  t.test('over HTTP: 429 with Retry-After, per client address', async (t) => {
    const { email } = await registerUser(app, 'lock');
    const attempt = (password: string, remoteAddress: string) =>
      app.inject({ method: 'POST', url: '/v1/auth/login', payload: { email, password }, remoteAddress });
    for (let i = 0; i < 3; i += 1) t.equal((await attempt('wrong-password', '10.2.0.6')).statusCode, 401);
    const locked = await attempt(PASSWORD, '10.2.0.6');
    t.equal(locked.statusCode, 429);
    t.equal(locked.json().code, 'TOO_MANY_ATTEMPTS');
    t.ok(Number(locked.headers['retry-after']) > 0, 'Retry-After says when to retry');
    t.equal((await attempt(PASSWORD, '10.2.0.7')).statusCode, 200, 'another address is not locked');
  });
});

t.test('refresh rotates the refresh token', async (t) => {
  const app = await build(t);
  const user = await createUser(app, 'refresh');

  const next = await app.users.refresh(user.refreshToken);
  t.match(next, { tokenType: 'Bearer', accessToken: String, refreshToken: String });
  t.not(next.refreshToken, user.refreshToken, 'a new refresh token');
  t.not(next.accessToken, user.accessToken, 'a new access token');
  t.equal((await me(app, next.accessToken)).statusCode, 200, 'the new access token works');

  const third = await app.users.refresh(next.refreshToken);
  t.not(third.refreshToken, next.refreshToken, 'the new one can be exchanged in turn');

  await t.rejects(app.users.refresh(user.refreshToken), { code: 'TOKEN_REUSED', statusCode: 401 }, 'the spent one is refused');
  await t.rejects(app.users.refresh(third.refreshToken), { code: 'TOKEN_REVOKED', statusCode: 401 }, 'and its whole family is revoked');
  t.equal((await me(app, third.accessToken)).statusCode, 401, 'access tokens of the family too');

  await t.rejects(app.users.refresh('not-a-token'), { code: 'INVALID_TOKEN', statusCode: 401 });
});

t.test('get and list', async (t) => {
  const app = await build(t);
  const alice = await register(app, uniqueEmail('alice'));
  const bob = await register(app, uniqueEmail('bob'));

  t.same(await app.users.get({ id: alice.id, role: 'user' }, alice.id), alice, 'a user reads itself');
  t.same(await app.users.get({ id: bob.id, role: 'admin' }, alice.id), alice, 'an admin reads anyone');
  await t.rejects(app.users.get({ id: bob.id, role: 'user' }, alice.id), { code: 'NOT_FOUND', statusCode: 404 });

  const page = await app.users.list({ q: alice.email, limit: 10, offset: 0 });
  t.same(page, { items: [alice], total: 1, limit: 10, offset: 0 });
  t.notOk(page.items.some((u) => 'passwordHash' in u), 'list items carry no hash');
});

t.test('update', async (t) => {
  const app = await build(t);
  const admin = await createAdmin(app);
  const adminActor: Actor = { id: admin.id, role: 'admin' };

  t.test('a non-admin sending role is FORBIDDEN and nothing changes', async (t) => {
    const user = await createUser(app, 'upd');
    const self: Actor = { id: user.id, role: 'user' };
    await t.rejects(app.users.update(self, user.id, { role: 'admin' }), { code: 'FORBIDDEN', statusCode: 403 });
    await t.rejects(app.users.update(self, user.id, { role: 'user', name: 'X' }), { code: 'FORBIDDEN' }, 'even its own role');
    t.match(await storedRow(app, user.id), { role: 'user', version: 1, name: 'Test User' });
    t.equal((await me(app, user.accessToken)).statusCode, 200, 'the session is untouched');
  });

  t.test('a non-admin patching another user gets NOT_FOUND', async (t) => {
    const user = await createUser(app, 'upd');
    const other = await register(app);
    await t.rejects(app.users.update({ id: user.id, role: 'user' }, other.id, { name: 'Hijack' }), { code: 'NOT_FOUND' });
    t.equal((await storedRow(app, other.id))?.name, 'Service Test');
  });

  t.test('a name change bumps the version and keeps the sessions', async (t) => {
    const user = await createUser(app, 'upd');
    const updated = await app.users.update({ id: user.id, role: 'user' }, user.id, { name: 'Renamed' });
    t.match(updated, { id: user.id, name: 'Renamed', version: 2, role: 'user' });
    const response = await me(app, user.accessToken);
    t.equal(response.statusCode, 200);
    t.equal(response.json().name, 'Renamed');
  });

  t.test('a role change by an admin revokes every session of the user', async (t) => {
    const user = await createUser(app, 'upd');
    const second = await app.users.login({ email: user.email, password: PASSWORD }, '10.3.0.1');
    t.equal((await me(app, user.accessToken)).statusCode, 200);

    const updated = await app.users.update(adminActor, user.id, { role: 'admin' });
    t.match(updated, { role: 'admin', version: 2 });

    t.equal((await me(app, user.accessToken)).statusCode, 401, 'the old access token is rejected');
    t.equal((await me(app, second.accessToken)).statusCode, 401, 'so is the one of the other session');
    await t.rejects(app.users.refresh(user.refreshToken), { code: 'TOKEN_REVOKED', statusCode: 401 }, 'and the refresh token');
    t.equal((await me(app, admin.accessToken)).statusCode, 200, 'the session of the admin is not affected');

    const fresh = await app.users.login({ email: user.email, password: PASSWORD }, '10.3.0.1');
    const list = await app.inject({
      method: 'GET',
      url: '/v1/users',
      headers: { authorization: `Bearer ${fresh.accessToken}` },
    });
    t.equal(list.statusCode, 200, 'a new login carries the new role');
  });

  t.test('a password change revokes every session; only the new password works', async (t) => {
    const user = await createUser(app, 'upd');
    const before = (await storedRow(app, user.id))?.passwordHash;

    const updated = await app.users.update({ id: user.id, role: 'user' }, user.id, { password: NEW_PASSWORD });
    t.equal(updated.version, 2);
    t.notOk('passwordHash' in updated);
    const after = (await storedRow(app, user.id))?.passwordHash;
    t.ok(after?.startsWith('$argon2id$'), 'stored as argon2id');
    t.not(after, before);
    t.not(after, NEW_PASSWORD);

    t.equal((await me(app, user.accessToken)).statusCode, 401, 'the old access token is rejected');
    await t.rejects(app.users.refresh(user.refreshToken), { code: 'TOKEN_REVOKED', statusCode: 401 }, 'and the refresh token');
    await t.rejects(app.users.login({ email: user.email, password: PASSWORD }, '10.3.0.2'), { code: 'INVALID_CREDENTIALS' });
    const pair = await app.users.login({ email: user.email, password: NEW_PASSWORD }, '10.3.0.2');
    t.equal((await me(app, pair.accessToken)).statusCode, 200);
  });

  t.test('an admin changes another user and a deleted user is NOT_FOUND', async (t) => {
    const user = await register(app);
    t.match(await app.users.update(adminActor, user.id, { name: 'By Admin' }), { name: 'By Admin', version: 2 });
    await app.users.remove(user.id);
    await t.rejects(app.users.update(adminActor, user.id, { name: 'Ghost' }), { code: 'NOT_FOUND' });
  });
});

t.test('remove soft-deletes the user and revokes its sessions', async (t) => {
  const app = await build(t);
  const user = await createUser(app, 'rm');
  t.equal((await me(app, user.accessToken)).statusCode, 200);

  await app.users.remove(user.id);

  t.equal((await me(app, user.accessToken)).statusCode, 401, 'the access token stops working at once');
  await t.rejects(app.users.refresh(user.refreshToken), { code: 'TOKEN_REVOKED', statusCode: 401 }, 'the refresh token too');
  await t.rejects(app.users.get({ id: user.id, role: 'admin' }, user.id), { code: 'NOT_FOUND' });
  await t.rejects(app.users.login({ email: user.email, password: PASSWORD }, '10.4.0.1'), { code: 'INVALID_CREDENTIALS' });

  const row = await storedRow(app, user.id);
  t.ok(row, 'the row is kept');
  t.type(row?.deletedAt, Date, 'marked deleted');

  await t.rejects(app.users.remove(user.id), { code: 'NOT_FOUND' }, 'removing twice is NOT_FOUND');
  const again = await register(app, user.email);
  t.not(again.id, user.id, 'the email can be registered again');
});

t.test('ensureAdmin', async (t) => {
  const app = await build(t);

  t.test('creates the admin, then finds it present and never changes its password', async (t) => {
    const email = uniqueEmail('seed');
    t.equal(await app.users.ensureAdmin(email, PASSWORD), 'created');
    const created = await app.db.select().from(users).where(eq(users.email, email));
    t.equal(created.length, 1);
    t.match(created[0], { role: 'admin', name: 'Administrator' });
    t.ok(created[0]?.passwordHash.startsWith('$argon2id$'));

    t.equal(await app.users.ensureAdmin(email, PASSWORD), 'present');
    t.equal(await app.users.ensureAdmin(email.toUpperCase(), NEW_PASSWORD), 'present', 'another password: still present');
    const after = await app.db.select().from(users).where(eq(users.email, email));
    t.equal(after.length, 1, 'no second row');
    t.equal(after[0]?.passwordHash, created[0]?.passwordHash, 'the password hash is unchanged');
    t.equal(after[0]?.version, created[0]?.version, 'the row is not written at all');

    await t.rejects(app.users.login({ email, password: NEW_PASSWORD }, '10.5.0.1'), { code: 'INVALID_CREDENTIALS' });
    const pair = await app.users.login({ email, password: PASSWORD }, '10.5.0.1');
    const response = await me(app, pair.accessToken);
    t.equal(response.json().role, 'admin');
  });

  t.test('promotes an existing user and keeps its password', async (t) => {
    const { id, email } = await registerUser(app, 'promote');
    const before = await storedRow(app, id);

    t.equal(await app.users.ensureAdmin(email.toUpperCase(), NEW_PASSWORD), 'promoted');
    const after = await storedRow(app, id);
    t.equal(after?.role, 'admin');
    t.equal(after?.passwordHash, before?.passwordHash, 'the password is not reset');
    t.equal(after?.version, (before?.version ?? 0) + 1);

    t.equal(await app.users.ensureAdmin(email, NEW_PASSWORD), 'present');
    await t.rejects(app.users.login({ email, password: NEW_PASSWORD }, '10.5.0.2'), { code: 'INVALID_CREDENTIALS' });
    await app.users.login({ email, password: PASSWORD }, '10.5.0.2');
  });

  t.test('concurrent calls create one admin', async (t) => {
    const email = uniqueEmail('seed');
    const outcomes = await Promise.all([1, 2, 3].map(() => app.users.ensureAdmin(email, PASSWORD)));
    t.same(outcomes.filter((o) => o === 'created'), ['created'], 'exactly one creates it');
    t.ok(outcomes.every((o) => o === 'created' || o === 'present'), 'the others find it present');
    const rows = await app.db.select().from(users).where(eq(users.email, email));
    t.equal(rows.length, 1);
  });
});
