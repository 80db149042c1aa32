import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import pino from 'pino';
import t, { type Test } from 'tap';
import { connectRedis } from '../../../app/core/adapter/redis.js';
import {
  createMemoryLockStore,
  createMutex,
  createRedisLockStore,
  type LockStore,
  type Mutex,
} from '../../../app/core/service/mutex.js';
import { REDIS_URL, testRedisPrefix } from '../../helpers/infra.js';
import { startRedisServer } from '../../helpers/redis-server.js';
import { deferred, waitFor } from '../../helpers/wait.js';

/**
 * The mutex contract: the same tests against the in-process lock store and the Redis one (real Redis,
 * this file's key prefix); then, Redis only, fail-closed behaviour against a redis-server this file
 * starts and kills itself (never the machine's shared Redis).
 */

const silent = pino({ level: 'silent' });

const uniqueKey = (name: string) => `${name}-${randomBytes(4).toString('hex')}`;

/** The rejection of `promise` (fails the test if it resolves). */
async function rejection(promise: Promise<unknown>): Promise<{ code?: string; statusCode?: number }> {
  try {
    await promise;
  } catch (error) {
    return error as { code?: string; statusCode?: number };
  }
  throw new Error('expected a rejection, but it resolved');
}

type StoreFactory = (t: Test) => Promise<LockStore>;

