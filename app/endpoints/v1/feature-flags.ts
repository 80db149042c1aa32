import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { EvaluationSchema, FlagKeyParamsSchema, FlagSchema, PutFlagSchema } from '../../core/service/flags/schema.js';
import { errors, ListQuerySchema, PageSchema } from '../../schemas/common.js';

export const autoPrefix = '/feature-flags';

const plugin: FastifyPluginAsyncTypebox = async (app) => {
  const { flags, authenticate, authorize } = app;
  const security = [{ bearerAuth: [] }];

  app.get(
    '/',
    {
      onRequest: authorize('admin'),
      schema: {
        tags: ['feature-flags'],
        summary: 'All flags (admin)',
        security,
        querystring: ListQuerySchema({}),
        response: { 200: PageSchema(FlagSchema), ...errors(400, 401, 403) },
      },
    },
    async (request) => {
      const all = flags.list();
      const { limit, offset } = request.query;
      return { items: all.slice(offset, offset + limit), total: all.length, limit, offset };
    },
  );

  app.get(
    '/evaluate',
    {
      onRequest: authenticate,
      schema: {
        tags: ['feature-flags'],
        summary: 'Every flag evaluated for the caller',
        security,
        response: { 200: EvaluationSchema, ...errors(401) },
      },
    },
    async (request) => flags.evaluateAll({ userId: request.actor.id }),
  );

  app.put(
    '/:key',
    {
      onRequest: authorize('admin'),
      schema: {
        tags: ['feature-flags'],
        summary: 'Create or replace a flag (admin); every instance sees the change within a second',
        security,
        params: FlagKeyParamsSchema,
        body: PutFlagSchema,
        response: { 200: FlagSchema, ...errors(400, 401, 403) },
      },
    },
    async (request) => flags.put(request.params.key, request.body),
  );
};

export default plugin;
