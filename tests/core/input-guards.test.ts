import Fastify, { type FastifyInstance } from 'fastify';
import t, { type Test } from 'tap';
import { serverOptions } from '../../app/app.js';
import { LockUnavailableError } from '../../app/core/base/errors.js';
import http from '../../app/core/http.js';
import { loadSettings } from '../../app/core/settings/index.js';
import settingsPlugin from '../../app/core/settings/plugin.js';
import { build } from '../helpers/app.js';
import { expectError } from '../helpers/http.js';
import { createAdmin } from '../helpers/users.js';

/*
 * Input the database cannot hold, URLs the router cannot decode and dependency failures: each answered in
 * the api.md shape with the right status, never a 500. Defects found by tests/faults/bad-input.test.ts and the
 * outage tests; these are their fast regression checks (the shutdown 503 is checked by tests/faults/sigterm.test.ts).
 */

/** The http plugin alone, with routes that fail the way a dependency does. */
async function bareApp(t: Test): Promise<FastifyInstance> {
  const settings = loadSettings({ APP_ENV: 'test' });
  const app = Fastify(serverOptions(settings));
  t.teardown(() => app.close());
  await app.register(settingsPlugin, { settings });
  await app.register(http);
  app.get('/db-killed', async () => {
    const cause = Object.assign(new Error('terminating connection due to administrator command'), { name: 'PostgresError', code: '57P01' });
    throw Object.assign(new Error('Failed query: select * from users where id = $1'), { cause });
  });
  app.get('/db-refused', async () => {
    throw Object.assign(new Error('connect ECONNREFUSED 10.0.0.5:5432'), { code: 'ECONNREFUSED' });
  });
  app.get('/lock', async () => {
    throw new LockUnavailableError();
  });
  await app.ready();
  return app;
}

t.test('dependency failures are 503 with their code and Retry-After, never internals', async (t) => {
  const app = await bareApp(t);
  for (const [url, code] of [['/db-killed', 'DATABASE_UNAVAILABLE'], ['/db-refused', 'DATABASE_UNAVAILABLE'], ['/lock', 'LOCK_UNAVAILABLE']]) {
    const response = await app.inject({ method: 'GET', url: url as string });
    const body = expectError(t, response, 503, code);
    t.equal(response.headers['retry-after'], '1', `${url}: Retry-After`);
    t.notMatch(body.message, /select|10\.0\.0\.5|ECONN|terminating/i, `${url}: no internals`);
  }
});

t.test('the whole app', async (t) => {
  const app = await build(t);
  const admin = await createAdmin(app);
  const create = (payload: string) =>
    app.inject({ method: 'POST', url: '/v1/products', headers: { ...admin.auth, 'content-type': 'application/json' }, payload });

  t.test('a NUL character in a JSON string is a 400, not a database error', async (t) => {
    const body = expectError(t, await create('{"sku":"nul-1","name":"a\\u0000b","priceCents":1,"stock":1}'), 400, 'BAD_REQUEST');
    t.match(body.message, /NUL/);
    expectError(t, await create('{"sku":"nul-2","name":"ok","description":"\\u0000","priceCents":1,"stock":1}'), 400, 'BAD_REQUEST');
    expectError(t, await create('{"sku":"nul-3","name":"ok","priceCents":1,"stock":1,"\\u0000":1}'), 400);
  });

  t.test('the text \\u0000 (an escaped backslash) is only text', async (t) => {
    const response = await create('{"sku":"nul-4","name":"a\\\\u0000b","priceCents":1,"stock":1}');
    t.equal(response.statusCode, 201);
    t.equal(response.json<{ name: string }>().name, 'a\\u0000b');
  });

  t.test('a number JSON can write but not hold (1e999) is a 400', async (t) => {
    const body = expectError(t, await create('{"sku":"inf-1","name":"x","priceCents":1e999,"stock":1}'), 400, 'BAD_REQUEST');
    t.match(body.message, /out of range/);
    const product = (await create('{"sku":"inf-2","name":"x","priceCents":1e2,"stock":1}')).json<{ id: string; priceCents: number }>();
    t.equal(product.priceCents, 100, 'ordinary exponents are fine');
    const patch = await app.inject({ method: 'PATCH', url: `/v1/products/${product.id}`, headers: { ...admin.auth, 'content-type': 'application/json' }, payload: '{"version":1e999}' });
    expectError(t, patch, 400);
  });

  t.test('a NUL in the URL is a 400', async (t) => {
    expectError(t, await app.inject({ method: 'GET', url: '/v1/products?q=%00' }), 400, 'BAD_REQUEST');
    expectError(t, await app.inject({ method: 'GET', url: '/v1/products?q=a%00b' }), 400, 'BAD_REQUEST');
  });

  t.test('offset=Infinity is a validation error (Ajv counts Infinity as an integer)', async (t) => {
    expectError(t, await app.inject({ method: 'GET', url: '/v1/products?offset=Infinity' }), 400, 'VALIDATION_ERROR');
    expectError(t, await app.inject({ method: 'GET', url: '/v1/products?offset=1e400' }), 400, 'VALIDATION_ERROR');
  });

  t.test('a URL the router cannot decode, or a parameter too long, in the api.md shape', async (t) => {
    expectError(t, await app.inject({ method: 'GET', url: '/v1/products/%FF%FE' }), 400, 'INVALID_URL');
    expectError(t, await app.inject({ method: 'GET', url: '/v1/orders/%C3%28', headers: admin.auth }), 400, 'INVALID_URL');
    const long = await app.inject({ method: 'GET', url: `/v1/products/${'x'.repeat(200)}` });
    expectError(t, long, 414, 'URI_TOO_LONG');
  });
});
