import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import t from 'tap';
import plinth, { serverOptions } from '../../app/app.js';
import type { AccessClaims } from '../../app/core/security/sessions.js';
import { build, testSettings } from '../helpers/app.js';
import { expectError, expectValidation, ISO_UTC } from '../helpers/http.js';
import { createAdmin, createUser, login, PASSWORD, registerUser, uniqueEmail } from '../helpers/users.js';

/** POST /v1/auth/* and the access-token rules of api.md ("Auth — /v1/auth"), through app.inject(). */

interface TokenPair {
  accessToken: string;
  refreshToken: string;
  tokenType: string;
  expiresIn: number;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const me = (app: FastifyInstance, token: string) => app.inject({ method: 'GET', url: '/v1/users/me', headers: bearer(token) });
const register = (app: FastifyInstance, payload: unknown) => app.inject({ method: 'POST', url: '/v1/auth/register', payload: payload as object });
const loginRaw = (app: FastifyInstance, payload: unknown) => app.inject({ method: 'POST', url: '/v1/auth/login', payload: payload as object });
const refresh = (app: FastifyInstance, refreshToken: string) =>
  app.inject({ method: 'POST', url: '/v1/auth/refresh', payload: { refreshToken } });
const logout = (app: FastifyInstance, accessToken: string | undefined, refreshToken: string) =>
  app.inject({
    method: 'POST',
    url: '/v1/auth/logout',
    headers: accessToken ? bearer(accessToken) : {},
    payload: { refreshToken },
  });

const b64url = (value: string | Buffer) => Buffer.from(value).toString('base64url');
const jwtParts = (token: string) => {
  const [header, payload, signature] = token.split('.');
  if (header === undefined || payload === undefined || signature === undefined) throw new Error(`not a JWT: ${token}`);
  return { header, payload, signature };
};
const claimsOf = (token: string) => JSON.parse(Buffer.from(jwtParts(token).payload, 'base64url').toString()) as Record<string, unknown>;

t.test('POST /v1/auth/register', async (t) => {
  const app = await build(t);

  t.test('201 with the user and never the password or its hash', async (t) => {
    const email = uniqueEmail('reg');
    const response = await register(app, { email, password: PASSWORD, name: 'Ada Lovelace' });
    t.equal(response.statusCode, 201, response.body);
    t.match(response.headers['content-type'], /^application\/json/);
    const user = response.json() as Record<string, unknown>;
    t.match(user.id, UUID, 'id is a UUID');
    t.equal(user.email, email);
    t.equal(user.name, 'Ada Lovelace');
    t.equal(user.role, 'user', 'a registered user is a plain user');
    t.type(user.version, 'number');
    t.match(user.createdAt, ISO_UTC, 'createdAt is an ISO-8601 UTC timestamp');
    t.notOk('password' in user, 'no password');
    t.notOk('passwordHash' in user, 'no passwordHash');
    t.notOk('password_hash' in user, 'no password_hash');
    t.notMatch(response.body, /argon2|correct-horse/, 'neither the hash nor the password leaks in any field');
    // The account really exists: its credentials work.
    const tokens = await login(app, email);
    const self = await me(app, tokens.accessToken);
    t.equal(self.statusCode, 200);
    t.equal(self.json().id, user.id);
  });

  t.test('the same email in another case → 409 EMAIL_TAKEN', async (t) => {
    const { email } = await registerUser(app, 'dup');
    const again = await register(app, { email: email.toUpperCase(), password: PASSWORD, name: 'Copy' });
    expectError(t, again, 409, 'EMAIL_TAKEN');
    const exact = await register(app, { email, password: PASSWORD, name: 'Copy' });
    expectError(t, exact, 409, 'EMAIL_TAKEN');
  });

  t.test('invalid bodies → 400 VALIDATION_ERROR naming the field', async (t) => {
    const valid = () => ({ email: uniqueEmail('val'), password: PASSWORD, name: 'Valid' });

    expectValidation(t, await register(app, { ...valid(), email: 'not-an-email' }), 'email');
    expectValidation(t, await register(app, { ...valid(), password: 'a'.repeat(7) }), 'password');
    expectValidation(t, await register(app, { ...valid(), password: 'a'.repeat(129) }), 'password');
    const noName: Partial<ReturnType<typeof valid>> = valid();
    delete noName.name;
    expectValidation(t, await register(app, noName), 'name');
    expectValidation(t, await register(app, { ...valid(), role: 'admin' }), 'role');
    expectValidation(t, await register(app, { ...valid(), password: 12345678 }), 'password');

    // The boundaries themselves are accepted: 8 and 128 characters.
    t.equal((await register(app, { ...valid(), password: 'b'.repeat(8) })).statusCode, 201, '8 chars accepted');
    t.equal((await register(app, { ...valid(), password: 'c'.repeat(128) })).statusCode, 201, '128 chars accepted');
  });

  t.test('a rejected registration creates nothing', async (t) => {
    const email = uniqueEmail('extra');
    expectValidation(t, await register(app, { email, password: PASSWORD, name: 'Sneaky', role: 'admin' }), 'role');
    // The email is still free: registering it properly succeeds (and as a plain user).
    const ok = await register(app, { email, password: PASSWORD, name: 'Honest' });
    t.equal(ok.statusCode, 201);
    t.equal(ok.json().role, 'user');
  });

  t.test('a body that is not JSON → 400', async (t) => {
    const response = await app.inject({
      method: 'POST',
      url: '/v1/auth/register',
      headers: { 'content-type': 'application/json' },
      payload: '{"email": "x@example.com", "password": ',
    });
    const body = expectError(t, response, 400);
    t.not(body.code, 'INTERNAL_ERROR');
  });

  t.test('every error carries a request id equal to the x-request-id header, also a caller-chosen one', async (t) => {
    const response = await app.inject({
      method: 'POST',
      url: '/v1/auth/register',
      headers: { 'x-request-id': 'register-req.42' },
      payload: { email: 'nope' },
    });
    const body = expectError(t, response, 400, 'VALIDATION_ERROR');
    t.equal(body.requestId, 'register-req.42');
  });
});

t.test('POST /v1/auth/register over the body limit → 413', async (t) => {
  const app = await build(t, { env: { BODY_LIMIT: '2048' } });
  const payload = JSON.stringify({ email: uniqueEmail('big'), password: PASSWORD, name: 'x'.repeat(4096) });
  t.ok(Buffer.byteLength(payload) > 2048, 'the payload is over the limit');
  const response = await app.inject({
    method: 'POST',
    url: '/v1/auth/register',
    headers: { 'content-type': 'application/json' },
    payload,
  });
  expectError(t, response, 413);

  // Just under the limit the same route answers normally (a schema error here, not 413).
  const small = await register(app, { email: uniqueEmail('small'), password: PASSWORD, name: 'x'.repeat(1000) });
  expectValidation(t, small, 'name');
});

t.test('POST /v1/auth/login', async (t) => {
  const app = await build(t);

  t.test('200 with an access token, a refresh token, Bearer and 900 s', async (t) => {
    const { id, email } = await registerUser(app, 'login');
    const response = await loginRaw(app, { email, password: PASSWORD });
    t.equal(response.statusCode, 200, response.body);
    const pair = response.json() as TokenPair;
    t.same(Object.keys(pair).sort(), ['accessToken', 'expiresIn', 'refreshToken', 'tokenType']);
    t.equal(pair.tokenType, 'Bearer');
    t.equal(pair.expiresIn, 900);
    t.type(pair.accessToken, 'string');
    t.type(pair.refreshToken, 'string');
    t.not(pair.accessToken, pair.refreshToken);
    const claims = claimsOf(pair.accessToken);
    t.equal(claims.sub, id, 'the access token names the user');
    t.type(claims.sid, 'string', 'the access token carries the session id');
    t.equal(Number(claims.exp) - Number(claims.iat), 900, 'the access token lives 15 min');
    const self = await me(app, pair.accessToken);
    t.equal(self.statusCode, 200);
    t.equal(self.json().id, id);
  });

  t.test('wrong password and unknown email give the same 401 INVALID_CREDENTIALS', async (t) => {
    const { email } = await registerUser(app, 'creds');
    const wrong = await loginRaw(app, { email, password: 'not-the-password' });
    const unknown = await loginRaw(app, { email: uniqueEmail('ghost'), password: PASSWORD });
    const a = expectError(t, wrong, 401, 'INVALID_CREDENTIALS');
    const b = expectError(t, unknown, 401, 'INVALID_CREDENTIALS');
    t.same({ ...a, requestId: undefined }, { ...b, requestId: undefined }, 'identical bodies apart from requestId');
    t.not(a.requestId, b.requestId, 'each answer has its own request id');
  });

  t.test('an unknown field → 400', async (t) => {
    const { email } = await registerUser(app, 'login-extra');
    expectValidation(t, await loginRaw(app, { email, password: PASSWORD, remember: true }), 'remember');
  });
});

t.test('POST /v1/auth/login: repeated failures → 429', async (t) => {
  const app = await build(t, { env: { LOGIN_MAX_FAILURES: '3' } });
  const { email } = await registerUser(app, 'locked');
  for (let i = 1; i <= 3; i++) {
    expectError(t, await loginRaw(app, { email, password: `wrong-${i}-password` }), 401, 'INVALID_CREDENTIALS');
  }
  expectError(t, await loginRaw(app, { email, password: 'wrong-4-password' }), 429);
  // While locked out even the right password is refused: guessing cannot go on.
  expectError(t, await loginRaw(app, { email, password: PASSWORD }), 429);
});

t.test('POST /v1/auth/refresh', async (t) => {
  const app = await build(t);

  t.test('200 with a new pair; the new refresh token differs and the new access token works', async (t) => {
    const user = await createUser(app, 'refresh');
    const response = await refresh(app, user.refreshToken);
    t.equal(response.statusCode, 200, response.body);
    const pair = response.json() as TokenPair;
    t.equal(pair.tokenType, 'Bearer');
    t.equal(pair.expiresIn, 900);
    t.not(pair.refreshToken, user.refreshToken, 'a new refresh token');
    t.not(pair.accessToken, user.accessToken, 'a new access token');
    t.equal(claimsOf(pair.accessToken).sid, claimsOf(user.accessToken).sid, 'same session (token family)');
    const self = await me(app, pair.accessToken);
    t.equal(self.statusCode, 200);
    t.equal(self.json().id, user.id);
    // The new refresh token can be used in turn.
    const next = await refresh(app, pair.refreshToken);
    t.equal(next.statusCode, 200, next.body);
  });

  t.test('a spent refresh token again → 401 TOKEN_REUSED and the whole family is revoked', async (t) => {
    const user = await createUser(app, 'reuse');
    const first = await refresh(app, user.refreshToken);
    t.equal(first.statusCode, 200, first.body);
    const pair = first.json() as TokenPair;
    t.equal((await me(app, pair.accessToken)).statusCode, 200, 'the new pair works before the reuse');

    expectError(t, await refresh(app, user.refreshToken), 401, 'TOKEN_REUSED');

    expectError(t, await refresh(app, pair.refreshToken), 401);
    expectError(t, await me(app, pair.accessToken), 401);
    expectError(t, await me(app, user.accessToken), 401);
    // Presenting the spent token once more still fails.
    expectError(t, await refresh(app, user.refreshToken), 401);
    // Other sessions of the same user are not part of the family.
    const other = await login(app, user.email);
    t.equal((await me(app, other.accessToken)).statusCode, 200, 'a fresh login still works');
  });

  t.test('garbage, forged or missing refresh tokens → 401 / 400', async (t) => {
    const user = await createUser(app, 'garbage');
    expectError(t, await refresh(app, 'garbage'), 401);
    expectError(t, await refresh(app, `${randomUUID()}.${randomBytes(32).toString('base64url')}`), 401);
    // A real token id with a wrong secret.
    const [tokenId] = user.refreshToken.split('.');
    expectError(t, await refresh(app, `${tokenId}.${randomBytes(32).toString('base64url')}`), 401);
    // An access token is not a refresh token.
    expectError(t, await refresh(app, user.accessToken.slice(0, 256)), 401);
    expectValidation(t, await app.inject({ method: 'POST', url: '/v1/auth/refresh', payload: {} }), 'refreshToken');
    // None of this disturbed the real token.
    t.equal((await refresh(app, user.refreshToken)).statusCode, 200);
  });
});

t.test('POST /v1/auth/logout', async (t) => {
  const app = await build(t);

  t.test('204; afterwards the refresh token and the calling access token → 401', async (t) => {
    const user = await createUser(app, 'logout');
    t.equal((await me(app, user.accessToken)).statusCode, 200);
    const response = await logout(app, user.accessToken, user.refreshToken);
    t.equal(response.statusCode, 204, response.body);
    t.equal(response.body, '', 'no content');
    expectError(t, await refresh(app, user.refreshToken), 401);
    expectError(t, await me(app, user.accessToken), 401);
    expectError(t, await logout(app, user.accessToken, user.refreshToken), 401);
  });

  t.test('the presented refresh token of another session of the caller is ended too', async (t) => {
    const user = await createUser(app, 'logout2');
    const second = await login(app, user.email);
    const response = await logout(app, user.accessToken, second.refreshToken);
    t.equal(response.statusCode, 204, response.body);
    expectError(t, await refresh(app, second.refreshToken), 401);
    expectError(t, await me(app, user.accessToken), 401);
  });

  t.test('without a token → 401 UNAUTHORIZED, and nothing is revoked', async (t) => {
    const user = await createUser(app, 'logout3');
    expectError(t, await logout(app, undefined, user.refreshToken), 401, 'UNAUTHORIZED');
    expectError(t, await logout(app, 'not.a.jwt', user.refreshToken), 401);
    t.equal((await me(app, user.accessToken)).statusCode, 200, 'the session still works');
    t.equal((await refresh(app, user.refreshToken)).statusCode, 200, 'the refresh token still works');
  });
});

t.test('access tokens', async (t) => {
  const app = await build(t);
  const user = await createUser(app, 'jwt');
  const { header, payload, signature } = jwtParts(user.accessToken);

  t.test('the genuine token works (control)', async (t) => {
    t.equal((await me(app, user.accessToken)).statusCode, 200);
  });

  t.test('`alg: none` → 401', async (t) => {
    const none = b64url(JSON.stringify({ alg: 'none', typ: 'JWT' }));
    expectError(t, await me(app, `${none}.${payload}.`), 401);
    expectError(t, await me(app, `${none}.${payload}.${signature}`), 401);
  });

  t.test('another HMAC algorithm with the right secret → 401 (only the configured algorithm)', async (t) => {
    const hs384 = b64url(JSON.stringify({ alg: 'HS384', typ: 'JWT' }));
    const mac = createHmac('sha384', app.settings.JWT_SECRET as string).update(`${hs384}.${payload}`).digest('base64url');
    expectError(t, await me(app, `${hs384}.${payload}.${mac}`), 401);
  });

  t.test('a tampered signature or payload → 401', async (t) => {
    const flipped = `${signature[0] === 'A' ? 'B' : 'A'}${signature.slice(1)}`;
    expectError(t, await me(app, `${header}.${payload}.${flipped}`), 401);
    const admin = b64url(JSON.stringify({ ...claimsOf(user.accessToken), role: 'admin' }));
    expectError(t, await me(app, `${header}.${admin}.${signature}`), 401);
    const list = await app.inject({ method: 'GET', url: '/v1/users', headers: bearer(`${header}.${admin}.${signature}`) });
    expectError(t, list, 401);
    expectError(t, await me(app, 'garbage'), 401);
  });

  t.test('an expired token → 401', async (t) => {
    const { sub, sid, role } = claimsOf(user.accessToken) as unknown as AccessClaims;
    const now = Math.floor(Date.now() / 1000);
    // Signed with the app's own key and settings; only the issue time (and so exp = iat + 900 s) lies in the past.
    const expired = app.jwt.sign({ sub, sid, role, iat: now - 3600 } as AccessClaims);
    const claims = claimsOf(expired);
    t.ok(Number(claims.exp) < now, 'exp is in the past');
    expectError(t, await me(app, expired), 401);
    // Control: the same claims issued now are accepted, so only the expiry made the difference.
    const fresh = app.jwt.sign({ sub, sid, role } as AccessClaims);
    t.equal((await me(app, fresh)).statusCode, 200);
  });

  t.test('a token of a deleted user → 401', async (t) => {
    const admin = await createAdmin(app);
    const victim = await createUser(app, 'deleted');
    t.equal((await me(app, victim.accessToken)).statusCode, 200);
    const removed = await app.inject({ method: 'DELETE', url: `/v1/users/${victim.id}`, headers: admin.auth });
    t.equal(removed.statusCode, 204, removed.body);
    expectError(t, await me(app, victim.accessToken), 401);
    expectError(t, await refresh(app, victim.refreshToken), 401);
    // Even a correctly signed, unexpired token of a session that was never revoked (the state a login racing
    // the deletion leaves behind) belongs to a deleted user and must be refused.
    const orphan = app.jwt.sign({ sub: victim.id, sid: randomUUID(), role: 'user' });
    expectError(t, await me(app, orphan), 401);
  });
});

t.test('revocation reaches every instance through pub/sub', async (t) => {
  // A long periodic sync, so only the pub/sub message can make instance A learn of the logout in time.
  const settings = await testSettings({ env: { REVOCATION_SYNC_MS: '600000' } });
  const instances: FastifyInstance[] = [];
  for (let i = 0; i < 2; i++) {
    const instance = Fastify(serverOptions(settings));
    t.teardown(() => instance.close());
    await instance.register(plinth, { settings });
    await instance.ready();
    instances.push(instance);
  }
  const [a, b] = instances as [FastifyInstance, FastifyInstance];

  const user = await createUser(a, 'pubsub');
  t.equal((await me(a, user.accessToken)).statusCode, 200, 'A accepts the token');
  t.equal((await me(b, user.accessToken)).statusCode, 200, 'B accepts the token');

  const out = await logout(b, user.accessToken, user.refreshToken);
  t.equal(out.statusCode, 204, out.body);
  expectError(t, await me(b, user.accessToken), 401);

  const deadline = Date.now() + 2000;
  let last = await me(a, user.accessToken);
  while (last.statusCode === 200 && Date.now() < deadline) {
    await new Promise((resolve) => setImmediate(resolve));
    last = await me(a, user.accessToken);
  }
  expectError(t, last, 401);
  expectError(t, await refresh(a, user.refreshToken), 401);
});
