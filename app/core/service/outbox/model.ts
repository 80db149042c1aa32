import { sql } from 'drizzle-orm';
import { bigserial, index, integer, jsonb, pgTable, text, uuid } from 'drizzle-orm/pg-core';
import { timestampColumn as ts } from '../../base/columns.js';

/**
 * Events waiting to be published, written in the same transaction as the change they describe.
 * `seq` orders the events of one key; the relay publishes a key's events strictly in that order.
 */
export const outbox = pgTable(
  'outbox',
  {
    seq: bigserial('seq', { mode: 'number' }).primaryKey(),
    id: uuid('id').notNull().unique(),
    topic: text('topic').notNull(),
    key: text('key').notNull(),
    envelope: jsonb('envelope').notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
    sentAt: ts('sent_at'),
    attempts: integer('attempts').notNull().default(0),
    lastError: text('last_error'),
  },
  (t) => [
    index('outbox_pending_idx').on(t.seq).where(sql`${t.sentAt} is null`),
    index('outbox_pending_key_idx').on(t.key, t.seq).where(sql`${t.sentAt} is null`),
  ],
);

export type OutboxRow = typeof outbox.$inferSelect;
