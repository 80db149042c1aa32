import {
  AmountMismatchError,
  InsufficientStockError,
  isUniqueViolation,
  UnknownProductError,
} from '../core/base/errors.js';
import { afterCommit, isoRequired, type WriteContext } from '../core/base/service.js';
import type { Actor } from '../core/base/validator.js';
import type { Db, Executor } from '../core/database.js';
import type { Mutex } from '../core/service/mutex.js';
import type { Outbox } from '../core/service/outbox/service.js';
import type { ProductsService } from '../products/service.js';
import type { OrderItemRow, OrderRow, OrderStatus } from './model.js';
import type { OrdersRepository } from './repository.js';
import type { CreateOrder, Order, OrderListQuery } from './schema.js';
import type { OrdersValidator } from './validator.js';

export const toOrder = (row: OrderRow, items: Omit<OrderItemRow, 'orderId'>[]): Order => ({
  id: row.id,
  userId: row.userId,
  status: row.status,
  items: items.map((item) => ({ productId: item.productId, quantity: item.quantity, unitPriceCents: item.unitPriceCents })),
  totalCents: row.totalCents,
  version: row.version,
  createdAt: isoRequired(row.createdAt),
  updatedAt: isoRequired(row.updatedAt),
});

interface Deps {
  db: Db;
  repository: OrdersRepository;
  validator: OrdersValidator;
  products: ProductsService;
  mutex: Mutex;
  outbox: Outbox;
}

// Long enough for the order transaction; waiters for the same key get the finished order.
const IDEMPOTENCY_LOCK = { ttlMs: 10_000, waitMs: 10_000 };

export function createOrdersService({ db, repository, validator, products, mutex, outbox }: Deps) {
  async function withItems(row: OrderRow, tx?: Executor): Promise<Order> {
    const items = await repository.itemsOf([row.id], tx);
    return toOrder(row, items.get(row.id) ?? []);
  }

  /**
   * One status move: lock the row, check who may and whether the machine allows it, update guarded by
   * the version read, and (for cancellations) put the stock back, all in one transaction.
   */
  async function move(
    id: string,
    to: OrderStatus,
    actor: Actor | undefined,
    context: WriteContext,
    expectedTotalCents?: number,
  ): Promise<Order> {
    let restocked: string[] = [];
    const order = await (context.tx ?? db).transaction(async (tx) => {
      const current = await repository.lock(id, tx);
      if (actor) validator.canSee(actor, current);
      validator.assertTransition(current.status, to);
      if (expectedTotalCents !== undefined && expectedTotalCents !== current.totalCents) {
        throw new AmountMismatchError(String(expectedTotalCents), String(current.totalCents));
      }
      const moved = await repository.update(id, current.version, { status: to }, tx);
      await outbox.add(tx, {
        topic: 'orders.status-changed.v1',
        key: id,
        data: { orderId: id, from: current.status, to },
        correlationId: context.correlationId,
      });
      const result = await withItems(moved, tx);
      if (to === 'cancelled') {
        const lines = [...result.items].sort((a, b) => a.productId.localeCompare(b.productId));
        for (const line of lines) await products.stock.add(line.productId, line.quantity, tx);
        restocked = lines.map((line) => line.productId);
      }
      return result;
    });
    await afterCommit(context, async () => {
      outbox.wake();
      await products.afterStockChange(restocked);
    });
    return order;
  }

  async function place(actor: Actor, input: CreateOrder, idempotencyKey: string, context: WriteContext): Promise<Order> {
    // Sorted by product id: concurrent orders lock products in one order, so they cannot deadlock.
    const lines = [...input.items].sort((a, b) => a.productId.localeCompare(b.productId));
    const order = await db.transaction(async (tx) => {
      const items: Omit<OrderItemRow, 'orderId'>[] = [];
      for (const line of lines) {
        const product = await products.stock.take(line, tx);
        if (!product) {
          const [live] = await products.stock.findLive([line.productId], tx);
          if (!live) throw new UnknownProductError(line.productId);
          throw new InsufficientStockError(line.productId);
        }
        items.push({ productId: line.productId, quantity: line.quantity, unitPriceCents: product.priceCents });
      }
      const totalCents = items.reduce((sum, item) => sum + item.quantity * item.unitPriceCents, 0);
      const row = await repository.insert({ userId: actor.id, idempotencyKey, totalCents, items }, tx);
      await outbox.add(tx, {
        topic: 'orders.created.v1',
        key: row.id,
        data: { orderId: row.id, userId: row.userId, items, totalCents },
        correlationId: context.correlationId,
      });
      return toOrder(row, items);
    });
    outbox.wake();
    await products.afterStockChange(lines.map((line) => line.productId));
    return order;
  }

  return {
    /**
     * Places an order once per (user, Idempotency-Key): a repeat, even a simultaneous one, gets the
     * first order back (`created: false`). The mutex makes repeats wait for the first; the unique
     * index on (user, key) holds even without it (another instance on a stand-in mutex, a restart).
     */
    async create(
      actor: Actor,
      input: CreateOrder,
      idempotencyKey: string,
      context: WriteContext = {},
    ): Promise<{ order: Order; created: boolean }> {
      validator.distinctProducts(input);
      return mutex.withLock(`orders:idempotency:${actor.id}:${idempotencyKey}`, IDEMPOTENCY_LOCK, async () => {
        const existing = await repository.findByIdempotencyKey(actor.id, idempotencyKey);
        if (existing) return { order: await withItems(existing), created: false };
        try {
          return { order: await place(actor, input, idempotencyKey, context), created: true };
        } catch (error) {
          if (!isUniqueViolation(error, 'orders_user_idempotency_key')) throw error;
          const winner = await repository.findByIdempotencyKey(actor.id, idempotencyKey);
          return { order: await withItems(winner as OrderRow), created: false };
        }
      });
    },

    async get(actor: Actor, id: string): Promise<Order> {
      const row = await repository.getById(id);
      validator.canSee(actor, row);
      return withItems(row);
    },

    async list(actor: Actor, query: OrderListQuery) {
      const userId = validator.listFilter(actor, query.userId);
      const page = await repository.search({ ...query, userId });
      const items = await repository.itemsOf(page.items.map((row) => row.id));
      return {
        items: page.items.map((row) => toOrder(row, items.get(row.id) ?? [])),
        total: page.total,
        limit: query.limit,
        offset: query.offset,
      };
    },

    /** Owner or admin, from pending; the stock comes back in the same transaction. */
    cancel: (actor: Actor, id: string, context: WriteContext = {}) => move(id, 'cancelled', actor, context),
    /** Admin only (the route checks the role): paid → shipped. */
    ship: (id: string, context: WriteContext = {}) => move(id, 'shipped', undefined, context),
    /** A payment arrived (payments.completed.v1): pending → paid; the amount must equal the total. */
    markPaid: (id: string, context: WriteContext & { amountCents?: number } = {}) =>
      move(id, 'paid', undefined, context, context.amountCents),
    /** A payment failed (payments.failed.v1): pending → cancelled, stock restored. */
    markFailed: (id: string, context: WriteContext = {}) => move(id, 'cancelled', undefined, context),
  };
}

export type OrdersService = ReturnType<typeof createOrdersService>;
