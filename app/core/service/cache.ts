import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Redis } from 'ioredis';

/**
 * The storage under the cache. Keys are `namespace:rest`. A read returns a stamp (namespace version +
 * key epoch); a write given that stamp only lands if nothing invalidated the key in between, so a
 * loader that read the database before a write cannot put the old value back after it.
 */
export interface CacheStore {
  kind: 'redis' | 'memory';
  read(key: string): Promise<{ value: string | null; stamp: string }>;
  write(key: string, value: string, ttlMs: number, stamp?: string): Promise<void>;
  remove(key: string): Promise<void>;
  removeNamespace(namespace: string): Promise<void>;
  /** False while the backing service is known to be unreachable: skip it without waiting. */
  available(): boolean;
}

const split = (key: string) => {
  const at = key.indexOf(':');
  return at < 0 ? { ns: key, rest: '' } : { ns: key.slice(0, at), rest: key.slice(at + 1) };
};

// Epoch counters outlive any entry and any loader.
const EPOCH_TTL_MS = 24 * 3600 * 1000;

// All keys of a namespace share a hash tag ({ns}), so the scripts stay within one cluster slot.
const READ = `
local ver = redis.call('GET', KEYS[1]) or '0'
local epoch = redis.call('GET', KEYS[2]) or '0'
local value = redis.call('GET', ARGV[1] .. ver .. ':' .. ARGV[2])
return { value or false, ver .. ':' .. epoch }`;
const WRITE = `
local ver = redis.call('GET', KEYS[1]) or '0'
if ARGV[4] ~= '' then
  local epoch = redis.call('GET', KEYS[2]) or '0'
  if ARGV[4] ~= ver .. ':' .. epoch then return 0 end
end
redis.call('SET', ARGV[1] .. ver .. ':' .. ARGV[2], ARGV[3], 'PX', ARGV[5])
return 1`;
const REMOVE = `
local ver = redis.call('GET', KEYS[1]) or '0'
redis.call('DEL', ARGV[1] .. ver .. ':' .. ARGV[2])
redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1`;

type CacheCommands = {
  cacheRead(ver: string, epoch: string, base: string, rest: string): Promise<[string | null, string]>;
  cacheWrite(ver: string, epoch: string, base: string, rest: string, value: string, stamp: string, ttl: number): Promise<number>;
  cacheRemove(ver: string, epoch: string, base: string, rest: string, epochTtl: number): Promise<number>;
};

export function createRedisCacheStore(redis: Redis): CacheStore {
  const commands = redis as Redis & CacheCommands;
  if (!('cacheRead' in redis)) {
    redis.defineCommand('cacheRead', { numberOfKeys: 2, lua: READ });
    redis.defineCommand('cacheWrite', { numberOfKeys: 2, lua: WRITE });
    redis.defineCommand('cacheRemove', { numberOfKeys: 2, lua: REMOVE });
  }
  // ioredis prefixes KEYS but not ARGV, so data keys built in Lua get the prefix here.
  const prefix = redis.options.keyPrefix ?? '';
  const keys = (key: string) => {
    const { ns, rest } = split(key);
    const tag = `cache:{${ns}}`;
    return { ver: `${tag}:ver`, epoch: `${tag}:e:${rest}`, base: `${prefix}${tag}:d:`, rest };
  };
  return {
    kind: 'redis',
    async read(key) {
      const k = keys(key);
      const [value, stamp] = await commands.cacheRead(k.ver, k.epoch, k.base, k.rest);
      return { value, stamp };
    },
    async write(key, value, ttlMs, stamp = '') {
      const k = keys(key);
      await commands.cacheWrite(k.ver, k.epoch, k.base, k.rest, value, stamp, Math.max(1, Math.round(ttlMs)));
    },
    async remove(key) {
      const k = keys(key);
      await commands.cacheRemove(k.ver, k.epoch, k.base, k.rest, EPOCH_TTL_MS);
    },
    async removeNamespace(namespace) {
      await redis.incr(`cache:{${namespace}}:ver`);
    },
    available: () => redis.status === 'ready',
  };
}

/** In-process store: same semantics, bounded size (oldest entries go first). One instance only. */
export function createMemoryCacheStore(maxEntries = 10_000): CacheStore {
  const entries = new Map<string, { value: string; expiresAt: number }>();
  const versions = new Map<string, number>();
  const epochs = new Map<string, number>();
  const stampOf = (key: string) => `${versions.get(split(key).ns) ?? 0}:${epochs.get(key) ?? 0}`;
  const dataKey = (key: string) => `${versions.get(split(key).ns) ?? 0}|${key}`;
  return {
    kind: 'memory',
    async read(key) {
      const entry = entries.get(dataKey(key));
      if (entry && entry.expiresAt <= Date.now()) entries.delete(dataKey(key));
      const live = entry && entry.expiresAt > Date.now() ? entry.value : null;
      return { value: live, stamp: stampOf(key) };
    },
    async write(key, value, ttlMs, stamp) {
      if (stamp !== undefined && stamp !== stampOf(key)) return;
      const k = dataKey(key);
      entries.delete(k);
      entries.set(k, { value, expiresAt: Date.now() + ttlMs });
      if (entries.size > maxEntries) entries.delete(entries.keys().next().value as string);
    },
    async remove(key) {
      entries.delete(dataKey(key));
      epochs.set(key, (epochs.get(key) ?? 0) + 1);
    },
    async removeNamespace(namespace) {
      versions.set(namespace, (versions.get(namespace) ?? 0) + 1);
    },
    available: () => true,
  };
}

