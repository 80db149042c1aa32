import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import pino from 'pino';
import t, { type Test } from 'tap';
import { connectRedis } from '../../../app/core/adapter/redis.js';
import {
  type Cache,
  type CacheStore,
  createCache,
  createMemoryCacheStore,
  createRedisCacheStore,
} from '../../../app/core/service/cache.js';
import { REDIS_URL, testRedisPrefix } from '../../helpers/infra.js';
import { startRedisServer } from '../../helpers/redis-server.js';
import { deferred, waitFor } from '../../helpers/wait.js';

/**
 * The cache contract: the same tests against the in-process store and the Redis store (real Redis,
 * this file's key prefix), then the Redis-only checks: the prefix, and an outage of a Redis server
 * this file starts and kills itself (never the machine's shared Redis).
 */

const silent = pino({ level: 'silent' });

const tag = () => randomBytes(4).toString('hex');

/** Every key on the shared Redis that matches `pattern`, by SCAN (never KEYS). */
async function scanAll(client: Redis, pattern: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    found.push(...keys);
    cursor = next;
  } while (cursor !== '0');
  return found;
}

type StoreFactory = (t: Test) => Promise<CacheStore>;

function cacheContract(name: string, makeStore: StoreFactory) {
  t.test(`cache contract: ${name}`, async (t) => {
    const newCache = async (t: Test): Promise<Cache> => createCache(await makeStore(t), silent);

    t.test('get / set / delete round-trip JSON values', async (t) => {
      const cache = await newCache(t);
      t.equal(cache.kind, name);
      t.equal(await cache.get('json:missing'), undefined, 'a missing key is undefined');

      const values: Record<string, unknown> = {
        'json:object': { id: 7, name: 'widget', tags: ['a', 'b'], nested: { ok: true, price: 12.5, none: null } },
        'json:array': [1, 'two', { three: 3 }, [4]],
        'json:string': 'hello',
        'json:number': 42,
        'json:zero': 0,
        'json:false': false,
        'json:empty': '',
      };
      for (const [key, value] of Object.entries(values)) await cache.set(key, value, 60_000);
      for (const [key, value] of Object.entries(values)) t.same(await cache.get(key), value, `${key} reads back`);

      const before = cache.stats();
      await cache.get('json:object');
      await cache.get('json:never-set');
      t.equal(cache.stats().hits, before.hits + 1, 'a hit is counted');
      t.equal(cache.stats().misses, before.misses + 1, 'a miss is counted');

      await cache.set('json:object', { replaced: true }, 60_000);
      t.same(await cache.get('json:object'), { replaced: true }, 'set replaces');

      await cache.delete('json:object');
      t.equal(await cache.get('json:object'), undefined, 'deleted');
      t.same(await cache.get('json:array'), values['json:array'], 'other keys are untouched by delete');

      await cache.set('json:object', { again: 1 }, 60_000);
      t.same(await cache.get('json:object'), { again: 1 }, 'a plain set after delete lands');
      t.equal(cache.stats().errors, 0, 'no errors against a healthy store');
    });

    t.test('entries expire after their ttl', async (t) => {
      const cache = await newCache(t);
      const ttl = 100;
      const started = Date.now();
      await cache.set('ttl:a', { v: 1 }, ttl);
      await cache.set('ttl:long', { v: 2 }, 60_000);
      t.same(await cache.get('ttl:a'), { v: 1 }, 'present before the ttl');
      await waitFor(async () => (await cache.get('ttl:a')) === undefined, 3000, 'ttl:a to expire');
      t.ok(Date.now() - started >= ttl - 5, 'not gone before its ttl');
      t.same(await cache.get('ttl:long'), { v: 2 }, 'a longer ttl is still there');

      // wrap stores with its ttl too: after expiry the loader runs again.
      let calls = 0;
      const loader = async () => ++calls;
      t.equal(await cache.wrap('ttl:w', ttl, loader), 1);
      t.equal(await cache.wrap('ttl:w', ttl, loader), 1, 'cached within the ttl');
      await waitFor(async () => (await cache.get('ttl:w')) === undefined, 3000, 'ttl:w to expire');
      t.equal(await cache.wrap('ttl:w', ttl, loader), 2, 'loaded again after expiry');
      t.equal(calls, 2);
    });

    t.test('wrap returns the cached value without calling the loader', async (t) => {
      const cache = await newCache(t);
      await cache.set('wrap:hit', { cached: true }, 60_000);
      let calls = 0;
      const value = await cache.wrap('wrap:hit', 60_000, async () => {
        calls += 1;
        return { cached: false };
      });
      t.same(value, { cached: true });
      t.equal(calls, 0, 'loader not called on a hit');

      // A miss loads and stores; the next wrap is a hit.
      const first = await cache.wrap('wrap:miss', 60_000, async () => {
        calls += 1;
        return ['loaded', 1];
      });
      t.same(first, ['loaded', 1]);
      t.same(await cache.get('wrap:miss'), ['loaded', 1], 'the loaded value is stored');
      const second = await cache.wrap('wrap:miss', 60_000, async () => {
        calls += 1;
        return ['loaded', 2];
      });
      t.same(second, ['loaded', 1]);
      t.equal(calls, 1, 'loader called once for the miss only');
    });

    t.test('a failing loader rejects the wrap and caches nothing', async (t) => {
      const cache = await newCache(t);
      await t.rejects(
        cache.wrap('wrap:fail', 60_000, async () => {
          throw new Error('source down');
        }),
        { message: 'source down' },
      );
      t.equal(await cache.get('wrap:fail'), undefined);
      t.equal(await cache.wrap('wrap:fail', 60_000, async () => 'recovered'), 'recovered', 'the next wrap loads again');
    });

    t.test('single flight: 50 concurrent misses call the loader once', async (t) => {
      const cache = await newCache(t);
      const gate = deferred<{ product: number; names: string[] }>();
      const loaderStarted = deferred<void>();
      let calls = 0;
      const loader = () => {
        calls += 1;
        loaderStarted.resolve();
        return gate.promise;
      };
      const waiting = Array.from({ length: 50 }, () => cache.wrap('sf:key', 60_000, loader));
      await loaderStarted.promise;
      gate.resolve({ product: 1, names: ['x', 'y'] });
      const results = await Promise.all(waiting);
      t.equal(calls, 1, 'loader called exactly once');
      t.equal(results.length, 50);
      for (const result of results) t.same(result, { product: 1, names: ['x', 'y'] });
      t.same(await cache.get('sf:key'), { product: 1, names: ['x', 'y'] }, 'and the value is stored');
    });

    t.test('invalidateNamespace drops every key of the namespace and nothing else', async (t) => {
      const cache = await newCache(t);
      await cache.set('products:1', { id: 1 }, 60_000);
      await cache.set('products:2', { id: 2 }, 60_000);
      await cache.set('orders:1', { id: 'o1' }, 60_000);
      await cache.invalidateNamespace('products');
      t.equal(await cache.get('products:1'), undefined, 'products:1 dropped');
      t.equal(await cache.get('products:2'), undefined, 'products:2 dropped');
      t.same(await cache.get('orders:1'), { id: 'o1' }, 'orders:1 kept');

      await cache.set('products:1', { id: 1, v: 2 }, 60_000);
      t.same(await cache.get('products:1'), { id: 1, v: 2 }, 'the namespace is writable again');
      let calls = 0;
      t.same(await cache.wrap('products:3', 60_000, async () => ++calls), 1);
      t.same(await cache.wrap('products:3', 60_000, async () => ++calls), 1, 'wrap caches in the new generation');
    });

    t.test('a loader that started before delete cannot store its stale value', async (t) => {
      const cache = await newCache(t);
      const gate = deferred<string>();
      const loaderStarted = deferred<void>();
      const wrapping = cache.wrap('stale:key', 60_000, () => {
        loaderStarted.resolve();
        return gate.promise;
      });
      await loaderStarted.promise;
      await cache.delete('stale:key');
      gate.resolve('stale');
      t.equal(await wrapping, 'stale', 'its own caller still gets the loaded value');
      t.equal(await cache.get('stale:key'), undefined, 'but it was not written after the delete');
    });

    t.test('a loader that started before invalidateNamespace cannot store its stale value', async (t) => {
      const cache = await newCache(t);
      const gate = deferred<string>();
      const loaderStarted = deferred<void>();
      const wrapping = cache.wrap('catalog:1', 60_000, () => {
        loaderStarted.resolve();
        return gate.promise;
      });
      await loaderStarted.promise;
      await cache.invalidateNamespace('catalog');
      gate.resolve('stale');
      t.equal(await wrapping, 'stale');
      t.equal(await cache.get('catalog:1'), undefined, 'not written after the invalidation');
    });

    t.test('a wrap started after delete does not join the earlier in-flight load', async (t) => {
      const cache = await newCache(t);
      const gate = deferred<string>();
      const loaderStarted = deferred<void>();
      const early = cache.wrap('join:key', 60_000, () => {
        loaderStarted.resolve();
        return gate.promise;
      });
      await loaderStarted.promise;
      await cache.delete('join:key');

      let lateCalls = 0;
      const late = cache.wrap('join:key', 60_000, async () => {
        lateCalls += 1;
        return 'fresh';
      });
      // Let the early load finish at once: a late caller that joined it would get 'stale'.
      gate.resolve('stale');
      t.equal(await late, 'fresh', 'the later caller gets a value loaded after the delete');
      t.equal(lateCalls, 1, 'its own loader ran');
      t.equal(await early, 'stale');
      t.equal(await cache.get('join:key'), 'fresh', 'the fresh value is stored, the stale one is not');
    });
  });
}

