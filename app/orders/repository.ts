import { and, asc, eq, inArray, type SQL } from 'drizzle-orm';
import { BaseRepository } from '../core/base/repository.js';
import type { Db, Executor } from '../core/database.js';
import { type OrderItemRow, orderItems, type OrderRow, orders, type OrderStatus } from './model.js';

export interface NewOrder {
  userId: string;
  idempotencyKey: string;
  totalCents: number;
  items: Omit<OrderItemRow, 'orderId'>[];
}

export interface OrderFilter {
  limit: number;
  offset: number;
  sort?: string | undefined;
  userId?: string | undefined;
  status?: OrderStatus | undefined;
}

export class OrdersRepository extends BaseRepository<typeof orders> {
  constructor(db: Db) {
    super(db, orders, { createdAt: orders.createdAt, total: orders.totalCents }, 'order');
  }

  async insert(order: NewOrder, tx: Executor): Promise<OrderRow> {
    const [row] = await tx
      .insert(orders)
      .values({ userId: order.userId, idempotencyKey: order.idempotencyKey, totalCents: order.totalCents })
      .returning();
    const created = row as OrderRow;
    await tx.insert(orderItems).values(order.items.map((item) => ({ ...item, orderId: created.id })));
    return created;
  }

  async findByIdempotencyKey(userId: string, key: string, tx: Executor = this.db): Promise<OrderRow | undefined> {
    const rows = await tx
      .select()
      .from(orders)
      .where(and(eq(orders.userId, userId), eq(orders.idempotencyKey, key)))
      .limit(1);
    return rows[0];
  }

  /** The order row locked for the rest of the transaction (status moves). */
  async lock(id: string, tx: Executor): Promise<OrderRow> {
    const rows = await tx.select().from(orders).where(this.live(eq(orders.id, id))).for('update');
    if (!rows[0]) return this.getById(id, tx);
    return rows[0];
  }

  /** Items of several orders in one query, grouped by order id. */
  async itemsOf(orderIds: string[], tx: Executor = this.db): Promise<Map<string, OrderItemRow[]>> {
    const grouped = new Map<string, OrderItemRow[]>(orderIds.map((id) => [id, []]));
    if (orderIds.length === 0) return grouped;
    const rows = await tx
      .select()
      .from(orderItems)
      .where(inArray(orderItems.orderId, orderIds))
      .orderBy(asc(orderItems.orderId), asc(orderItems.productId));
    for (const row of rows) grouped.get(row.orderId)?.push(row);
    return grouped;
  }

  search(filter: OrderFilter, tx: Executor = this.db) {
    const conditions: SQL[] = [];
    if (filter.userId) conditions.push(eq(orders.userId, filter.userId));
    if (filter.status) conditions.push(eq(orders.status, filter.status));
    const where = conditions.length ? and(...conditions) : undefined;
    return this.list({ limit: filter.limit, offset: filter.offset, sort: filter.sort, where }, tx);
  }
}
