import { isUniqueViolation, NotFoundError, SkuTakenError } from '../core/base/errors.js';
import { afterCommit, isoRequired, type WriteContext } from '../core/base/service.js';
import type { Db, Executor } from '../core/database.js';
import type { Cache } from '../core/service/cache.js';
import type { ProductRow } from './model.js';
import type { ProductsRepository, StockLine } from './repository.js';
import type { CreateProduct, PatchProduct, Product, ProductListQuery } from './schema.js';
import type { ProductsValidator } from './validator.js';

export const toProduct = (row: ProductRow): Product => ({
  id: row.id,
  sku: row.sku,
  name: row.name,
  description: row.description,
  priceCents: row.priceCents,
  stock: row.stock,
  version: row.version,
  createdAt: isoRequired(row.createdAt),
  updatedAt: isoRequired(row.updatedAt),
});

/** How long a product stays cached; writes invalidate it at once, this only bounds a missed invalidation. */
export const PRODUCT_CACHE_TTL_MS = 60_000;
export const cacheKey = (id: string) => `products:${id}`;

interface Deps {
  db: Db;
  repository: ProductsRepository;
  validator: ProductsValidator;
  cache: Cache;
}

const skuTaken = (error: unknown, sku: string | undefined) =>
  isUniqueViolation(error, 'products_sku_live_key') ? new SkuTakenError(sku ?? '') : error;

/**
 * The catalog. Reads of one product go through the cache; every write invalidates it AFTER its
 * transaction commits, so no reader can re-cache the old row between the write and the commit.
 */
export function createProductsService({ db, repository, validator, cache }: Deps) {
  const forget = (ids: Iterable<string>) => Promise.all([...new Set(ids)].map((id) => cache.delete(cacheKey(id))));

  return {
    get(id: string): Promise<Product> {
      return cache.wrap(cacheKey(id), PRODUCT_CACHE_TTL_MS, async () => toProduct(await repository.getById(id)));
    },

    async list(query: ProductListQuery) {
      const page = await repository.search(query);
      return { items: page.items.map(toProduct), total: page.total, limit: query.limit, offset: query.offset };
    },

    async create(input: CreateProduct): Promise<Product> {
      await validator.skuIsFree(input.sku);
      try {
        return toProduct(await repository.create({ ...input, description: input.description ?? null }));
      } catch (error) {
        throw skuTaken(error, input.sku);
      }
    },

    async update(id: string, { version, ...patch }: PatchProduct): Promise<Product> {
      if (patch.sku !== undefined) await validator.skuIsFree(patch.sku, id);
      try {
        const row = await repository.update(id, version, patch);
        await forget([id]);
        return toProduct(row);
      } catch (error) {
        throw skuTaken(error, patch.sku);
      }
    },

    async remove(id: string): Promise<void> {
      await repository.softDelete(id);
      await forget([id]);
    },

    /**
     * Adds `delta` to the stock of the live product with this sku (an inventory event); the stock
     * never goes below zero. Unknown sku → NOT_FOUND.
     */
    async adjustStockBySku(sku: string, delta: number, context: WriteContext = {}): Promise<Product> {
      const row = await (context.tx ?? db).transaction(async (tx) => {
        const product = await repository.findBySku(sku, tx);
        if (!product) throw new NotFoundError(`No product has sku ${sku}`);
        return repository.addStock(product.id, delta, tx);
      });
      const updated = row as ProductRow;
      await afterCommit(context, () => forget([updated.id]));
      return toProduct(updated);
    },

    /**
     * Stock moves for other services, inside THEIR transaction. They return the affected product ids:
     * call `afterStockChange(ids)` once that transaction has committed.
     */
    stock: {
      take: (line: StockLine, tx: Executor) => repository.takeStock(line, tx),
      add: (productId: string, delta: number, tx: Executor) => repository.addStock(productId, delta, tx),
      findLive: (ids: string[], tx: Executor) => repository.findLive(ids, tx),
    },
    afterStockChange: (ids: Iterable<string>) => forget(ids),
  };
}

export type ProductsService = ReturnType<typeof createProductsService>;
