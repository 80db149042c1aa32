import { and, asc, eq, ilike, inArray, isNull, sql } from 'drizzle-orm';
import { BaseRepository } from '../core/base/repository.js';
import { likePattern } from '../core/base/service.js';
import type { Db, Executor } from '../core/database.js';
import { products } from './model.js';
import type { ProductListQuery } from './schema.js';

export interface StockLine {
  productId: string;
  quantity: number;
}

export class ProductsRepository extends BaseRepository<typeof products> {
  constructor(db: Db) {
    super(db, products, { price: products.priceCents, name: products.name, createdAt: products.createdAt }, 'product');
  }

  search(query: ProductListQuery, tx: Executor = this.db) {
    return this.list(
      {
        limit: query.limit,
        offset: query.offset,
        sort: query.sort,
        where: query.q ? ilike(products.name, likePattern(query.q)) : undefined,
      },
      tx,
    );
  }

  async findBySku(sku: string, tx: Executor = this.db) {
    const rows = await tx.select().from(products).where(this.live(eq(products.sku, sku))).limit(1);
    return rows[0];
  }

  /**
   * Takes `quantity` from a live product's stock in one conditional UPDATE (no read-modify-write):
   * the row is returned when it had enough, undefined otherwise. Bumps the version, since stock changed.
   */
  async takeStock(line: StockLine, tx: Executor) {
    const rows = await tx
      .update(products)
      .set({ stock: sql`${products.stock} - ${line.quantity}`, version: sql`${products.version} + 1`, updatedAt: sql`now()` })
      .where(and(eq(products.id, line.productId), isNull(products.deletedAt), sql`${products.stock} >= ${line.quantity}`))
      .returning();
    return rows[0];
  }

  /**
   * Adds to stock (cancelled order, inventory event); a negative delta stops at zero and the sum is
   * capped at the column's maximum instead of failing. Deleted products too.
   */
  async addStock(productId: string, delta: number, tx: Executor) {
    const stock = sql`least(greatest(${products.stock}::bigint + ${delta}, 0), 2147483647)::integer`;
    const rows = await tx
      .update(products)
      .set({ stock, version: sql`${products.version} + 1`, updatedAt: sql`now()` })
      .where(eq(products.id, productId))
      .returning();
    return rows[0];
  }

  /** Live products among `ids`, in id order. */
  async findLive(ids: string[], tx: Executor = this.db) {
    if (ids.length === 0) return [];
    return tx.select().from(products).where(this.live(inArray(products.id, ids))).orderBy(asc(products.id));
  }
}