export interface CacheStats {
  hits: number;
  misses: number;
  /** Operations that failed or were skipped because the store was unreachable. */
  errors: number;
  /** How many times the store went from reachable to unreachable. */
  outages: number;
}

interface Flight<T> {
  stamp: Promise<string | undefined>;
  result: Promise<T>;
}

// A slow cache must not make a request slow: past this, treat the call as failed.
const OP_TIMEOUT_MS = 250;

/**
 * JSON cache over a store: read-through `wrap` with single flight (concurrent misses on one key share
 * one loader call), and failure isolation (an unreachable store means misses and skipped writes,
 * never a failed request; one warning per outage).
 */
export function createCache(store: CacheStore, log: FastifyBaseLogger) {
  const inflight = new Map<string, Flight<unknown>>();
  const stats: CacheStats = { hits: 0, misses: 0, errors: 0, outages: 0 };
  let down = false;

  async function guarded<T>(op: () => Promise<T>): Promise<T | undefined> {
    if (!store.available()) return failed(new Error('cache store is not connected'));
    let timer: NodeJS.Timeout | undefined;
    try {
      const result = await Promise.race([
        op(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`cache operation took over ${OP_TIMEOUT_MS} ms`)), OP_TIMEOUT_MS);
        }),
      ]);
      if (down) {
        down = false;
        log.info('cache store reachable again');
      }
      return result;
    } catch (error) {
      return failed(error as Error);
    } finally {
      clearTimeout(timer);
    }
  }

  function failed(error: Error): undefined {
    stats.errors += 1;
    if (!down) {
      down = true;
      stats.outages += 1;
      log.warn({ err: error }, 'cache store unreachable: reading through to the source, skipping writes');
    }
    return undefined;
  }

  async function read<T>(key: string): Promise<{ value: T | undefined; stamp?: string }> {
    const result = await guarded(() => store.read(key));
    if (result?.value == null) {
      stats.misses += 1;
      return { value: undefined, stamp: result?.stamp };
    }
    try {
      const value = JSON.parse(result.value) as T;
      stats.hits += 1;
      return { value, stamp: result.stamp };
    } catch {
      // Not ours or corrupted: a miss, and the next write replaces it.
      stats.misses += 1;
      return { value: undefined, stamp: result.stamp };
    }
  }

  function start<T>(key: string, ttlMs: number, loader: () => Promise<T>): Flight<T> {
    const first = read<T>(key);
    const result = (async () => {
      const { value, stamp } = await first;
      if (value !== undefined) return value;
      const loaded = await loader();
      // Only a store that answered the read gets a write; undefined is not cacheable.
      if (stamp !== undefined && loaded !== undefined) {
        await guarded(() => store.write(key, JSON.stringify(loaded), ttlMs, stamp));
      }
      return loaded;
    })();
    return { stamp: first.then((r) => r.stamp), result };
  }

  return {
    kind: store.kind,

    async get<T>(key: string): Promise<T | undefined> {
      return (await read<T>(key)).value;
    },

    async set(key: string, value: unknown, ttlMs: number): Promise<void> {
      await guarded(() => store.write(key, JSON.stringify(value), ttlMs));
    },

    /** Drops one key; a loader that started before this cannot store its result afterwards. */
    async delete(key: string): Promise<void> {
      await guarded(() => store.remove(key));
    },

    /** Drops every key of a namespace (`products` for `products:*`) in O(1): no KEYS, no SCAN. */
    async invalidateNamespace(namespace: string): Promise<void> {
      await guarded(() => store.removeNamespace(namespace));
    },

    /**
     * The cached value, or the loader's (stored for ttlMs). Concurrent misses of one key share one
     * loader call. A caller joins a running load only if its own read saw the same stamp, so a
     * reader that starts after an invalidation (on any instance) never gets a value loaded before it.
     */
    async wrap<T>(key: string, ttlMs: number, loader: () => Promise<T>): Promise<T> {
      const running = inflight.get(key) as Flight<T> | undefined;
      if (running) {
        const mine = await read<T>(key);
        if (mine.value !== undefined) return mine.value;
        if ((await running.stamp) === mine.stamp) return running.result;
      }
      const flight = start(key, ttlMs, loader);
      inflight.set(key, flight);
      void flight.result.then(
        () => inflight.get(key) === flight && inflight.delete(key),
        () => inflight.get(key) === flight && inflight.delete(key),
      );
      return flight.result;
    },

    stats: (): CacheStats => ({ ...stats }),
  };
}

export type Cache = ReturnType<typeof createCache>;

declare module 'fastify' {
  interface FastifyInstance {
    cache: Cache;
  }
}

export default fp(
  async (app: FastifyInstance) => {
    const store = app.redis ? createRedisCacheStore(app.redis) : createMemoryCacheStore();
    app.decorate('cache', createCache(store, app.log.child({ component: 'cache' })));
    if (store.kind === 'memory') app.log.warn('cache: in-process stand-in (no REDIS_URL); it serves ONE instance only');
    else app.log.info('cache: Redis');
  },
  { name: 'cache', dependencies: ['settings', 'redis'], fastify: '5.x' },
);
