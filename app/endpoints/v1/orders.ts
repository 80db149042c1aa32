import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import {
  CreateOrderSchema,
  IdempotencyHeadersSchema,
  OrderListQuerySchema,
  OrderPageSchema,
  OrderSchema,
} from '../../orders/schema.js';
import { EmptyBodySchema, errors, IdParamsSchema } from '../../schemas/common.js';

export const autoPrefix = '/orders';

const plugin: FastifyPluginAsyncTypebox = async (app) => {
  const { orders, authenticate, authorize, requireFlag } = app;
  const security = [{ bearerAuth: [] }];

  app.post(
    '/',
    {
      onRequest: [authenticate, requireFlag('orders.checkout')],
      schema: {
        tags: ['orders'],
        summary: 'Place an order (once per Idempotency-Key)',
        description:
          '201 with the new order; 200 with the same order when this user sent this Idempotency-Key before. ' +
          'Stock is taken in the same transaction.',
        security,
        headers: IdempotencyHeadersSchema,
        body: CreateOrderSchema,
        response: { 200: OrderSchema, 201: OrderSchema, ...errors(400, 401, 403, 409, 422, 503) },
      },
    },
    async (request, reply) => {
      const { order, created } = await orders.create(request.actor, request.body, request.headers['idempotency-key'], {
        correlationId: request.correlationId,
      });
      return reply.code(created ? 201 : 200).send(order);
    },
  );

  app.get(
    '/',
    {
      onRequest: authenticate,
      schema: {
        tags: ['orders'],
        summary: 'The caller\'s orders (admin: all, ?userId= filter)',
        security,
        querystring: OrderListQuerySchema,
        response: { 200: OrderPageSchema, ...errors(400, 401, 403) },
      },
    },
    async (request) => orders.list(request.actor, request.query),
  );

  app.get(
    '/:id',
    {
      onRequest: authenticate,
      schema: {
        tags: ['orders'],
        summary: 'One order (owner or admin)',
        security,
        params: IdParamsSchema,
        response: { 200: OrderSchema, ...errors(400, 401, 404) },
      },
    },
    async (request) => orders.get(request.actor, request.params.id),
  );

  app.post(
    '/:id/cancel',
    {
      onRequest: authenticate,
      schema: {
        tags: ['orders'],
        summary: 'Cancel a pending order (owner or admin); its stock comes back',
        security,
        params: IdParamsSchema,
        body: EmptyBodySchema,
        response: { 200: OrderSchema, ...errors(400, 401, 404, 409) },
      },
    },
    async (request) => orders.cancel(request.actor, request.params.id, { correlationId: request.correlationId }),
  );

  app.post(
    '/:id/ship',
    {
      onRequest: authorize('admin'),
      schema: {
        tags: ['orders'],
        summary: 'Ship a paid order (admin)',
        security,
        params: IdParamsSchema,
        body: EmptyBodySchema,
        response: { 200: OrderSchema, ...errors(400, 401, 403, 404, 409) },
      },
    },
    async (request) => orders.ship(request.params.id, { correlationId: request.correlationId }),
  );
};

export default plugin;
