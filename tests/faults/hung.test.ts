import type { InjectOptions } from 'fastify';
import postgres from 'postgres';
import t from 'tap';
import { build } from '../helpers/app.js';
import { createProduct, orderRequest } from '../helpers/catalog.js';
import { errorShapeProblems } from '../helpers/error-shape.js';
import { expectError } from '../helpers/http.js';
import { testDatabaseUrl } from '../helpers/infra.js';
import { startProxy } from '../helpers/proxy.js';
import { startRedisServer } from '../helpers/redis-server.js';
import { createAdmin, createUser, login } from '../helpers/users.js';
import { waitFor } from '../helpers/wait.js';

/*
 * A dependency that accepts work and never finishes it: requests fail with 503 within the configured timeout instead
 * of piling up behind it. The bounds asserted are the configured timeout plus a generous 2 s for a busy machine.
 */

const SLACK_MS = 2000;

t.test('a PostgreSQL table locked by someone else: 503 within DATABASE_STATEMENT_TIMEOUT_MS, no pile-up', async (t) => {
  const STATEMENT_TIMEOUT_MS = 1000;
  const app = await build(t, { env: { DATABASE_STATEMENT_TIMEOUT_MS: String(STATEMENT_TIMEOUT_MS) } });
  const admin = await createAdmin(app);
  const user = await createUser(app);
  const cached = await createProduct(app, admin, { stock: 50 });
  const uncached = await createProduct(app, admin, { stock: 50 });
  t.equal((await app.inject({ method: 'GET', url: `/v1/products/${cached.id}` })).statusCode, 200, 'one product is in the cache');

  // The test's own session holds an exclusive lock on products (its own database only).
  const holder = postgres(await testDatabaseUrl(), { max: 1, onnotice: () => {} });
  t.teardown(() => holder.end({ timeout: 1 }));
  const locked = holder.reserve();
  const session = await locked;
  await session`begin`;
  await session`lock table products in access exclusive mode`;

  // Three times the pool (10) at once: without a bound they would queue behind each other.
  const requests = Array.from({ length: 30 }, (_, i) => {
    const started = performance.now();
    const request =
      i % 3 === 0
        ? app.inject({ method: 'GET', url: '/v1/products?limit=5' })
        : i % 3 === 1
          ? app.inject({ method: 'GET', url: `/v1/products/${uncached.id}` })
          : app.inject(orderRequest(user, [{ productId: uncached.id, quantity: 1 }]));
    return request.then((response) => ({ response, ms: performance.now() - started }));
  });
  const answers = await Promise.all(requests);
  const slowest = Math.max(...answers.map((a) => a.ms));
  t.ok(slowest < STATEMENT_TIMEOUT_MS + SLACK_MS, `every request answered within the timeout + ${SLACK_MS} ms (slowest ${Math.round(slowest)} ms)`);
  t.same([...new Set(answers.map((a) => a.response.statusCode))], [503], 'each one is a 503');
  const problems = answers.flatMap((a) => errorShapeProblems(a.response));
  t.same(problems, [], 'in the api.md shape');
  t.same([...new Set(answers.map((a) => a.response.json<{ code: string }>().code))], ['DATABASE_UNAVAILABLE'], 'DATABASE_UNAVAILABLE');

  // A cached product does not touch the locked table.
  const fromCache = await app.inject({ method: 'GET', url: `/v1/products/${cached.id}` });
  t.equal(fromCache.statusCode, 200, 'a cached product is still served while the table is locked');

  await session`rollback`;
  session.release();
  // Nothing was left queued or half done: the next requests work at once, and no order slipped through.
  const order = await app.inject(orderRequest(user, [{ productId: uncached.id, quantity: 1 }]));
  t.equal(order.statusCode, 201, 'orders work again once the lock is gone');
  const product = await app.inject({ method: 'GET', url: `/v1/products/${uncached.id}` });
  t.equal(product.json<{ stock: number }>().stock, 49, 'only that order took stock: none of the timed-out ones did');
});

t.test('a Redis that accepts connections but never answers', async (t) => {
  const COMMAND_TIMEOUT_MS = 500;
  const redis = await startRedisServer(t);
  const proxy = await startProxy(t, { port: redis.port });
  const app = await build(t, {
    env: { REDIS_URL: `redis://127.0.0.1:${proxy.port}`, REDIS_COMMAND_TIMEOUT_MS: String(COMMAND_TIMEOUT_MS) },
  });
  const admin = await createAdmin(app);
  const user = await createUser(app);
  const product = await createProduct(app, admin, { stock: 50 });
  t.equal((await app.inject({ method: 'GET', url: `/v1/products/${product.id}` })).statusCode, 200, 'warm the cache');

  proxy.setMode('hang');
  const bound = COMMAND_TIMEOUT_MS + SLACK_MS;
  const timed = async (request: InjectOptions) => {
    const started = performance.now();
    const response = await app.inject(request);
    return { response, ms: performance.now() - started };
  };

  const reads = await Promise.all(Array.from({ length: 20 }, () => timed({ method: 'GET', url: `/v1/products/${product.id}` })));
  t.same([...new Set(reads.map((r) => r.response.statusCode))], [200], 'product reads answer 200 from the database');
  const slowestRead = Math.max(...reads.map((r) => r.ms));
  t.ok(slowestRead < bound, `within ${bound} ms (slowest ${Math.round(slowestRead)} ms)`);

  const line = [{ productId: product.id, quantity: 1 }];
  const orders = await Promise.all(Array.from({ length: 5 }, () => timed(orderRequest(user, line))));
  for (const { response } of orders) expectError(t, response, 503, 'LOCK_UNAVAILABLE');
  const slowestOrder = Math.max(...orders.map((o) => o.ms));
  t.ok(slowestOrder < bound, `order creation fails fast (slowest ${Math.round(slowestOrder)} ms)`);

  const started = performance.now();
  await login(app, user.email);
  t.ok(performance.now() - started < 2 * COMMAND_TIMEOUT_MS + SLACK_MS, 'login does not hang on the failed-login counter');

  const ready = await app.inject({ method: 'GET', url: '/health/ready' });
  t.equal(ready.statusCode, 503, '/health/ready is 503');
  t.equal(ready.json<{ checks: Record<string, string> }>().checks.redis, 'down', 'and names Redis');

  const stock = await app.inject({ method: 'GET', url: `/v1/products/${product.id}` });
  t.equal(stock.json<{ stock: number }>().stock, 50, 'no order took stock while the locks were unavailable');

  proxy.setMode('pass');
  await waitFor(async () => (await app.inject(orderRequest(user, [{ productId: product.id, quantity: 1 }], 'after'))).statusCode === 201,
    15_000, 'an order once Redis answers again');
  await waitFor(async () => (await app.inject({ method: 'GET', url: '/health/ready' })).statusCode === 200, 15_000, 'ready again');
});
