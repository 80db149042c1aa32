import t from 'tap';
import { createHealth } from '../../app/core/health.js';
import { build } from '../helpers/app.js';
import { startRedisServer } from '../helpers/redis-server.js';

/** Polls /health/ready until it answers `status` (bounded). */
async function readyBecomes(app: Awaited<ReturnType<typeof build>>, status: number, tries = 60) {
  let response = await app.inject({ method: 'GET', url: '/health/ready' });
  for (let i = 0; i < tries && response.statusCode !== status; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    response = await app.inject({ method: 'GET', url: '/health/ready' });
  }
  return response;
}

t.test('liveness and readiness on the real servers', async (t) => {
  const app = await build(t);

  const live = await app.inject({ method: 'GET', url: '/health/live' });
  t.equal(live.statusCode, 200);
  t.same(live.json(), { status: 'ok' });
  t.ok(live.headers['x-request-id'], 'carries a request id');

  const ready = await app.inject({ method: 'GET', url: '/health/ready' });
  t.equal(ready.statusCode, 200);
  const body = ready.json();
  t.equal(body.status, 'ok');
  t.match(body.checks, { db: 'ok', redis: 'ok' });
  t.ok(Object.values(body.checks).every((v) => v === 'ok'), 'every check is ok');
});

t.test('Redis dying at runtime makes the service not ready, and its return makes it ready again', async (t) => {
  const redis = await startRedisServer(t);
  const app = await build(t, { env: { REDIS_URL: redis.url } });
  t.ok(app.redis, 'the app uses the private Redis');

  const before = await app.inject({ method: 'GET', url: '/health/ready' });
  t.equal(before.statusCode, 200);
  t.match(before.json(), { status: 'ok', checks: { db: 'ok', redis: 'ok' } });

  await redis.stop();
  const started = Date.now();
  const down = await app.inject({ method: 'GET', url: '/health/ready' });
  t.equal(down.statusCode, 503);
  t.match(down.json(), { status: 'degraded', checks: { redis: 'down', db: 'ok' } });
  t.ok(Date.now() - started < 5000, 'the readiness check does not hang on a dead dependency');

  const live = await app.inject({ method: 'GET', url: '/health/live' });
  t.equal(live.statusCode, 200, 'liveness is unaffected');

  await redis.restart();
  const back = await readyBecomes(app, 200);
  t.equal(back.statusCode, 200, 'ready again once Redis is back (ioredis reconnects)');
  t.match(back.json(), { status: 'ok', checks: { db: 'ok', redis: 'ok' } });
});

t.test('createHealth', async (t) => {
  t.test('reports each check and is ready only when all pass', async (t) => {
    const health = createHealth();
    health.add('a', async () => {});
    health.add('b', async () => {
      throw new Error('b is down');
    });
    t.same(await health.run(), { ready: false, checks: { a: 'ok', b: 'down' }, gauges: {} });

    const healthy = createHealth();
    healthy.add('a', async () => 'PONG');
    t.same(await healthy.run(), { ready: true, checks: { a: 'ok' }, gauges: {} });
    t.same(await createHealth().run(), { ready: true, checks: {}, gauges: {} }, 'no checks: ready');
  });

  t.test('a check that never answers is down after the timeout', async (t) => {
    const health = createHealth();
    health.add('stuck', () => new Promise(() => {}));
    health.add('fine', async () => {});
    const started = Date.now();
    t.same(await health.run(), { ready: false, checks: { stuck: 'down', fine: 'ok' }, gauges: {} });
    t.ok(Date.now() - started < 3000, 'bounded by the check timeout');
  });

  t.test('gauges are reported and never make the service unready', async (t) => {
    const health = createHealth();
    health.add('a', async () => {});
    health.addGauge('backlog', async () => 7);
    health.addGauge('broken', async () => {
      throw new Error('cannot count');
    });
    t.same(await health.run(), { ready: true, checks: { a: 'ok' }, gauges: { backlog: 7, broken: -1 } });
  });

  t.test('a name can be registered once', async (t) => {
    const health = createHealth();
    health.add('db', async () => {});
    t.throws(() => health.add('db', async () => {}), { message: /already registered/ });
  });
});

t.test('API documentation', async (t) => {
  const app = await build(t);

  const json = await app.inject({ method: 'GET', url: '/docs/json' });
  t.equal(json.statusCode, 200);
  t.match(json.headers['content-type'], /application\/json/);
  const doc = json.json();
  t.match(doc.openapi, /^3\./, 'an OpenAPI 3 document');
  t.ok(doc.info?.title, 'has a title');
  t.ok(doc.paths['/v1/auth/login'], 'documents /v1/auth/login');
  t.ok(doc.paths['/v1/auth/login'].post, 'with its POST operation');
  t.ok(doc.paths['/v1/auth/login'].post.requestBody, 'and its request body from the TypeBox schema');
  t.ok(doc.components?.securitySchemes?.bearerAuth, 'declares bearer auth');

  const ui = await app.inject({ method: 'GET', url: '/docs' });
  t.equal(ui.statusCode, 200);
  t.match(ui.headers['content-type'], /text\/html/);
  t.match(ui.body, /swagger/i);
});

t.test('DOCS_ENABLED=false hides the documentation', async (t) => {
  const app = await build(t, { env: { DOCS_ENABLED: 'false' } });
  t.equal((await app.inject({ method: 'GET', url: '/docs/json' })).statusCode, 404);
  t.equal((await app.inject({ method: 'GET', url: '/docs' })).statusCode, 404);
  t.equal((await app.inject({ method: 'GET', url: '/health/live' })).statusCode, 200);
});
