import type { FastifyBaseLogger } from 'fastify';
import type { Redis } from 'ioredis';
import { TooManyAttemptsError } from '../base/errors.js';

export interface LoginGuardOptions {
  redis: Redis | null;
  log: FastifyBaseLogger;
  maxFailures: number;
  windowS: number;
}

/**
 * Counts failed logins per (email, client address) in a fixed window. Stored in Redis when there is
 * one, so every instance sees the same count; in process memory otherwise (one instance only).
 * While Redis is unreachable the guard lets logins through (logged): the per-address rate limit
 * still applies, and an outage of a counter must not lock every user out.
 */
export function createLoginGuard({ redis, log, maxFailures, windowS }: LoginGuardOptions) {
  const memory = new Map<string, { count: number; resetAt: number }>();
  const keyOf = (email: string, ip: string) => `login-failures:${email.toLowerCase()}:${ip}`;

  async function failures(key: string): Promise<{ count: number; retryAfterS: number }> {
    if (redis) {
      try {
        const [count, ttl] = await redis.multi().get(key).ttl(key).exec().then((r) => r?.map(([, v]) => v) ?? []);
        return { count: Number(count ?? 0), retryAfterS: Math.max(Number(ttl), 1) };
      } catch (error) {
        log.warn({ err: error }, 'login guard: Redis unavailable, not counting failures');
        return { count: 0, retryAfterS: 0 };
      }
    }
    const entry = memory.get(key);
    if (!entry || entry.resetAt <= Date.now()) return { count: 0, retryAfterS: 0 };
    return { count: entry.count, retryAfterS: Math.ceil((entry.resetAt - Date.now()) / 1000) };
  }

  return {
    /** Throws TOO_MANY_ATTEMPTS (429, Retry-After) while the pair is locked out. */
    async check(email: string, ip: string) {
      const { count, retryAfterS } = await failures(keyOf(email, ip));
      if (count >= maxFailures) {
        const error = new TooManyAttemptsError(String(retryAfterS));
        Object.assign(error, { headers: { 'retry-after': String(retryAfterS) } });
        throw error;
      }
    },
    async fail(email: string, ip: string) {
      const key = keyOf(email, ip);
      if (redis) {
        await redis.multi().incr(key).expire(key, windowS, 'NX').exec().catch(() => {});
        return;
      }
      const now = Date.now();
      const entry = memory.get(key);
      if (!entry || entry.resetAt <= now) memory.set(key, { count: 1, resetAt: now + windowS * 1000 });
      else entry.count += 1;
      if (memory.size > 10_000) for (const [k, v] of memory) if (v.resetAt <= now) memory.delete(k);
    },
    async reset(email: string, ip: string) {
      const key = keyOf(email, ip);
      if (redis) await redis.del(key).catch(() => {});
      else memory.delete(key);
    },
  };
}

export type LoginGuard = ReturnType<typeof createLoginGuard>;
