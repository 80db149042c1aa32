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
 * Limits password guesses per (email, client address) in a fixed window. Every attempt is counted
 * BEFORE the password is checked (one atomic increment), so a burst of simultaneous guesses cannot
 * all slip past the limit; a successful login clears the count. Stored in Redis when there is one, so
 * every instance sees the same count; in process memory otherwise (one instance only). While Redis is
 * unreachable the guard lets logins through (logged): the per-address rate limit still applies, and an
 * outage of a counter must not lock every user out.
 */
export function createLoginGuard({ redis, log, maxFailures, windowS }: LoginGuardOptions) {
  const memory = new Map<string, { count: number; resetAt: number }>();
  const keyOf = (email: string, ip: string) => `login-attempts:${email.toLowerCase()}:${ip}`;

  async function increment(key: string): Promise<{ count: number; retryAfterS: number }> {
    if (redis) {
      try {
        const replies = await redis.multi().incr(key).expire(key, windowS, 'NX').ttl(key).exec();
        const [count, , ttl] = replies?.map(([, value]) => Number(value)) ?? [];
        return { count: count ?? 0, retryAfterS: Math.max(ttl ?? windowS, 1) };
      } catch (error) {
        log.warn({ err: error }, 'login guard: Redis unavailable, not counting attempts');
        return { count: 0, retryAfterS: 0 };
      }
    }
    const now = Date.now();
    let entry = memory.get(key);
    if (!entry || entry.resetAt <= now) {
      entry = { count: 0, resetAt: now + windowS * 1000 };
      memory.set(key, entry);
    }
    entry.count += 1;
    if (memory.size > 10_000) for (const [k, v] of memory) if (v.resetAt <= now) memory.delete(k);
    return { count: entry.count, retryAfterS: Math.ceil((entry.resetAt - now) / 1000) };
  }

  return {
    /** Counts an attempt; throws TOO_MANY_ATTEMPTS (429, Retry-After) once the limit is used up. */
    async attempt(email: string, ip: string) {
      const { count, retryAfterS } = await increment(keyOf(email, ip));
      if (count > maxFailures) {
        const error = new TooManyAttemptsError(String(retryAfterS));
        Object.assign(error, { headers: { 'retry-after': String(retryAfterS) } });
        throw error;
      }
    },
    /** The password was right: earlier failures no longer count. */
    async succeeded(email: string, ip: string) {
      const key = keyOf(email, ip);
      if (redis) await redis.del(key).catch(() => {});
      else memory.delete(key);
    },
  };
}

export type LoginGuard = ReturnType<typeof createLoginGuard>;
