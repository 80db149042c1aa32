import { __pg_core_imports__ } from 'drizzle-orm/pg-core';
import { __base_column_imports__ } from '../core/base/columns.js';

/** The __entities_label__ table: the common columns (id, timestamps, soft delete, version), then its own fields. */
export const __entities__ = pgTable('__entity_table__', {
  ...commonColumns(),
  __columns__
});

export type __Entity__Row = typeof __entities__.$inferSelect;
export type New__Entity__Row = typeof __entities__.$inferInsert;
