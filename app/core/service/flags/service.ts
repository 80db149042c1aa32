import { createHash } from 'node:crypto';
import { sql } from 'drizzle-orm';
import type { FastifyBaseLogger } from 'fastify';
import type { PubSub } from '../../adapter/pubsub.js';
import type { Db } from '../../database.js';
import { featureFlags, type FeatureFlagRow } from './model.js';
import type { Flag, PutFlag } from './schema.js';

export interface FlagContext {
  userId?: string | undefined;
}

export const CHANNEL = 'feature-flags';

/** Stable bucket 0..99.99 for (flag, user): the same user stays in or out as the percentage grows. */
export function bucket(key: string, userId: string): number {
  return (createHash('sha256').update(`${key}:${userId}`).digest().readUInt32BE(0) / 2 ** 32) * 100;
}

/** api.md's rule: disabled → off; allow-listed → on; otherwise the user's bucket below the rollout. */
export function evaluate(flag: Pick<FeatureFlagRow, 'key' | 'enabled' | 'rolloutPercent' | 'allowUserIds'>, ctx: FlagContext) {
  if (!flag.enabled) return false;
  if (ctx.userId && flag.allowUserIds.includes(ctx.userId)) return true;
  if (flag.rolloutPercent >= 100) return true;
  if (!ctx.userId || flag.rolloutPercent <= 0) return false;
  return bucket(flag.key, ctx.userId) < flag.rolloutPercent;
}

const toFlag = (row: FeatureFlagRow): Flag => ({
  key: row.key,
  enabled: row.enabled,
  rolloutPercent: row.rolloutPercent,
  allowUserIds: row.allowUserIds,
  description: row.description,
  version: row.version,
  createdAt: row.createdAt.toISOString(),
  updatedAt: row.updatedAt.toISOString(),
});

export interface FlagsOptions {
  db: Db;
  pubsub: PubSub;
  log: FastifyBaseLogger;
  resyncMs: number;
}

/**
 * Flags answered from an in-process copy: no network call per evaluation. A change is written to
 * PostgreSQL, then announced on pub/sub so every instance reloads at once; a periodic reload is the
 * safety net for a missed message.
 */
export function createFlags({ db, pubsub, log, resyncMs }: FlagsOptions) {
  let flags = new Map<string, FeatureFlagRow>();
  let timer: NodeJS.Timeout | undefined;
  // Reloads overlap (pub/sub messages, the resync timer, puts). Only the latest one started may
  // install its rows: an older SELECT finishing late must not bring back an older state.
  let generation = 0;

  async function reload() {
    const mine = ++generation;
    const rows = await db.select().from(featureFlags);
    if (mine === generation) flags = new Map(rows.map((row) => [row.key, row]));
  }
  const reloadQuietly = () => reload().catch((error: Error) => log.warn({ err: error }, 'feature flags reload failed'));

  return {
    async start() {
      await pubsub.subscribe(CHANNEL, () => void reloadQuietly());
      await reload();
      timer = setInterval(reloadQuietly, resyncMs);
      timer.unref();
    },
    stop() {
      clearInterval(timer);
    },

    /** Unknown flags are off. */
    isEnabled(key: string, ctx: FlagContext = {}): boolean {
      const flag = flags.get(key);
      return flag ? evaluate(flag, ctx) : false;
    },

    evaluateAll(ctx: FlagContext): Record<string, boolean> {
      return Object.fromEntries([...flags.values()].map((flag) => [flag.key, evaluate(flag, ctx)]));
    },

    list(): Flag[] {
      return [...flags.values()].sort((a, b) => a.key.localeCompare(b.key)).map(toFlag);
    },

    /** Creates or replaces a flag; every instance sees it within a moment. */
    async put(key: string, input: PutFlag): Promise<Flag> {
      const values = {
        enabled: input.enabled,
        rolloutPercent: input.rolloutPercent,
        allowUserIds: input.allowUserIds ?? [],
        description: input.description ?? null,
      };
      const [row] = await db
        .insert(featureFlags)
        .values({ key, ...values })
        .onConflictDoUpdate({
          target: featureFlags.key,
          set: { ...values, version: sql`${featureFlags.version} + 1`, updatedAt: sql`now()` },
        })
        .returning();
      const saved = row as FeatureFlagRow;
      // Re-read after the commit: supersedes any reload that started before it.
      await reload();
      await pubsub.publish(CHANNEL, key).catch((error: Error) => {
        log.warn({ err: error }, 'could not announce a flag change; other instances reload within the resync period');
      });
      return toFlag(saved);
    },

    reload,
  };
}

export type Flags = ReturnType<typeof createFlags>;
