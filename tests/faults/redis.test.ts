import t from 'tap';
import { build } from '../helpers/app.js';
import { createProduct, orderRequest } from '../helpers/catalog.js';
import { errorShapeProblems } from '../helpers/error-shape.js';
import { expectError } from '../helpers/http.js';
import { startLoad, tally } from '../helpers/load.js';
import { startRedisServer } from '../helpers/redis-server.js';
import { createAdmin, createUser, login } from '../helpers/users.js';
import { waitFor } from '../helpers/wait.js';

/*
 * Redis dies under read load (a private redis-server, killed and started again on the same port): product reads keep
 * answering from PostgreSQL, order creation fails closed with 503 LOCK_UNAVAILABLE, and when Redis is back the cache
 * and the locks work again in the same process.
 */

t.test('Redis dies under read load, then comes back', async (t) => {
  const redis = await startRedisServer(t);
  const app = await build(t, { env: { REDIS_URL: redis.url } });
  const admin = await createAdmin(app);
  const user = await createUser(app);
  const product = await createProduct(app, admin, { stock: 100, priceCents: 700 });
  const read = async () => {
    const response = await app.inject({ method: 'GET', url: `/v1/products/${product.id}` });
    if (response.statusCode !== 200 || response.json<{ id: string }>().id !== product.id) {
      throw new Error(`product read answered ${response.statusCode}: ${response.body}`);
    }
    return response.statusCode;
  };

  // Warm: the second read is a cache hit.
  await read();
  const warm = app.cache.stats().hits;
  await read();
  t.equal(app.cache.stats().hits, warm + 1, 'reads are served from the cache while Redis is up');

  const load = startLoad(read, 4);
  await waitFor(() => load.outcomes.length >= 50, 10_000, '50 reads before the outage');
  await redis.stop();
  const atStop = load.outcomes.length;
  await waitFor(() => load.outcomes.length >= atStop + 200, 20_000, '200 reads after Redis died');
  const errorsDuringOutage = app.cache.stats().errors;
  t.ok(errorsDuringOutage > 0, 'the cache noticed the outage (reads went to the database)');

  // Orders fail closed: no lock, no order, no stock taken.
  const failed = await app.inject(orderRequest(user, [{ productId: product.id, quantity: 2 }], 'key-during-outage'));
  expectError(t, failed, 503, 'LOCK_UNAVAILABLE');
  t.equal(failed.headers['retry-after'], '1', 'Retry-After on the 503');
  const mine = await app.inject({ method: 'GET', url: '/v1/orders', headers: user.auth });
  t.equal(mine.json<{ total: number }>().total, 0, 'no order was written');

  const ready = await app.inject({ method: 'GET', url: '/health/ready' });
  t.equal(ready.statusCode, 503, '/health/ready is 503 while Redis is down');
  t.equal(ready.json<{ checks: Record<string, string> }>().checks.redis, 'down');

  // Logging in does not depend on Redis: the failed-login counter fails open.
  const tokens = await login(app, user.email);
  t.ok(tokens.accessToken, 'login works while Redis is down');

  await redis.restart();
  // Same process, no restart: ioredis reconnects by itself; the first order that gets a lock is created.
  let order = await app.inject(orderRequest(user, [{ productId: product.id, quantity: 2 }], 'key-after-outage'));
  await waitFor(async () => {
    if (order.statusCode === 201) return true;
    order = await app.inject(orderRequest(user, [{ productId: product.id, quantity: 2 }], 'key-after-outage'));
    return order.statusCode === 201;
  }, 15_000, 'an order to be created once Redis is back');
  t.equal(order.json<{ totalCents: number }>().totalCents, 1400, 'the order after the outage is right');

  const outcomes = await load.stop();
  t.same(tally(outcomes), { 200: outcomes.length }, 'every product read answered 200, before, during and after the outage');
  const slowest = Math.max(...outcomes.map((o) => o.ms));
  t.ok(slowest < 3000, `no read waited on the dead Redis (slowest ${Math.round(slowest)} ms)`);

  // The cache works again: a read stores the product (its stock changed with the order), the next one hits.
  await waitFor(async () => (await app.inject({ method: 'GET', url: '/health/ready' })).statusCode === 200, 10_000, 'ready again');
  const before = app.cache.stats();
  await read();
  await read();
  await read();
  const after = app.cache.stats();
  t.ok(after.hits >= before.hits + 2, `cache hits grow again (${before.hits} -> ${after.hits})`);
  t.equal(after.errors, before.errors, 'no cache errors once Redis is back');
  const cached = await app.inject({ method: 'GET', url: `/v1/products/${product.id}` });
  t.equal(cached.json<{ stock: number }>().stock, 98, 'the cached product shows the stock the order took');

  // A second order with its own key: the mutex keeps working.
  const second = await app.inject(orderRequest(user, [{ productId: product.id, quantity: 1 }]));
  t.equal(second.statusCode, 201, 'locks work again');
  t.same(errorShapeProblems(failed), [], 'the 503 had the api.md shape');
});
