import { gte, sql } from 'drizzle-orm';
import type { FastifyBaseLogger } from 'fastify';
import type { PubSub } from '../adapter/pubsub.js';
import type { Db } from '../database.js';
import { sessions } from './model.js';

export interface RevocationOptions {
  db: Db;
  pubsub: PubSub;
  /** How long an access token lives: a revoked session must be remembered at least that long. */
  accessTtlMs: number;
  syncMs: number;
  log: FastifyBaseLogger;
}

const CHANNEL = 'session-revocations';

// Allowance for clocks of different instances and the database disagreeing a little.
const SKEW_MS = 30_000;

/**
 * Which sessions are revoked, answered from memory so checking an access token costs no network
 * call. PostgreSQL is the source of truth (sessions.revoked_at); a change reaches every instance
 * through Redis pub/sub at once, and a periodic re-read of recent revocations covers a missed message.
 */
export function createRevocations({ db, pubsub, accessTtlMs, syncMs, log }: RevocationOptions) {
  const revoked = new Map<string, number>(); // session id -> forget after (ms epoch)
  let timer: NodeJS.Timeout | undefined;
  let syncedUntil: Date | undefined;

  const remember = (sid: string, revokedAt = Date.now()) => {
    revoked.set(sid, revokedAt + accessTtlMs + SKEW_MS);
  };

  async function sync() {
    const since = syncedUntil ? new Date(syncedUntil.getTime() - SKEW_MS) : new Date(Date.now() - accessTtlMs - SKEW_MS);
    const [rows, [clock]] = await Promise.all([
      db.select({ id: sessions.id, revokedAt: sessions.revokedAt }).from(sessions).where(gte(sessions.revokedAt, since)),
      db.select({ now: sql<string>`now()` }).from(sql`(select 1) as one`),
    ]);
    for (const row of rows) if (row.revokedAt) remember(row.id, row.revokedAt.getTime());
    syncedUntil = clock ? new Date(clock.now) : new Date();
    const now = Date.now();
    for (const [sid, until] of revoked) if (until <= now) revoked.delete(sid);
  }

  return {
    isRevoked(sid: string): boolean {
      return revoked.has(sid);
    },

    /** Call after writing sessions.revoked_at: takes effect here at once and on the other instances via pub/sub. */
    async announce(sids: string[]) {
      if (sids.length === 0) return;
      for (const sid of sids) remember(sid);
      await pubsub.publish(CHANNEL, JSON.stringify(sids)).catch((error: Error) => {
        log.warn({ err: error }, 'could not broadcast a session revocation; other instances pick it up at the next sync');
      });
    },

    async start() {
      // Listen first, then read: nothing revoked in between can be missed.
      await pubsub.subscribe(CHANNEL, (message) => {
        try {
          for (const sid of JSON.parse(message) as string[]) remember(sid);
        } catch {
          log.warn('ignored a malformed revocation message');
        }
      });
      await sync();
      timer = setInterval(() => {
        sync().catch((error: Error) => log.warn({ err: error }, 'revocation sync failed; retrying'));
      }, syncMs);
      timer.unref();
    },

    stop() {
      clearInterval(timer);
    },
  };
}

export type Revocations = ReturnType<typeof createRevocations>;
