import { sql } from 'drizzle-orm';
import { check, integer, pgTable, text, uniqueIndex } from 'drizzle-orm/pg-core';
import { commonColumns } from '../core/base/columns.js';

export const products = pgTable(
  'products',
  {
    ...commonColumns(),
    sku: text('sku').notNull(),
    name: text('name').notNull(),
    description: text('description'),
    priceCents: integer('price_cents').notNull(),
    stock: integer('stock').notNull(),
  },
  (t) => [
    // The database decides sku uniqueness among live products: two concurrent creates cannot both win.
    uniqueIndex('products_sku_live_key').on(t.sku).where(sql`${t.deletedAt} is null`),
    check('products_price_cents_non_negative', sql`${t.priceCents} >= 0`),
    // The last line of defence: no code path can take stock below zero.
    check('products_stock_non_negative', sql`${t.stock} >= 0`),
  ],
);

export type ProductRow = typeof products.$inferSelect;
export type NewProductRow = typeof products.$inferInsert;
