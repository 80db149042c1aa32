import { once } from 'node:events';
import Fastify from 'fastify';
import { Redis } from 'ioredis';
import t, { type Test } from 'tap';
import plinth, { serverOptions } from '../../app/app.js';
import { connectRedis } from '../../app/core/adapter/redis.js';
import { build, testSettings } from '../helpers/app.js';
import { REDIS_URL, testRedisPrefix } from '../helpers/infra.js';
import { freePort } from '../helpers/net.js';
import { pings, startRedisServer } from '../helpers/redis-server.js';

/** A plain client on the shared test Redis, without any prefix, closed after the test. */
async function plainClient(t: Test): Promise<Redis> {
  const client = new Redis(REDIS_URL, { lazyConnect: true });
  await client.connect();
  t.teardown(() => client.quit());
  return client;
}

/** Connections on the server that carry this client name. */
async function connectionsNamed(admin: Redis, name: string): Promise<number> {
  const list = (await admin.client('LIST')) as string;
  return list.split('\n').filter((line) => line.includes(` name=${name} `)).length;
}

/** Polls until `read()` returns `expected` (bounded). */
async function eventually<T>(read: () => Promise<T>, expected: T, tries = 50): Promise<T> {
  let value = await read();
  for (let i = 0; i < tries && value !== expected; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    value = await read();
  }
  return value;
}

t.test('connectRedis to the real Redis uses the key prefix', async (t) => {
  const prefix = `${testRedisPrefix()}adapter:`;
  const client = await connectRedis(REDIS_URL, { keyPrefix: prefix, name: 'plinth-redis-test' });
  t.teardown(() => client.quit());
  t.equal(client.status, 'ready', 'connected when the promise resolves');
  t.equal(await client.ping(), 'PONG');

  const key = `k-${Date.now()}`;
  await client.set(key, 'value-1');
  t.equal(await client.get(key), 'value-1', 'read back through the prefixed client');

  const plain = await plainClient(t);
  t.equal(await plain.get(`${prefix}${key}`), 'value-1', 'stored under the prefix');
  t.equal(await plain.get(key), null, 'not stored without it');
});

t.test('connectRedis to a port nothing listens on', async (t) => {
  const port = await freePort();
  const started = Date.now();
  const error = await connectRedis(`redis://:s3cret-pass@127.0.0.1:${port}`).then(
    () => undefined,
    (e: Error) => e,
  );
  t.ok(error, 'rejects');
  t.match(error?.message, /Redis is unreachable/);
  t.match(error?.message, `127.0.0.1:${port}`, 'names where it tried');
  t.notMatch(error?.message, 's3cret-pass', 'never the password');
  t.ok(Date.now() - started < 6000, 'fails at start-up instead of retrying forever');
});

t.test('an app with REDIS_URL on a dead port does not start', async (t) => {
  const port = await freePort();
  const settings = await testSettings({ env: { REDIS_URL: `redis://127.0.0.1:${port}` } });
  const app = Fastify(serverOptions(settings));
  t.teardown(() => app.close());
  app.register(plinth, { settings });
  await t.rejects(
    async () => {
      await app.ready();
    },
    { message: /Redis is unreachable/ },
  );
});

t.test('the app uses REDIS_PREFIX and closes its clients on close', async (t) => {
  const name = `plinth-close-${process.pid}`;
  const settings = await testSettings({ env: { SERVICE_NAME: name } });
  const app = Fastify(serverOptions(settings));
  let closed = false;
  t.teardown(() => (closed ? undefined : app.close()));
  await app.register(plinth, { settings });
  await app.ready();

  const redis = app.redis;
  if (!redis) throw new Error('app.redis is null although REDIS_URL is set');
  t.equal(redis.status, 'ready');
  const key = `app-key-${Date.now()}`;
  await redis.set(key, 'v');
  const plain = await plainClient(t);
  t.equal(await plain.get(`${settings.REDIS_PREFIX}${key}`), 'v', 'keys are written under REDIS_PREFIX');

  t.ok((await connectionsNamed(plain, name)) >= 1, 'the app holds named connections');
  await app.close();
  closed = true;
  t.equal(redis.status, 'end', 'the client is closed');
  t.equal(await eventually(() => connectionsNamed(plain, name), 0), 0, 'no connection of the app is left on the server');
});

t.test('closing the app does not hang when Redis is already gone', async (t) => {
  // Ready when it answers a PING (bounded polling, no blind sleep).
  const server = await startRedisServer(t);
  t.ok(await pings(server.port), 'private redis-server is up');

  const settings = await testSettings({ env: { REDIS_URL: server.url } });
  const app = Fastify(serverOptions(settings));
  await app.register(plinth, { settings });
  await app.ready();
  await server.stop();

  const redis = app.redis;
  if (!redis) throw new Error('app.redis is null although REDIS_URL is set');
  // Wait until ioredis notices the outage and starts reconnecting (an event, bounded).
  if (redis.status === 'ready') await once(redis, 'reconnecting');

  const started = Date.now();
  await t.resolves(app.close(), 'close resolves');
  t.ok(Date.now() - started < 10_000, `close took ${Date.now() - started} ms`);

  // ioredis leaves `status` at 'reconnecting' after a disconnect during an outage; what matters is
  // that it stops trying. Its retry delay is 50 ms per attempt so far (max 2 s): a further attempt
  // within a short window would show it still runs and keeps the process alive.
  let attempts = 0;
  redis.on('reconnecting', () => attempts++);
  await new Promise((resolve) => setTimeout(resolve, 600));
  t.equal(attempts, 0, 'no reconnect attempt after close');
});

t.test('without REDIS_URL the app runs on in-process stand-ins', async (t) => {
  const app = await build(t, { embedded: true });
  t.equal(app.redis, null);
  const ready = await app.inject({ method: 'GET', url: '/health/ready' });
  t.equal(ready.statusCode, 200);
  t.equal(ready.json().checks.redis, 'ok');
});
