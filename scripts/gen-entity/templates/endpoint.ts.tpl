import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import {
  Create__Entity__Schema,
  Patch__Entity__Schema,
  __Entity__ListQuerySchema,
  __Entity__PageSchema,
  __Entity__Schema,
} from '../../__entity_folder__/schema.js';
import { errors, IdParamsSchema, NoContentSchema } from '../../schemas/common.js';

export const autoPrefix = '/__entities_route__';

/** /v1/__entities_route__: any authenticated caller reads, admins write. */
const plugin: FastifyPluginAsyncTypebox = async (app) => {
  const { authenticate, authorize } = app;
  const service = app.__entities__;
  const security = [{ bearerAuth: [] }];

  app.get(
    '/',
    {
      onRequest: authenticate,
      schema: {
        tags: ['__entities_route__'],
        summary: 'A page of __entities_label__ (?sort=, ?limit=, ?offset=)',
        security,
        querystring: __Entity__ListQuerySchema,
        response: { 200: __Entity__PageSchema, ...errors(400, 401) },
      },
    },
    async (request) => service.list(request.query),
  );

  app.get(
    '/:id',
    {
      onRequest: authenticate,
      schema: {
        tags: ['__entities_route__'],
        summary: 'One __entity_label__',
        security,
        params: IdParamsSchema,
        response: { 200: __Entity__Schema, ...errors(400, 401, 404) },
      },
    },
    async (request) => service.get(request.params.id),
  );

  app.post(
    '/',
    {
      onRequest: authorize('admin'),
      schema: {
        tags: ['__entities_route__'],
        summary: 'Create __a_entity_label__ (admin)',
        security,
        body: Create__Entity__Schema,
        response: { 201: __Entity__Schema, ...errors(400, 401, 403) },
      },
    },
    async (request, reply) => reply.code(201).send(await service.create(request.body)),
  );

  app.patch(
    '/:id',
    {
      onRequest: authorize('admin'),
      schema: {
        tags: ['__entities_route__'],
        summary: 'Change __a_entity_label__ (admin); carries the version you read',
        security,
        params: IdParamsSchema,
        body: Patch__Entity__Schema,
        response: { 200: __Entity__Schema, ...errors(400, 401, 403, 404, 409) },
      },
    },
    async (request) => service.update(request.params.id, request.body),
  );

  app.delete(
    '/:id',
    {
      onRequest: authorize('admin'),
      schema: {
        tags: ['__entities_route__'],
        summary: 'Soft-delete __a_entity_label__ (admin)',
        security,
        params: IdParamsSchema,
        response: { 204: NoContentSchema, ...errors(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      await service.remove(request.params.id);
      return reply.code(204).send(null);
    },
  );
};

export default plugin;