cacheContract('memory', async () => createMemoryCacheStore());

cacheContract('redis', async (t) => {
  const client = await connectRedis(REDIS_URL, { keyPrefix: testRedisPrefix() });
  t.teardown(() => client.quit());
  return createRedisCacheStore(client);
});

t.test('redis: every key the cache writes carries the key prefix', async (t) => {
  const prefix = testRedisPrefix();
  const client = await connectRedis(REDIS_URL, { keyPrefix: prefix });
  t.teardown(() => client.quit());
  const plain = new Redis(REDIS_URL, { lazyConnect: true });
  await plain.connect();
  t.teardown(() => plain.quit());
  const cache = createCache(createRedisCacheStore(client), silent);

  const ns = `pfx${tag()}`;
  const marker = tag();
  await cache.delete(`${ns}:other`); // leaves a key epoch
  await cache.invalidateNamespace(ns); // leaves a namespace version
  await cache.set(`${ns}:item`, { marker }, 60_000); // the entry itself

  const mine = (await scanAll(plain, `${prefix}*`)).filter((key) => key.includes(ns));
  t.ok(mine.length >= 3, `the entry, the epoch and the version are under the prefix (${mine.join(', ')})`);
  const everywhere = await scanAll(plain, `*${ns}*`);
  t.same(
    everywhere.filter((key) => !key.startsWith(prefix)),
    [],
    'no key of this namespace lives outside the prefix',
  );
  const values = await Promise.all(mine.map(async (key) => ((await plain.type(key)) === 'string' ? plain.get(key) : null)));
  t.ok(values.includes(JSON.stringify({ marker })), 'the entry holding the value is a prefixed key');
});

