import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { Product } from '../../app/products/schema.js';
import type { TestUser } from './users.js';

export const uniqueSku = (tag = 'sku') => `${tag}-${randomBytes(4).toString('hex')}`;

/** A product created through the admin API. */
export async function createProduct(
  app: FastifyInstance,
  admin: TestUser,
  fields: Partial<{ sku: string; name: string; priceCents: number; stock: number; description: string }> = {},
): Promise<Product> {
  const response = await app.inject({
    method: 'POST',
    url: '/v1/products',
    headers: admin.auth,
    payload: { sku: uniqueSku(), name: 'Test product', priceCents: 1250, stock: 10, ...fields },
  });
  if (response.statusCode !== 201) throw new Error(`create product failed: ${response.statusCode} ${response.body}`);
  return response.json() as Product;
}

export const orderRequest = (user: TestUser, items: { productId: string; quantity: number }[], key = randomBytes(8).toString('hex')) => ({
  method: 'POST' as const,
  url: '/v1/orders',
  headers: { ...user.auth, 'idempotency-key': key },
  payload: { items },
});
