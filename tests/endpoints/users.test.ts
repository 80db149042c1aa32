import { randomBytes, randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import t, { type Test } from 'tap';
import { build } from '../helpers/app.js';
import { expectError, expectValidation, ISO_UTC, type Page } from '../helpers/http.js';
import { createAdmin, createUser, login, PASSWORD, registerUser, type TestUser } from '../helpers/users.js';

/** /v1/users and the general HTTP rules of api.md (request ids, unknown routes), through app.inject(). */

interface User {
  id: string;
  email: string;
  name: string;
  role: 'user' | 'admin';
  version: number;
  createdAt: string;
  updatedAt: string;
}

const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

/** A user object as api.md describes it: the fields, ISO timestamps, and never the password hash. */
function expectUser(t: Test, user: User, expected: Partial<User>) {
  t.match(user, expected);
  t.match(user.createdAt, ISO_UTC);
  t.match(user.updatedAt, ISO_UTC);
  t.type(user.version, 'number');
  t.notOk('passwordHash' in user || 'password' in user || 'password_hash' in user, 'no password or hash');
}

type Auth = TestUser | string | undefined;
const headersOf = (auth: Auth) =>
  auth === undefined ? {} : { authorization: `Bearer ${typeof auth === 'string' ? auth : auth.accessToken}` };

const get = (app: FastifyInstance, url: string, auth?: Auth) => app.inject({ method: 'GET', url, headers: headersOf(auth) });
const patch = (app: FastifyInstance, id: string, payload: unknown, auth?: Auth) =>
  app.inject({ method: 'PATCH', url: `/v1/users/${id}`, headers: headersOf(auth), payload: payload as object });
const remove = (app: FastifyInstance, id: string, auth?: Auth) =>
  app.inject({ method: 'DELETE', url: `/v1/users/${id}`, headers: headersOf(auth) });

const tag = (prefix: string) => `${prefix}${randomBytes(3).toString('hex')}`;

t.test('GET /v1/users/me', async (t) => {
  const app = await build(t);
  const user = await createUser(app, 'me');

  t.test('200 the caller', async (t) => {
    const response = await get(app, '/v1/users/me', user);
    t.equal(response.statusCode, 200, response.body);
    expectUser(t, response.json() as User, { id: user.id, email: user.email, role: 'user' });
  });

  t.test('401 UNAUTHORIZED without a token; 401 with a bad one', async (t) => {
    expectError(t, await get(app, '/v1/users/me'), 401, 'UNAUTHORIZED');
    expectError(t, await get(app, '/v1/users/me', 'garbage'), 401);
    const basic = await app.inject({ method: 'GET', url: '/v1/users/me', headers: { authorization: 'Basic dXNlcjpwYXNz' } });
    expectError(t, basic, 401);
  });
});

t.test('GET /v1/users (admin list)', async (t) => {
  const app = await build(t);
  const admin = await createAdmin(app);
  const user = await createUser(app, 'lister');

  // Three users findable by a tag in their email, two by a tag in their name.
  const emailTag = tag('mail');
  const nameTag = tag('Name');
  const byEmail = [
    await registerUser(app, emailTag, 'Charlie'),
    await registerUser(app, emailTag, 'Alice'),
    await registerUser(app, emailTag, 'Bob'),
  ];
  const byName = [await registerUser(app, 'other', `Zed ${nameTag}`), await registerUser(app, 'other', `Amy ${nameTag}`)];

  t.test('the page shape {items,total,limit,offset} with the defaults', async (t) => {
    const response = await get(app, '/v1/users', admin);
    t.equal(response.statusCode, 200, response.body);
    const page = response.json() as Page<User>;
    t.same(Object.keys(page).sort(), ['items', 'limit', 'offset', 'total']);
    t.equal(page.limit, 20, 'default limit 20');
    t.equal(page.offset, 0, 'default offset 0');
    t.ok(Array.isArray(page.items));
    t.ok(page.total >= 7, 'total counts every live user');
    t.ok(page.items.length <= 20 && page.items.length === Math.min(page.total, 20));
    for (const item of page.items) expectUser(t, item, {});
    t.notMatch(response.body, /argon2/, 'no password hash anywhere in the list');
  });

  t.test('?q= matches the email or the name', async (t) => {
    const mail = (await get(app, `/v1/users?q=${emailTag}`, admin)).json() as Page<User>;
    t.equal(mail.total, 3);
    t.same(mail.items.map((u) => u.id).sort(), byEmail.map((u) => u.id).sort());

    const named = (await get(app, `/v1/users?q=${encodeURIComponent(nameTag)}`, admin)).json() as Page<User>;
    t.equal(named.total, 2);
    t.same(named.items.map((u) => u.id).sort(), byName.map((u) => u.id).sort());

    const none = (await get(app, `/v1/users?q=${tag('nobody')}`, admin)).json() as Page<User>;
    t.same({ items: none.items, total: none.total }, { items: [], total: 0 });

    // Wildcards are searched literally, not as LIKE patterns.
    const percent = (await get(app, `/v1/users?q=${encodeURIComponent('%')}`, admin)).json() as Page<User>;
    t.equal(percent.total, 0, '% matches nothing literally');
  });

  t.test('?limit, ?offset and ?sort page through the matches', async (t) => {
    const asc = (await get(app, `/v1/users?q=${emailTag}&sort=name`, admin)).json() as Page<User>;
    t.same(
      asc.items.map((u) => u.name),
      ['Alice', 'Bob', 'Charlie'],
      'sorted by name ascending',
    );
    const desc = (await get(app, `/v1/users?q=${emailTag}&sort=-name`, admin)).json() as Page<User>;
    t.same(
      desc.items.map((u) => u.name),
      ['Charlie', 'Bob', 'Alice'],
      'sorted by name descending',
    );

    const second = await get(app, `/v1/users?q=${emailTag}&sort=name&limit=1&offset=1`, admin);
    t.equal(second.statusCode, 200, second.body);
    const page = second.json() as Page<User>;
    t.equal(page.limit, 1);
    t.equal(page.offset, 1);
    t.equal(page.total, 3, 'total counts all matches, not the page');
    t.same(
      page.items.map((u) => u.id),
      [asc.items[1]?.id],
    );

    const past = (await get(app, `/v1/users?q=${emailTag}&offset=3`, admin)).json() as Page<User>;
    t.same({ items: past.items, total: past.total }, { items: [], total: 3 });

    t.equal((await get(app, '/v1/users?limit=1', admin)).statusCode, 200, 'limit=1 accepted');
    t.equal((await get(app, '/v1/users?limit=100', admin)).statusCode, 200, 'limit=100 accepted');
  });

  t.test('out-of-range values and a sort outside the whitelist → 400', async (t) => {
    expectValidation(t, await get(app, '/v1/users?limit=0', admin), 'limit');
    expectValidation(t, await get(app, '/v1/users?limit=101', admin), 'limit');
    expectValidation(t, await get(app, '/v1/users?limit=ten', admin), 'limit');
    expectValidation(t, await get(app, '/v1/users?offset=-1', admin), 'offset');
    expectValidation(t, await get(app, '/v1/users?sort=password', admin), 'sort');
    expectValidation(t, await get(app, '/v1/users?sort=passwordHash', admin), 'sort');
  });

  t.test('non-admin → 403 FORBIDDEN; no token → 401 UNAUTHORIZED', async (t) => {
    expectError(t, await get(app, '/v1/users', user), 403, 'FORBIDDEN');
    expectError(t, await get(app, '/v1/users'), 401, 'UNAUTHORIZED');
  });
});

t.test('GET /v1/users/:id', async (t) => {
  const app = await build(t);
  const admin = await createAdmin(app);
  const user = await createUser(app, 'reader');
  const other = await createUser(app, 'other');

  t.test('the user itself → 200', async (t) => {
    const response = await get(app, `/v1/users/${user.id}`, user);
    t.equal(response.statusCode, 200, response.body);
    expectUser(t, response.json() as User, { id: user.id, email: user.email });
  });

  t.test('an admin → 200 for anyone', async (t) => {
    const response = await get(app, `/v1/users/${user.id}`, admin);
    t.equal(response.statusCode, 200, response.body);
    expectUser(t, response.json() as User, { id: user.id, email: user.email });
  });

  t.test('another user\'s id asked by a non-admin → 404 NOT_FOUND, like an unknown id', async (t) => {
    const body = expectError(t, await get(app, `/v1/users/${other.id}`, user), 404, 'NOT_FOUND');
    t.notMatch(body.message, other.email, 'the other user\'s email is not disclosed');
    expectError(t, await get(app, `/v1/users/${randomUUID()}`, user), 404, 'NOT_FOUND');
    expectError(t, await get(app, `/v1/users/${randomUUID()}`, admin), 404, 'NOT_FOUND');
  });

  t.test('a malformed id → 400, not 500', async (t) => {
    expectValidation(t, await get(app, '/v1/users/not-a-uuid', admin), 'id');
    expectValidation(t, await get(app, '/v1/users/123', admin), 'id');
    expectValidation(t, await get(app, `/v1/users/${user.id}x`, user), 'id');
  });

  t.test('no token → 401', async (t) => {
    expectError(t, await get(app, `/v1/users/${user.id}`), 401, 'UNAUTHORIZED');
  });
});

t.test('PATCH /v1/users/:id', async (t) => {
  const app = await build(t);
  const admin = await createAdmin(app);

  t.test('the name by the user itself → 200 with version + 1', async (t) => {
    const user = await createUser(app, 'renamed');
    const before = (await get(app, `/v1/users/${user.id}`, user)).json() as User;
    const response = await patch(app, user.id, { name: 'New Name' }, user);
    t.equal(response.statusCode, 200, response.body);
    const after = response.json() as User;
    expectUser(t, after, { id: user.id, name: 'New Name', role: 'user', email: user.email });
    t.equal(after.version, before.version + 1, 'version + 1');
    t.equal(after.createdAt, before.createdAt, 'createdAt unchanged');
    // Stored, not only echoed.
    t.match((await get(app, `/v1/users/${user.id}`, user)).json(), { name: 'New Name', version: before.version + 1 });
    // A name change does not end the session.
    t.equal((await get(app, '/v1/users/me', user)).statusCode, 200);
  });

  t.test('the name by an admin → 200', async (t) => {
    const user = await createUser(app, 'renamed2');
    const response = await patch(app, user.id, { name: 'Set By Admin' }, admin);
    t.equal(response.statusCode, 200, response.body);
    t.equal((response.json() as User).name, 'Set By Admin');
  });

  t.test('the password by the user itself → 200; the new password logs in, the old one does not', async (t) => {
    const user = await createUser(app, 'newpass');
    const response = await patch(app, user.id, { password: 'a-brand-new-password' }, user);
    t.equal(response.statusCode, 200, response.body);
    t.notMatch(response.body, /a-brand-new-password|argon2/);
    const fresh = await login(app, user.email, 'a-brand-new-password');
    t.equal((await get(app, '/v1/users/me', fresh.accessToken)).statusCode, 200);
    const old = await app.inject({ method: 'POST', url: '/v1/auth/login', payload: { email: user.email, password: PASSWORD } });
    expectError(t, old, 401, 'INVALID_CREDENTIALS');
  });

  t.test('role by the user itself → 403 FORBIDDEN and nothing changes', async (t) => {
    const user = await createUser(app, 'climber');
    const before = (await get(app, `/v1/users/${user.id}`, user)).json() as User;
    expectError(t, await patch(app, user.id, { role: 'admin' }, user), 403, 'FORBIDDEN');
    expectError(t, await patch(app, user.id, { name: 'Sneaky', role: 'admin' }, user), 403, 'FORBIDDEN');
    const after = (await get(app, `/v1/users/${user.id}`, user)).json() as User;
    t.match(after, { role: 'user', name: before.name, version: before.version }, 'role, name and version unchanged');
    expectError(t, await get(app, '/v1/users', user), 403, 'FORBIDDEN');
  });

  t.test('role by an admin → 200; the target\'s old access token then gives 401', async (t) => {
    const target = await createUser(app, 'promoted');
    t.equal((await get(app, '/v1/users/me', target)).statusCode, 200);
    const response = await patch(app, target.id, { role: 'admin' }, admin);
    t.equal(response.statusCode, 200, response.body);
    t.match(response.json(), { id: target.id, role: 'admin' });
    expectError(t, await get(app, '/v1/users/me', target), 401);
    // A new login carries the new role.
    const fresh = await login(app, target.email);
    t.equal((await get(app, '/v1/users', fresh.accessToken)).statusCode, 200, 'the promoted user can list users');
  });

  t.test('another user\'s id by a non-admin → 404 and nothing changes', async (t) => {
    const user = await createUser(app, 'meddler');
    const victim = await createUser(app, 'victim');
    expectError(t, await patch(app, victim.id, { name: 'Hacked' }, user), 404, 'NOT_FOUND');
    const after = (await get(app, `/v1/users/${victim.id}`, victim)).json() as User;
    t.not(after.name, 'Hacked');
    t.equal(after.version, 1);
  });

  t.test('unknown or malformed id → 404 / 400; no token → 401', async (t) => {
    expectError(t, await patch(app, randomUUID(), { name: 'Nobody' }, admin), 404, 'NOT_FOUND');
    expectValidation(t, await patch(app, 'not-a-uuid', { name: 'Nobody' }, admin), 'id');
    expectError(t, await patch(app, admin.id, { name: 'Nobody' }), 401, 'UNAUTHORIZED');
  });

  t.test('invalid bodies → 400', async (t) => {
    const user = await createUser(app, 'badpatch');
    const body = expectError(t, await patch(app, user.id, {}, user), 400, 'VALIDATION_ERROR');
    t.ok((body.details ?? []).length > 0, 'details explain the empty body');
    expectValidation(t, await patch(app, user.id, { name: 'Ok', nickname: 'x' }, user), 'nickname');
    expectValidation(t, await patch(app, user.id, { email: 'new@example.com' }, user), 'email');
    expectValidation(t, await patch(app, user.id, { role: 'superuser' }, admin), 'role');
    expectValidation(t, await patch(app, user.id, { name: '' }, user), 'name');
    expectValidation(t, await patch(app, user.id, { password: 'short' }, user), 'password');
    t.equal(((await get(app, `/v1/users/${user.id}`, user)).json() as User).version, 1, 'nothing was written');
  });
});

t.test('DELETE /v1/users/:id', async (t) => {
  const app = await build(t);
  const admin = await createAdmin(app);

  t.test('admin → 204 soft delete; the user is gone and cannot authenticate', async (t) => {
    const target = await createUser(app, 'doomed');
    const response = await remove(app, target.id, admin);
    t.equal(response.statusCode, 204, response.body);
    t.equal(response.body, '', 'no content');
    expectError(t, await get(app, `/v1/users/${target.id}`, admin), 404, 'NOT_FOUND');
    const listed = (await get(app, `/v1/users?q=${encodeURIComponent(target.email)}`, admin)).json() as Page<User>;
    t.equal(listed.total, 0, 'not listed anymore');
    expectError(t, await get(app, '/v1/users/me', target), 401);
    expectError(t, await get(app, `/v1/users/${target.id}`, target), 401);
    const relogin = await app.inject({ method: 'POST', url: '/v1/auth/login', payload: { email: target.email, password: PASSWORD } });
    expectError(t, relogin, 401, 'INVALID_CREDENTIALS');
    const refresh = await app.inject({ method: 'POST', url: '/v1/auth/refresh', payload: { refreshToken: target.refreshToken } });
    expectError(t, refresh, 401);
  });

  t.test('non-admin → 403 FORBIDDEN and the user stays; no token → 401', async (t) => {
    const user = await createUser(app, 'notadmin');
    const target = await createUser(app, 'survivor');
    expectError(t, await remove(app, target.id, user), 403, 'FORBIDDEN');
    expectError(t, await remove(app, user.id, user), 403, 'FORBIDDEN');
    expectError(t, await remove(app, target.id), 401, 'UNAUTHORIZED');
    t.equal((await get(app, `/v1/users/${target.id}`, admin)).statusCode, 200, 'still there');
    t.equal((await get(app, '/v1/users/me', target)).statusCode, 200, 'still signed in');
  });

  t.test('malformed id → 400', async (t) => {
    expectValidation(t, await remove(app, 'not-a-uuid', admin), 'id');
  });
});

t.test('request ids and unknown routes', async (t) => {
  const app = await build(t);
  const user = await createUser(app, 'reqid');

  t.test('every response has an x-request-id header', async (t) => {
    const responses = {
      ok: await get(app, '/v1/users/me', user),
      unauthorized: await get(app, '/v1/users/me'),
      notFound: await get(app, '/v1/nowhere'),
      invalid: await get(app, '/v1/users/not-a-uuid', user),
      live: await get(app, '/health/live'),
    };
    const ids = new Set<string>();
    for (const [name, response] of Object.entries(responses)) {
      const id = response.headers['x-request-id'];
      t.type(id, 'string', `${name}: has x-request-id`);
      t.match(id, REQUEST_ID, `${name}: a well-formed id`);
      ids.add(String(id));
    }
    t.equal(ids.size, Object.keys(responses).length, 'each request gets its own id');
  });

  t.test('a valid incoming x-request-id is echoed, also in error bodies', async (t) => {
    const ok = await app.inject({ method: 'GET', url: '/v1/users/me', headers: { ...headersOf(user), 'x-request-id': 'abc-123' } });
    t.equal(ok.statusCode, 200);
    t.equal(ok.headers['x-request-id'], 'abc-123');
    const failed = await app.inject({ method: 'GET', url: '/v1/users/me', headers: { 'x-request-id': 'abc-123' } });
    t.equal(expectError(t, failed, 401).requestId, 'abc-123');
    const longest = 'A.b_c-9'.repeat(18).slice(0, 128);
    const max = await app.inject({ method: 'GET', url: '/health/live', headers: { 'x-request-id': longest } });
    t.equal(max.headers['x-request-id'], longest, '128 characters are accepted');
  });

  t.test('an invalid incoming x-request-id is replaced', async (t) => {
    for (const bad of ['x'.repeat(200), 'x'.repeat(129), 'abc 123', 'abc/123', 'ünïcode', '<script>']) {
      const response = await app.inject({ method: 'GET', url: '/v1/users/me', headers: { 'x-request-id': bad } });
      const id = response.headers['x-request-id'];
      t.not(id, bad, `'${bad.slice(0, 20)}' is not echoed`);
      t.match(id, REQUEST_ID, 'a generated, well-formed id instead');
      t.equal(expectError(t, response, 401).requestId, id, 'the body carries the replacement');
    }
  });

  t.test('an unknown route → 404 JSON error body with code NOT_FOUND', async (t) => {
    expectError(t, await get(app, '/v1/no-such-thing'), 404, 'NOT_FOUND');
    expectError(t, await get(app, '/nowhere?x=1'), 404, 'NOT_FOUND');
    const wrongMethod = await app.inject({ method: 'PUT', url: '/v1/users/me', headers: headersOf(user), payload: {} });
    expectError(t, wrongMethod, 404, 'NOT_FOUND');
  });
});
