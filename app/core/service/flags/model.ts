import { sql } from 'drizzle-orm';
import { boolean, check, integer, pgTable, text, uuid } from 'drizzle-orm/pg-core';
import { timestampColumn as ts } from '../../base/columns.js';

/** Feature flags, by key. Evaluated from an in-process copy; this table is the source of truth. */
export const featureFlags = pgTable(
  'feature_flags',
  {
    key: text('key').primaryKey(),
    enabled: boolean('enabled').notNull().default(false),
    rolloutPercent: integer('rollout_percent').notNull().default(0),
    allowUserIds: uuid('allow_user_ids').array().notNull().default(sql`'{}'::uuid[]`),
    description: text('description'),
    version: integer('version').notNull().default(1),
    createdAt: ts('created_at').notNull().defaultNow(),
    updatedAt: ts('updated_at').notNull().defaultNow(),
  },
  (t) => [check('feature_flags_rollout_range', sql`${t.rolloutPercent} between 0 and 100`)],
);

export type FeatureFlagRow = typeof featureFlags.$inferSelect;