t.test('redis outage: reads fall through, writes are skipped, one warning per outage', async (t) => {
  const server = await startRedisServer(t);
  const lines: string[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
  const warnings = () => lines.filter((line) => line.includes('cache store unreachable')).length;

  const client = await connectRedis(server.url, { keyPrefix: testRedisPrefix() });
  t.teardown(() => client.disconnect());
  const cache = createCache(createRedisCacheStore(client), logger);

  await cache.set('down:a', { v: 1 }, 60_000);
  t.same(await cache.get('down:a'), { v: 1 }, 'works while the server is up');
  t.same(cache.stats(), { hits: 1, misses: 0, errors: 0, outages: 0 });

  await server.stop();

  let calls = 0;
  const loader = async () => {
    calls += 1;
    return { from: 'source', call: calls };
  };
  t.same(await cache.wrap('down:a', 60_000, loader), { from: 'source', call: 1 }, 'wrap reads through to the loader');
  t.equal(calls, 1);
  const afterWrap = cache.stats();
  t.ok(afterWrap.errors >= 1, 'the failed read is counted');
  t.equal(afterWrap.outages, 1, 'one outage');

  await t.resolves(cache.set('down:b', { v: 2 }, 60_000), 'set does not throw');
  t.equal(await cache.get('down:a'), undefined, 'get is a miss, not an error');
  t.equal(await cache.get('down:b'), undefined);
  await t.resolves(cache.delete('down:a'), 'delete does not throw');
  await t.resolves(cache.invalidateNamespace('down'), 'invalidateNamespace does not throw');
  t.same(await cache.wrap('down:a', 60_000, loader), { from: 'source', call: 2 }, 'still reads through');

  const during = cache.stats();
  t.ok(during.errors > afterWrap.errors, `errors grow (${afterWrap.errors} → ${during.errors})`);
  t.equal(during.outages, 1, 'still the same outage');
  t.equal(warnings(), 1, 'the warning is logged once for the outage, not per operation');
  const warning = JSON.parse(lines.find((line) => line.includes('cache store unreachable')) as string) as { level: number };
  t.equal(warning.level, 40, 'at warn level');

  // Back up: the cache recovers by itself; a second outage warns once more.
  await server.restart();
  await waitFor(() => client.status === 'ready', 10_000, 'the client to reconnect');
  t.same(await cache.wrap('down:c', 60_000, async () => 'reloaded'), 'reloaded');
  t.equal(await cache.get('down:c'), 'reloaded', 'writes land again once the server is back');
  t.ok(lines.some((line) => line.includes('cache store reachable again')), 'recovery is logged');

  await server.stop();
  t.equal(await cache.get('down:c'), undefined);
  await cache.set('down:c', 'x', 1000);
  t.equal(cache.stats().outages, 2, 'a second outage is counted');
  t.equal(warnings(), 2, 'and warned about once');
});