function mutexContract(name: string, makeStore: StoreFactory) {
  t.test(`mutex contract: ${name}`, async (t) => {
    const setup = async (t: Test): Promise<{ store: LockStore; mutex: Mutex }> => {
      const store = await makeStore(t);
      return { store, mutex: createMutex(store, silent) };
    };

    t.test('20 concurrent read-sleep-write callers end with the exact count', async (t) => {
      const { mutex } = await setup(t);
      t.equal(mutex.kind, name);
      const key = uniqueKey('counter');
      let shared = 0;
      let active = 0;
      let maxActive = 0;
      const fences: number[] = [];
      await Promise.all(
        Array.from({ length: 20 }, () =>
          mutex.withLock(key, { ttlMs: 2000, waitMs: 20_000 }, async (fence) => {
            active += 1;
            maxActive = Math.max(maxActive, active);
            fences.push(fence);
            const read = shared;
            await delay(3);
            shared = read + 1;
            active -= 1;
          }),
        ),
      );
      t.equal(shared, 20, 'no lost update');
      t.equal(maxActive, 1, 'never two holders at once');
      t.equal(fences.length, 20);
      t.ok(
        fences.every((fence, i) => i === 0 || fence > (fences[i - 1] as number)),
        `fences increase in the order the holders ran (${fences.join(', ')})`,
      );
    });

    t.test('withLock returns fn’s value and frees the lock, also when fn throws', async (t) => {
      const { mutex } = await setup(t);
      const key = uniqueKey('result');
      t.same(await mutex.withLock(key, { ttlMs: 1000, waitMs: 0 }, async () => ({ ok: 1 })), { ok: 1 });
      t.equal(await mutex.withLock(key, { ttlMs: 1000, waitMs: 0 }, async () => 'again'), 'again', 'released after success');
      await t.rejects(
        mutex.withLock(key, { ttlMs: 1000, waitMs: 0 }, async () => {
          throw new Error('boom');
        }),
        { message: 'boom' },
        'fn’s error reaches the caller',
      );
      t.equal(await mutex.withLock(key, { ttlMs: 1000, waitMs: 0 }, async () => 'after'), 'after', 'released after a throw');
    });

    t.test('fencing tokens strictly increase across acquisitions', async (t) => {
      const { store, mutex } = await setup(t);
      const a = uniqueKey('fence-a');
      const b = uniqueKey('fence-b');
      const seen: number[] = [];
      for (let i = 0; i < 5; i += 1) {
        seen.push(await mutex.withLock(a, { ttlMs: 1000, waitMs: 1000 }, async (fence) => fence));
        seen.push(await mutex.withLock(b, { ttlMs: 1000, waitMs: 1000 }, async (fence) => fence));
      }
      const direct = await store.acquire(a, 'direct-owner', 1000);
      t.type(direct, 'number', 'the store hands out a token on acquire');
      seen.push(direct as number);
      t.ok(await store.release(a, 'direct-owner'));
      seen.push(await mutex.withLock(a, { ttlMs: 1000, waitMs: 1000 }, async (fence) => fence));
      t.ok(seen.every((fence) => Number.isInteger(fence)), 'tokens are integers');
      t.ok(
        seen.every((fence, i) => i === 0 || fence > (seen[i - 1] as number)),
        `strictly increasing: ${seen.join(', ')}`,
      );
    });

    t.test('LOCK_TIMEOUT (409) when the lock is held longer than waitMs', async (t) => {
      const { mutex } = await setup(t);
      const key = uniqueKey('busy');
      const holding = deferred<void>();
      const gate = deferred<void>();
      const holder = mutex.withLock(key, { ttlMs: 2000, waitMs: 0 }, async () => {
        holding.resolve();
        await gate.promise;
        return 'holder done';
      });
      await holding.promise;

      let called = false;
      const started = Date.now();
      const error = await rejection(
        mutex.withLock(key, { ttlMs: 2000, waitMs: 100 }, async () => {
          called = true;
        }),
      );
      const waited = Date.now() - started;
      t.equal(error.code, 'LOCK_TIMEOUT');
      t.equal(error.statusCode, 409);
      t.notOk(called, 'fn did not run');
      t.ok(waited >= 90, `it waited about waitMs before giving up (${waited} ms)`);
      t.ok(waited < 1500, `and not much longer (${waited} ms)`);

      gate.resolve();
      t.equal(await holder, 'holder done');
      t.equal(await mutex.withLock(key, { ttlMs: 1000, waitMs: 0 }, async () => 'next'), 'next', 'free once the holder is done');
    });

    t.test('a holder that dies without releasing is replaced after its ttl', async (t) => {
      const { store, mutex } = await setup(t);
      const key = uniqueKey('dead');
      const acquiredAt = Date.now();
      const deadFence = await store.acquire(key, 'dead-owner', 100);
      t.type(deadFence, 'number', 'the dead holder got the lock');

      const early = await rejection(mutex.withLock(key, { ttlMs: 1000, waitMs: 10 }, async () => 'too early'));
      t.equal(early.code, 'LOCK_TIMEOUT', 'held while its ttl runs');

      const result = await mutex.withLock(key, { ttlMs: 1000, waitMs: 3000 }, async (fence) => ({ fence, at: Date.now() }));
      t.ok(result.fence > (deadFence as number), 'the new holder gets a newer fencing token');
      t.ok(result.at - acquiredAt >= 90, `replaced only once the ttl ran out (${result.at - acquiredAt} ms)`);
      t.notOk(await store.release(key, 'dead-owner'), 'the dead holder can no longer release it');
    });

    t.test('a non-owner cannot release or extend the lock', async (t) => {
      const { store, mutex } = await setup(t);
      const key = uniqueKey('owned');
      t.type(await store.acquire(key, 'owner-a', 5000), 'number');
      t.equal(await store.release(key, 'other'), false, 'release by a non-owner answers false');
      t.equal(await store.extend(key, 'other', 5000), false, 'extend by a non-owner answers false');
      t.equal(await store.acquire(key, 'other', 5000), null, 'the lock is still held');
      t.equal((await rejection(mutex.withLock(key, { ttlMs: 1000, waitMs: 20 }, async () => 1))).code, 'LOCK_TIMEOUT');

      t.equal(await store.extend(key, 'owner-a', 5000), true, 'the owner can extend');
      t.equal(await store.release(key, 'owner-a'), true, 'the owner can release');
      t.equal(await store.release(key, 'owner-a'), false, 'only once');
      t.equal(await mutex.withLock(key, { ttlMs: 1000, waitMs: 0 }, async () => 'free'), 'free');

      // An owner whose lock expired and was taken over cannot release the new holder's lock.
      const stale = uniqueKey('taken-over');
      t.type(await store.acquire(stale, 'slow-owner', 50), 'number');
      await waitFor(async () => (await store.acquire(stale, 'new-owner', 5000)) !== null, 3000, 'the lock to expire');
      t.equal(await store.release(stale, 'slow-owner'), false, 'the former owner cannot release');
      t.equal(await store.extend(stale, 'slow-owner', 5000), false, 'nor extend');
      t.equal(await store.acquire(stale, 'third', 5000), null, 'the new owner still holds it');
      t.equal(await store.release(stale, 'new-owner'), true);
    });

    t.test('the lock is extended while fn runs longer than its ttl', async (t) => {
      const { store, mutex } = await setup(t);
      const key = uniqueKey('long');
      const ttlMs = 150;
      let contenderRan = false;
      let intruderGot: number | null = null;
      let contenderError: { code?: string; statusCode?: number } | undefined;
      const started = Date.now();
      const result = await mutex.withLock(key, { ttlMs, waitMs: 0 }, async () => {
        // A contender retries for 2.5× ttl: without extension it would get the lock after one ttl.
        const contender = rejection(
          mutex.withLock(key, { ttlMs, waitMs: 2.5 * ttlMs }, async () => {
            contenderRan = true;
          }),
        );
        await delay(2 * ttlMs);
        intruderGot = await store.acquire(key, 'intruder', ttlMs);
        contenderError = await contender;
        await delay(ttlMs);
        return 'long job done';
      });
      t.equal(result, 'long job done');
      t.ok(Date.now() - started >= 3 * ttlMs - 5, 'fn ran about 3× ttl');
      t.equal(intruderGot, null, 'still held after 2× ttl');
      t.equal(contenderError?.code, 'LOCK_TIMEOUT', 'a second withLock timed out meanwhile');
      t.equal(contenderError?.statusCode, 409);
      t.notOk(contenderRan, 'the contender never ran');
      t.equal(await mutex.withLock(key, { ttlMs, waitMs: 0 }, async () => 'then free'), 'then free', 'released at the end');
    });
  });
}

