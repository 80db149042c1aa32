import { randomUUID } from 'node:crypto';
import { and, asc, count, inArray, isNull, lt, notExists, sql } from 'drizzle-orm';
import { alias } from 'drizzle-orm/pg-core';
import type { FastifyBaseLogger } from 'fastify';
import type { EventData, ProducedTopic } from '../../../schemas/events.js';
import type { Db, Executor } from '../../database.js';
import { outbox, type OutboxRow } from './model.js';

export interface OutgoingMessage {
  topic: string;
  key: string;
  value: string;
  headers: Record<string, string>;
}

/** Publishes a batch and resolves once the broker acknowledged every message (throws otherwise). */
export type Publish = (messages: OutgoingMessage[]) => Promise<void>;

export interface OutboxOptions {
  db: Db;
  log: FastifyBaseLogger;
  publish: Publish;
  pollMs: number;
  batchSize: number;
  /** Sent rows older than this are deleted by the relay. */
  retentionMs?: number;
  /** A batch not acknowledged within this is retried later (possibly published twice: at least once). */
  publishTimeoutMs?: number;
}

const MAX_BACKOFF_MS = 30_000;

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`publish not acknowledged within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
const CLEANUP_EVERY_MS = 60_000;

export function toMessage(row: Pick<OutboxRow, 'id' | 'topic' | 'key' | 'envelope'>): OutgoingMessage {
  const envelope = row.envelope as { type: string; correlationId?: string };
  return {
    topic: row.topic,
    key: row.key,
    value: JSON.stringify(row.envelope),
    headers: {
      'x-event-id': row.id,
      'x-event-type': envelope.type,
      ...(envelope.correlationId ? { 'x-correlation-id': envelope.correlationId } : {}),
    },
  };
}

/**
 * Transactional outbox. `add(tx, event)` writes the event in the caller's transaction, so a rolled-back
 * change publishes nothing and a committed one is published even if the process dies right after the
 * commit (at least once; consumers dedupe by event id). The relay claims pending rows with
 * FOR UPDATE SKIP LOCKED, so several instances can run it, and only takes a key's oldest pending event:
 * the events of one key are published in the order they were written.
 */
export function createOutbox({
  db,
  log,
  publish,
  pollMs,
  batchSize,
  retentionMs = 24 * 3600 * 1000,
  publishTimeoutMs = 10_000,
}: OutboxOptions) {
  let running = false;
  let loop: Promise<void> | undefined;
  let wakeUp: (() => void) | undefined;
  let lastCleanup = 0;
  const earlier = alias(outbox, 'earlier');

  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        wakeUp = undefined;
        resolve();
      }
      wakeUp = done;
    });
  }

  /** Publishes one batch; returns how many events went out. */
  async function relayOnce(): Promise<number> {
    let claimed: number[] = [];
    try {
      return await claimAndPublish((seqs) => {
        claimed = seqs;
      });
    } catch (error) {
      // The batch's transaction rolled back; note the failed attempt on its rows for whoever investigates.
      if (claimed.length > 0) {
        await db
          .update(outbox)
          .set({ attempts: sql`${outbox.attempts} + 1`, lastError: String((error as Error).message).slice(0, 1000) })
          .where(inArray(outbox.seq, claimed))
          .catch(() => {});
      }
      throw error;
    }
  }

  async function claimAndPublish(onClaim: (seqs: number[]) => void): Promise<number> {
    return db.transaction(async (tx) => {
      const rows = await tx
        .select()
        .from(outbox)
        .where(
          and(
            isNull(outbox.sentAt),
            notExists(
              tx
                .select({ one: sql`1` })
                .from(earlier)
                .where(and(sql`${earlier.key} = ${outbox.key}`, isNull(earlier.sentAt), lt(earlier.seq, outbox.seq))),
            ),
          ),
        )
        .orderBy(asc(outbox.seq))
        .limit(batchSize)
        .for('update', { skipLocked: true });
      if (rows.length === 0) return 0;
      onClaim(rows.map((row) => row.seq));
      // The transaction sits idle while Kafka acknowledges; PostgreSQL must not end it for that
      // (DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS may be shorter than the publish bound).
      await tx.execute(sql`select set_config('idle_in_transaction_session_timeout', ${String(publishTimeoutMs + 5000)}, true)`);
      // Bounded: the rows stay locked while publishing, and a shutdown waits for this batch.
      await withTimeout(publish(rows.map(toMessage)), publishTimeoutMs);
      await tx
        .update(outbox)
        .set({ sentAt: sql`now()`, attempts: sql`${outbox.attempts} + 1`, lastError: null })
        .where(inArray(outbox.seq, rows.map((row) => row.seq)));
      return rows.length;
    });
  }

  async function cleanup() {
    if (Date.now() - lastCleanup < CLEANUP_EVERY_MS) return;
    lastCleanup = Date.now();
    await db.delete(outbox).where(lt(outbox.sentAt, new Date(Date.now() - retentionMs)));
  }

  async function run() {
    let failures = 0;
    while (running) {
      try {
        const sent = await relayOnce();
        if (failures > 0) log.info({ afterFailures: failures }, 'outbox relay publishing again');
        failures = 0;
        await cleanup();
        if (sent < batchSize) await sleep(pollMs);
      } catch (error) {
        failures += 1;
        const backoff = Math.min(MAX_BACKOFF_MS, pollMs * 2 ** Math.min(failures, 10));
        // One warning when an outage starts, then quiet retries; events stay pending meanwhile.
        if (failures === 1) log.warn({ err: error }, 'outbox relay cannot publish; retrying with backoff');
        await sleep(backoff);
      }
    }
  }

  return {
    /** Writes an event in the caller's transaction. Key = the aggregate id (ordering per aggregate). */
    async add<T extends ProducedTopic>(
      tx: Executor,
      event: { topic: T; key: string; data: EventData<T>; correlationId?: string | undefined },
    ): Promise<string> {
      const id = randomUUID();
      const envelope = {
        id,
        type: event.topic,
        occurredAt: new Date().toISOString(),
        version: 1 as const,
        ...(event.correlationId ? { correlationId: event.correlationId } : {}),
        data: event.data,
      };
      await tx.insert(outbox).values({ id, topic: event.topic, key: event.key, envelope });
      return id;
    },

    /** Tells the relay there is something to send now (instead of at the next poll). */
    wake() {
      wakeUp?.();
    },

    async backlog(): Promise<number> {
      const [row] = await db.select({ n: count() }).from(outbox).where(isNull(outbox.sentAt));
      return row?.n ?? 0;
    },

    relayOnce,

    start() {
      if (running) return;
      running = true;
      loop = run();
    },

    /** Finishes the batch in flight, then stops. */
    async stop() {
      running = false;
      wakeUp?.();
      await loop;
    },
  };
}

export type Outbox = ReturnType<typeof createOutbox>;
