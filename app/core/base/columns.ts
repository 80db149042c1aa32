import { integer, timestamp, uuid } from 'drizzle-orm/pg-core';

const ts = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

/**
 * Columns every entity table carries: uuid id, audit timestamps, soft delete and an optimistic-lock
 * version. Spread into a table: `pgTable('things', { ...commonColumns(), name: text('name') })`.
 */
export const commonColumns = () => ({
  id: uuid('id').primaryKey().defaultRandom(),
  createdAt: ts('created_at').notNull().defaultNow(),
  updatedAt: ts('updated_at').notNull().defaultNow(),
  deletedAt: ts('deleted_at'),
  version: integer('version').notNull().default(1),
});

export { ts as timestampColumn };
