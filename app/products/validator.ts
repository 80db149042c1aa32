import { SkuTakenError } from '../core/base/errors.js';
import type { ProductsRepository } from './repository.js';

/** Business rules of products beyond the request shape. */
export function createProductsValidator(repository: ProductsRepository) {
  return {
    /** Friendly early answer; the unique index on live skus still decides under concurrency. */
    async skuIsFree(sku: string, exceptId?: string) {
      const existing = await repository.findBySku(sku);
      if (existing && existing.id !== exceptId) throw new SkuTakenError(sku);
    },
  };
}

export type ProductsValidator = ReturnType<typeof createProductsValidator>;
