import { bigint, index, integer, pgEnum, pgTable, primaryKey, text, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { commonColumns } from '../core/base/columns.js';
import { products } from '../products/model.js';
import { users } from '../users/model.js';

export const orderStatuses = ['pending', 'paid', 'cancelled', 'shipped'] as const;
export type OrderStatus = (typeof orderStatuses)[number];
export const orderStatus = pgEnum('order_status', orderStatuses);

export const orders = pgTable(
  'orders',
  {
    ...commonColumns(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id),
    status: orderStatus('status').notNull().default('pending'),
    totalCents: bigint('total_cents', { mode: 'number' }).notNull(),
    idempotencyKey: text('idempotency_key').notNull(),
  },
  (t) => [
    // The same key from the same user is the same order, across restarts and instances.
    uniqueIndex('orders_user_idempotency_key').on(t.userId, t.idempotencyKey),
    index('orders_user_id_created_at_idx').on(t.userId, t.createdAt),
  ],
);

export const orderItems = pgTable(
  'order_items',
  {
    orderId: uuid('order_id')
      .notNull()
      .references(() => orders.id),
    productId: uuid('product_id')
      .notNull()
      .references(() => products.id),
    quantity: integer('quantity').notNull(),
    /** Copied from the product when the order was placed: later price changes do not touch it. */
    unitPriceCents: integer('unit_price_cents').notNull(),
  },
  (t) => [primaryKey({ columns: [t.orderId, t.productId] })],
);

export type OrderRow = typeof orders.$inferSelect;
export type OrderItemRow = typeof orderItems.$inferSelect;