mutexContract('memory', async () => createMemoryLockStore());

mutexContract('redis', async (t) => {
  const client = await connectRedis(REDIS_URL, { keyPrefix: testRedisPrefix() });
  t.teardown(() => client.quit());
  return createRedisLockStore(client);
});

t.test('redis unreachable: LOCK_UNAVAILABLE (503) and fn never runs', async (t) => {
  const server = await startRedisServer(t);
  const client = await connectRedis(server.url, { keyPrefix: testRedisPrefix() });
  t.teardown(() => client.disconnect());
  const store = createRedisLockStore(client);
  const mutex = createMutex(store, silent);
  const key = uniqueKey('outage');

  t.equal(await mutex.withLock(key, { ttlMs: 1000, waitMs: 100 }, async () => 'up'), 'up', 'works while the server is up');

  await server.stop();

  let calls = 0;
  const fn = async () => {
    calls += 1;
    return 'ran without the lock';
  };
  const first = await rejection(mutex.withLock(key, { ttlMs: 1000, waitMs: 100 }, fn));
  t.equal(first.code, 'LOCK_UNAVAILABLE', 'right after the server died');
  t.equal(first.statusCode, 503);

  await waitFor(() => !store.available(), 5000, 'the client to notice the outage');
  const second = await rejection(mutex.withLock(key, { ttlMs: 1000, waitMs: 100 }, fn));
  t.equal(second.code, 'LOCK_UNAVAILABLE', 'while the client knows it is disconnected');
  t.equal(second.statusCode, 503);
  t.equal(calls, 0, 'fn never ran without the lock');
});
