import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Redis } from 'ioredis';
import { LockTimeoutError, LockUnavailableError } from '../base/errors.js';

/** Where locks live. Every operation is atomic; release and extend only act for the owner's token. */
export interface LockStore {
  kind: 'redis' | 'memory';
  /** The new fencing token when acquired, null when someone else holds the lock. */
  acquire(key: string, owner: string, ttlMs: number): Promise<number | null>;
  release(key: string, owner: string): Promise<boolean>;
  extend(key: string, owner: string, ttlMs: number): Promise<boolean>;
  available(): boolean;
}

// One fencing counter for all locks: strictly increasing per lock too, and no counter key per lock
// left behind (idempotency keys alone would create millions).
const ACQUIRE = `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return redis.call('INCR', KEYS[2])
end
return false`;
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;
const EXTEND = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;

type LockCommands = {
  lockAcquire(key: string, fence: string, owner: string, ttl: number): Promise<number | null>;
  lockRelease(key: string, owner: string): Promise<number>;
  lockExtend(key: string, owner: string, ttl: number): Promise<number>;
};

export function createRedisLockStore(redis: Redis): LockStore {
  const commands = redis as Redis & LockCommands;
  if (!('lockAcquire' in redis)) {
    redis.defineCommand('lockAcquire', { numberOfKeys: 2, lua: ACQUIRE });
    redis.defineCommand('lockRelease', { numberOfKeys: 1, lua: RELEASE });
    redis.defineCommand('lockExtend', { numberOfKeys: 1, lua: EXTEND });
  }
  return {
    kind: 'redis',
    acquire: (key, owner, ttlMs) => commands.lockAcquire(`lock:${key}`, 'lock-fence', owner, ttlMs),
    release: async (key, owner) => (await commands.lockRelease(`lock:${key}`, owner)) === 1,
    extend: async (key, owner, ttlMs) => (await commands.lockExtend(`lock:${key}`, owner, ttlMs)) === 1,
    available: () => redis.status === 'ready',
  };
}

/** In-process locks with the same semantics; one instance only. */
export function createMemoryLockStore(): LockStore {
  const locks = new Map<string, { owner: string; expiresAt: number }>();
  let fence = 0;
  const holder = (key: string) => {
    const lock = locks.get(key);
    if (lock && lock.expiresAt <= Date.now()) {
      locks.delete(key);
      return undefined;
    }
    return lock;
  };
  return {
    kind: 'memory',
    async acquire(key, owner, ttlMs) {
      if (holder(key)) return null;
      locks.set(key, { owner, expiresAt: Date.now() + ttlMs });
      fence += 1;
      return fence;
    },
    async release(key, owner) {
      if (holder(key)?.owner !== owner) return false;
      locks.delete(key);
      return true;
    },
    async extend(key, owner, ttlMs) {
      const lock = holder(key);
      if (lock?.owner !== owner) return false;
      lock.expiresAt = Date.now() + ttlMs;
      return true;
    },
    available: () => true,
  };
}

export interface LockOptions {
  /** How long the lock lives if its holder dies; extended automatically while fn runs. */
  ttlMs: number;
  /** How long to wait for a busy lock before LOCK_TIMEOUT. */
  waitMs: number;
}

/**
 * `withLock(key, { ttlMs, waitMs }, fn)`: runs fn while holding the lock, passing a fencing token that
 * increases with every acquisition. Busy past waitMs → LOCK_TIMEOUT (409); store unreachable →
 * LOCK_UNAVAILABLE (503): fn never runs without the lock.
 */
export function createMutex(store: LockStore, log: FastifyBaseLogger) {
  async function call<T>(op: () => Promise<T>): Promise<T> {
    if (!store.available()) throw new LockUnavailableError();
    try {
      return await op();
    } catch (error) {
      log.warn({ err: error }, 'lock store unreachable');
      throw new LockUnavailableError();
    }
  }

  async function acquire(key: string, owner: string, { ttlMs, waitMs }: LockOptions): Promise<number> {
    const deadline = Date.now() + waitMs;
    for (let attempt = 0; ; attempt += 1) {
      const fence = await call(() => store.acquire(key, owner, ttlMs));
      if (fence !== null) return fence;
      const left = deadline - Date.now();
      if (left <= 0) throw new LockTimeoutError(key);
      // Jittered backoff from ~5 ms up to 50 ms, never past the deadline.
      await delay(Math.min(left, Math.min(50, 5 * 2 ** Math.min(attempt, 4)) * (0.5 + Math.random())));
    }
  }

  return {
    kind: store.kind,
    async withLock<T>(key: string, options: LockOptions, fn: (fence: number) => Promise<T>): Promise<T> {
      const owner = randomUUID();
      const fence = await acquire(key, owner, options);
      // Keep the lock while fn runs longer than its ttl.
      const keeper = setInterval(() => {
        store.extend(key, owner, options.ttlMs).then(
          (kept) => kept || log.warn({ key }, 'lock lost while its holder was still running'),
          (error: Error) => log.warn({ err: error, key }, 'could not extend a lock'),
        );
      }, Math.max(10, Math.floor(options.ttlMs / 3)));
      try {
        return await fn(fence);
      } finally {
        clearInterval(keeper);
        await store.release(key, owner).catch((error: Error) => {
          log.warn({ err: error, key }, 'could not release a lock; it expires by itself');
        });
      }
    },
  };
}

export type Mutex = ReturnType<typeof createMutex>;

declare module 'fastify' {
  interface FastifyInstance {
    mutex: Mutex;
  }
}

export default fp(
  async (app: FastifyInstance) => {
    const store = app.redis ? createRedisLockStore(app.redis) : createMemoryLockStore();
    app.decorate('mutex', createMutex(store, app.log.child({ component: 'mutex' })));
    if (store.kind === 'memory') app.log.warn('mutex: in-process stand-in (no REDIS_URL); it serves ONE instance only');
    else app.log.info('mutex: Redis');
  },
  { name: 'mutex', dependencies: ['settings', 'redis'], fastify: '5.x' },
);
