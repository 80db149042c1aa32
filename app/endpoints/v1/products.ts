import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import {
  CreateProductSchema,
  PatchProductSchema,
  ProductListQuerySchema,
  ProductPageSchema,
  ProductSchema,
} from '../../products/schema.js';
import { errors, IdParamsSchema, NoContentSchema } from '../../schemas/common.js';

export const autoPrefix = '/products';

const plugin: FastifyPluginAsyncTypebox = async (app) => {
  const { products, authorize } = app;
  const security = [{ bearerAuth: [] }];

  app.get(
    '/',
    {
      schema: {
        tags: ['products'],
        summary: 'The catalog (public)',
        querystring: ProductListQuerySchema,
        response: { 200: ProductPageSchema, ...errors(400) },
      },
    },
    async (request) => products.list(request.query),
  );

  app.get(
    '/:id',
    {
      schema: {
        tags: ['products'],
        summary: 'One product (public, served from the cache after the first read)',
        params: IdParamsSchema,
        response: { 200: ProductSchema, ...errors(400, 404) },
      },
    },
    async (request) => products.get(request.params.id),
  );

  app.post(
    '/',
    {
      onRequest: authorize('admin'),
      schema: {
        tags: ['products'],
        summary: 'Create a product (admin)',
        security,
        body: CreateProductSchema,
        response: { 201: ProductSchema, ...errors(400, 401, 403, 409) },
      },
    },
    async (request, reply) => reply.code(201).send(await products.create(request.body)),
  );

  app.patch(
    '/:id',
    {
      onRequest: authorize('admin'),
      schema: {
        tags: ['products'],
        summary: 'Change a product (admin); carries the version you read',
        security,
        params: IdParamsSchema,
        body: PatchProductSchema,
        response: { 200: ProductSchema, ...errors(400, 401, 403, 404, 409) },
      },
    },
    async (request) => products.update(request.params.id, request.body),
  );

  app.delete(
    '/:id',
    {
      onRequest: authorize('admin'),
      schema: {
        tags: ['products'],
        summary: 'Soft-delete a product (admin)',
        security,
        params: IdParamsSchema,
        response: { 204: NoContentSchema, ...errors(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      await products.remove(request.params.id);
      return reply.code(204).send(null);
    },
  );
};

export default plugin;
