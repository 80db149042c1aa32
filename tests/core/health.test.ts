import t from 'tap';
import { startEmbeddedBroker } from '../../app/core/adapter/kafka.js';
import { createHealth } from '../../app/core/health.js';
import { build } from '../helpers/app.js';
import { startRedisServer } from '../helpers/redis-server.js';
import { registerUser } from '../helpers/users.js';
import { waitFor } from '../helpers/wait.js';

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
    health.addGauge('backlog', async () => 1, { check: 'outbox', max: 5 });
    t.throws(() => health.addGauge('backlog', async () => 1), { message: /gauge 'backlog' is already registered/ });
    t.throws(() => health.add('outbox', async () => {}), { message: /check 'outbox' is already registered/ });
    t.throws(() => health.addGauge('other', async () => 1, { check: 'db', max: 5 }), { message: /check 'db'/ });
  });

  t.test('a gauge with a limit is also a check: down above the limit or when it cannot be read', async (t) => {
    let backlog = 10;
    const health = createHealth();
    health.add('db', async () => {});
    health.addGauge('backlog', async () => backlog, { check: 'outbox', max: 10 });
    t.same(await health.run(), { ready: true, checks: { db: 'ok', outbox: 'ok' }, gauges: { backlog: 10 } }, 'at the limit: ok');
    backlog = 11;
    t.same(await health.run(), { ready: false, checks: { db: 'ok', outbox: 'down' }, gauges: { backlog: 11 } }, 'above: down');
    backlog = 0;
    t.same((await health.run()).checks.outbox, 'ok');

    const unreadable = createHealth();
    unreadable.addGauge('backlog', async () => Promise.reject(new Error('database down')), { check: 'outbox', max: 10 });
    t.same(await unreadable.run(), { ready: false, checks: { outbox: 'down' }, gauges: { backlog: -1 } });

    const hanging = createHealth();
    hanging.addGauge('backlog', () => new Promise<number>(() => {}), { check: 'outbox', max: 10 });
    const started = Date.now();
    t.same(await hanging.run(), { ready: false, checks: { outbox: 'down' }, gauges: { backlog: -1 } });
    t.ok(Date.now() - started < 3000, 'a gauge that never answers is bounded by the check timeout');
  });

  t.test('a limit of 0 means never: the gauge is reported, no check is added', async (t) => {
    const health = createHealth();
    health.addGauge('backlog', async () => 1_000_000, { check: 'outbox', max: 0 });
    t.same(await health.run(), { ready: true, checks: {}, gauges: { backlog: 1_000_000 } });
  });
});

t.test('OUTBOX_BACKLOG_DEGRADED=1: more events waiting than that makes readiness 503 with checks.outbox down', async (t) => {
  const app = await build(t, { env: { OUTBOX_BACKLOG_DEGRADED: '1' } });
  const ok = await app.inject({ method: 'GET', url: '/health/ready' });
  t.equal(ok.statusCode, 200);
  t.same(ok.json(), { status: 'ok', checks: { db: 'ok', redis: 'ok', kafka: 'ok', outbox: 'ok' }, outboxBacklog: 0 });

  // The relay stopped (as when it is stuck): events wait while Kafka itself answers.
  await app.outbox.stop();
  await registerUser(app, 'backlog');
  const one = await app.inject({ method: 'GET', url: '/health/ready' });
  t.equal(one.statusCode, 200, 'one waiting event is not above the threshold');
  t.equal(one.json().outboxBacklog, 1);
  await registerUser(app, 'backlog');
  const degraded = await app.inject({ method: 'GET', url: '/health/ready' });
  t.equal(degraded.statusCode, 503);
  t.same(degraded.json(), {
    status: 'degraded',
    checks: { db: 'ok', redis: 'ok', kafka: 'ok', outbox: 'down' },
    outboxBacklog: 2,
  });

  app.outbox.start();
  const back = await readyBecomes(app, 200);
  t.equal(back.statusCode, 200, 'ready again once the relay has published the backlog');
  t.same(back.json(), { status: 'ok', checks: { db: 'ok', redis: 'ok', kafka: 'ok', outbox: 'ok' }, outboxBacklog: 0 });
});

t.test('OUTBOX_BACKLOG_DEGRADED=0 never degrades on the backlog: no outbox check', async (t) => {
  const app = await build(t, { env: { OUTBOX_BACKLOG_DEGRADED: '0' } });
  await app.outbox.stop();
  await registerUser(app, 'never');
  await registerUser(app, 'never');
  const response = await app.inject({ method: 'GET', url: '/health/ready' });
  t.equal(response.statusCode, 200);
  t.same(response.json(), { status: 'ok', checks: { db: 'ok', redis: 'ok', kafka: 'ok' }, outboxBacklog: 2 });
  // The database is this file's: leave no backlog behind for the next app.
  app.outbox.start();
  await waitFor(async () => (await app.outbox.backlog()) === 0, 10_000, 'the relay to publish the backlog');
});

t.test('Kafka unreachable at runtime: readiness says kafka down, and the outbox backlog grows past the threshold', async (t) => {
  const broker = await startEmbeddedBroker();
  t.teardown(() => broker.stop());
  const app = await build(t, { env: { KAFKA_BROKERS: broker.bootstrap, OUTBOX_BACKLOG_DEGRADED: '1' } });
  const up = await app.inject({ method: 'GET', url: '/health/ready' });
  t.equal(up.statusCode, 200, 'ready while the broker runs');
  t.same(up.json().checks, { db: 'ok', redis: 'ok', kafka: 'ok', outbox: 'ok' });

  // The relay is stopped first only so that closing the app does not wait out its publish timeout (10 s) on a
  // batch the dead broker will never acknowledge; the events wait either way.
  await app.outbox.stop();
  await broker.stop();
  await registerUser(app, 'kafka-down');
  await registerUser(app, 'kafka-down');
  const started = Date.now();
  const down = await app.inject({ method: 'GET', url: '/health/ready' });
  t.ok(Date.now() - started < 3000, 'the Kafka check does not hang');
  t.equal(down.statusCode, 503);
  t.same(down.json(), {
    status: 'degraded',
    checks: { db: 'ok', redis: 'ok', kafka: 'down', outbox: 'down' },
    outboxBacklog: 2,
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
