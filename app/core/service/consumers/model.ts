import { pgTable, primaryKey, text, uuid } from 'drizzle-orm/pg-core';
import { timestampColumn as ts } from '../../base/columns.js';

/**
 * Event ids each consumer has handled. Written in the handler's own transaction, so an event
 * delivered again (Kafka is at-least-once) finds its row and has no second effect.
 */
export const processedEvents = pgTable(
  'processed_events',
  {
    consumer: text('consumer').notNull(),
    eventId: uuid('event_id').notNull(),
    processedAt: ts('processed_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.consumer, t.eventId] })],
);
