import Fastify, { type InjectOptions, type RouteOptions } from 'fastify';
import { sql } from 'drizzle-orm';
import t from 'tap';
import plinth, { serverOptions } from '../../app/app.js';
import { testSettings } from '../helpers/app.js';
import { createProduct, orderRequest } from '../helpers/catalog.js';
import { rowsOf } from '../helpers/db.js';
import { errorShapeProblems } from '../helpers/error-shape.js';
import { createAdmin, createUser } from '../helpers/users.js';

/*
 * A user cannot read or change another user's data through any route: every route of the app is tried with a second
 * user's token against the first user's ids (404 or 403 as api.md says), and admin-only routes refuse a user (403).
 * The table below must name every route the app registers, so a new route cannot go untested.
 */

type Expect = { status: number[]; code?: string };
const NOT_FOUND: Expect = { status: [404], code: 'NOT_FOUND' };
const FORBIDDEN: Expect = { status: [403], code: 'FORBIDDEN' };

t.test('a second user against the first user\'s data, on every route', async (t) => {
  const routes: string[] = [];
  const settings = await testSettings();
  const app = Fastify(serverOptions(settings));
  t.teardown(() => app.close());
  app.addHook('onRoute', (route: RouteOptions) => {
    for (const method of [route.method].flat()) if (method !== 'HEAD' && method !== 'OPTIONS') routes.push(`${method} ${route.url}`);
  });
  await app.register(plinth, { settings });
  await app.ready();

  const admin = await createAdmin(app);
  const alice = await createUser(app, 'alice');
  const mallory = await createUser(app, 'mallory');
  const product = await createProduct(app, admin, { stock: 10 });
  const malloryProduct = await createProduct(app, admin, { stock: 10 });
  const order = (await app.inject(orderRequest(alice, [{ productId: product.id, quantity: 2 }]))).json<{ id: string }>();

  // Mallory's own requests may write (her order, her sessions); nothing of Alice's, no user, flag or Alice's product.
  const snapshot = async () => {
    const rows = async (statement: ReturnType<typeof sql>) =>
      (await rowsOf<{ row: string }>(app.db, statement)).map((x) => x.row).sort();
    return {
      users: await rows(sql`select t::text as row from users t`),
      flags: await rows(sql`select t::text as row from feature_flags t`),
      product: await rows(sql`select t::text as row from products t where id = ${product.id}`),
      orders: await rows(sql`select t::text as row from orders t where user_id = ${alice.id}`),
      items: await rows(sql`select i::text as row from order_items i join orders o on o.id = i.order_id where o.user_id = ${alice.id}`),
      sessions: await rows(sql`select t::text as row from sessions t where user_id = ${alice.id}`),
      refreshTokens: await rows(sql`select r::text as row from refresh_tokens r join sessions s on s.id = r.session_id where s.user_id = ${alice.id}`),
    };
  };

  const as = mallory.auth;
  const json = { 'content-type': 'application/json' };
  // Public or caller-scoped routes: mallory gets her own view (2xx) or a refusal; checked below to hold nothing of Alice's.
  const table: Record<string, { request: InjectOptions; expect: Expect | 'own' }> = {
    'GET /metrics': { request: { method: 'GET', url: '/metrics' }, expect: 'own' },
    'GET /docs': { request: { method: 'GET', url: '/docs' }, expect: 'own' },
    'GET /docs/static/index.html': { request: { method: 'GET', url: '/docs/static/index.html' }, expect: 'own' },
    'GET /docs/static/swagger-initializer.js': { request: { method: 'GET', url: '/docs/static/swagger-initializer.js' }, expect: 'own' },
    'GET /docs/json': { request: { method: 'GET', url: '/docs/json' }, expect: 'own' },
    'GET /docs/yaml': { request: { method: 'GET', url: '/docs/yaml' }, expect: 'own' },
    'GET /docs/static/*': { request: { method: 'GET', url: '/docs/static/../../../package.json' }, expect: { status: [403, 404] } },
    'GET /docs/asyncapi.json': { request: { method: 'GET', url: '/docs/asyncapi.json' }, expect: 'own' },
    'GET /health/live': { request: { method: 'GET', url: '/health/live' }, expect: 'own' },
    'GET /health/ready': { request: { method: 'GET', url: '/health/ready' }, expect: 'own' },
    'POST /v1/auth/register': {
      request: { method: 'POST', url: '/v1/auth/register', payload: { email: alice.email, password: 'takeover-password', name: 'Mallory' } },
      expect: { status: [409], code: 'EMAIL_TAKEN' },
    },
    'POST /v1/auth/login': {
      request: { method: 'POST', url: '/v1/auth/login', payload: { email: alice.email, password: 'guess-guess-guess' } },
      expect: { status: [401], code: 'INVALID_CREDENTIALS' },
    },
    'POST /v1/auth/refresh': {
      request: { method: 'POST', url: '/v1/auth/refresh', headers: as, payload: { refreshToken: `${alice.refreshToken.split('.')[0]}.forged` } },
      expect: { status: [401] },
    },
    // Logging out with Alice's refresh token ends Mallory's session only (checked below: Alice's tokens still work).
    'POST /v1/auth/logout': { request: { method: 'POST', url: '/v1/auth/logout', headers: { ...as, ...json }, payload: { refreshToken: alice.refreshToken } }, expect: 'own' },
    'GET /v1/feature-flags': { request: { method: 'GET', url: '/v1/feature-flags', headers: as }, expect: FORBIDDEN },
    'GET /v1/feature-flags/evaluate': { request: { method: 'GET', url: '/v1/feature-flags/evaluate', headers: as }, expect: 'own' },
    'PUT /v1/feature-flags/:key': {
      request: { method: 'PUT', url: '/v1/feature-flags/orders.checkout', headers: as, payload: { enabled: false, rolloutPercent: 0 } },
      expect: FORBIDDEN,
    },
    'POST /v1/orders': {
      // Alice's idempotency key from Mallory: her own new order at most, never Alice's order back.
      request: { ...orderRequest(mallory, [{ productId: malloryProduct.id, quantity: 1 }]) },
      expect: 'own',
    },
    'GET /v1/orders': { request: { method: 'GET', url: `/v1/orders?userId=${alice.id}`, headers: as }, expect: FORBIDDEN },
    'GET /v1/orders/:id': { request: { method: 'GET', url: `/v1/orders/${order.id}`, headers: as }, expect: NOT_FOUND },
    'POST /v1/orders/:id/cancel': { request: { method: 'POST', url: `/v1/orders/${order.id}/cancel`, headers: as }, expect: NOT_FOUND },
    'POST /v1/orders/:id/ship': { request: { method: 'POST', url: `/v1/orders/${order.id}/ship`, headers: as }, expect: FORBIDDEN },
    'GET /v1/products': { request: { method: 'GET', url: '/v1/products' }, expect: 'own' },
    'GET /v1/products/:id': { request: { method: 'GET', url: `/v1/products/${product.id}` }, expect: 'own' },
    'POST /v1/products': {
      request: { method: 'POST', url: '/v1/products', headers: as, payload: { sku: 'mallory-1', name: 'x', priceCents: 1, stock: 1 } },
      expect: FORBIDDEN,
    },
    'PATCH /v1/products/:id': {
      request: { method: 'PATCH', url: `/v1/products/${product.id}`, headers: as, payload: { version: 1, priceCents: 0 } },
      expect: FORBIDDEN,
    },
    'DELETE /v1/products/:id': { request: { method: 'DELETE', url: `/v1/products/${product.id}`, headers: as }, expect: FORBIDDEN },
    'GET /v1/users/me': { request: { method: 'GET', url: '/v1/users/me', headers: as }, expect: 'own' },
    'GET /v1/users': { request: { method: 'GET', url: '/v1/users', headers: as }, expect: FORBIDDEN },
    'GET /v1/users/:id': { request: { method: 'GET', url: `/v1/users/${alice.id}`, headers: as }, expect: NOT_FOUND },
    'PATCH /v1/users/:id': { request: { method: 'PATCH', url: `/v1/users/${alice.id}`, headers: as, payload: { name: 'pwned' } }, expect: NOT_FOUND },
    'DELETE /v1/users/:id': { request: { method: 'DELETE', url: `/v1/users/${alice.id}`, headers: as }, expect: FORBIDDEN },
  };
  t.same(routes.filter((r) => !(r in table)), [], 'every route of the app is in the table');

  // More ways in on the user-owned routes: a password or role change of Alice, her orders listed by Mallory.
  const extra: [string, InjectOptions, Expect][] = [
    ['PATCH /v1/users/:id password', { method: 'PATCH', url: `/v1/users/${alice.id}`, headers: as, payload: { password: 'new-password-1' } }, NOT_FOUND],
    ['PATCH /v1/users/:id role', { method: 'PATCH', url: `/v1/users/${alice.id}`, headers: as, payload: { role: 'admin' } }, { status: [403, 404] }],
    ['PATCH own role', { method: 'PATCH', url: `/v1/users/${mallory.id}`, headers: as, payload: { role: 'admin' } }, FORBIDDEN],
    ['POST /v1/orders/:id/cancel with body', { method: 'POST', url: `/v1/orders/${order.id}/cancel`, headers: { ...as, ...json }, payload: {} }, NOT_FOUND],
  ];

  const before = await snapshot();
  const refusals: string[] = [];
  for (const [name, { request, expect }] of [...Object.entries(table).filter(([n]) => n !== 'POST /v1/auth/logout'),
    ...extra.map(([n, request, expect]) => [n, { request, expect }] as const)]) {
    const response = await app.inject(request);
    const body = response.body;
    if (expect === 'own') {
      if (response.statusCode >= 500) refusals.push(`${name}: ${response.statusCode}`);
      if (body.includes(alice.id) && !name.startsWith('GET /v1/products') && !name.startsWith('GET /docs')) {
        refusals.push(`${name}: shows Alice's id`);
      }
      if (body.includes(order.id)) refusals.push(`${name}: shows Alice's order`);
      if (body.includes(alice.email)) refusals.push(`${name}: shows Alice's email`);
      continue;
    }
    if (!expect.status.includes(response.statusCode)) refusals.push(`${name}: ${response.statusCode} ${body.slice(0, 120)}`);
    else if (expect.code && response.json<{ code: string }>().code !== expect.code) refusals.push(`${name}: code ${body.slice(0, 120)}`);
    const problems = errorShapeProblems(response);
    if (problems.length > 0) refusals.push(`${name}: ${problems.join('; ')}`);
  }
  t.same(refusals, [], 'every route refuses Mallory or shows her only her own');
  const after = await snapshot();
  t.same(after, before, 'nothing of Alice\'s changed, nor any user, flag or her product');

  // Her own order list holds none of Alice's orders.
  const list = await app.inject({ method: 'GET', url: '/v1/orders', headers: as });
  t.notOk(list.body.includes(order.id), 'Mallory\'s order list does not hold Alice\'s order');

  // Logout with Alice's refresh token: Mallory's session ends, Alice's does not.
  const logout = await app.inject(table['POST /v1/auth/logout']!.request);
  t.equal(logout.statusCode, 204, 'Mallory logged out');
  t.equal((await app.inject({ method: 'GET', url: '/v1/users/me', headers: alice.auth })).statusCode, 200, 'Alice\'s access token still works');
  const refreshed = await app.inject({ method: 'POST', url: '/v1/auth/refresh', payload: { refreshToken: alice.refreshToken } });
  t.equal(refreshed.statusCode, 200, 'Alice\'s refresh token still works');

  const alicesOrder = await app.inject({ method: 'GET', url: `/v1/orders/${order.id}`, headers: alice.auth });
  t.match(alicesOrder.json(), { status: 'pending', version: 1 }, 'Alice\'s order is untouched');
  const me = await app.inject({ method: 'GET', url: '/v1/users/me', headers: alice.auth });
  t.match(me.json(), { name: 'Test User', role: 'user', version: 1 }, 'Alice\'s account is untouched');
  const stock = await app.inject({ method: 'GET', url: `/v1/products/${product.id}` });
  t.match(stock.json(), { stock: 8, priceCents: product.priceCents }, 'Alice\'s product only moved by her order');
});
