import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { errors, IdParamsSchema, NoContentSchema } from '../../schemas/common.js';
import { PatchUserSchema, UserListQuerySchema, UserPageSchema, UserSchema } from '../../users/schema.js';

export const autoPrefix = '/users';

const plugin: FastifyPluginAsyncTypebox = async (app) => {
  const { users, authenticate, authorize } = app;
  const security = [{ bearerAuth: [] }];

  app.get(
    '/me',
    {
      onRequest: authenticate,
      schema: { tags: ['users'], summary: 'The caller', security, response: { 200: UserSchema, ...errors(401) } },
    },
    async (request) => users.me(request.actor),
  );

  app.get(
    '/',
    {
      onRequest: authorize('admin'),
      schema: {
        tags: ['users'],
        summary: 'List users (admin)',
        security,
        querystring: UserListQuerySchema,
        response: { 200: UserPageSchema, ...errors(400, 401, 403) },
      },
    },
    async (request) => users.list(request.query),
  );

  app.get(
    '/:id',
    {
      onRequest: authenticate,
      schema: {
        tags: ['users'],
        summary: 'One user (admin, or the user itself)',
        security,
        params: IdParamsSchema,
        response: { 200: UserSchema, ...errors(400, 401, 404) },
      },
    },
    async (request) => users.get(request.actor, request.params.id),
  );

  app.patch(
    '/:id',
    {
      onRequest: authenticate,
      schema: {
        tags: ['users'],
        summary: 'Change name or password (self or admin) or role (admin only)',
        description: 'Changing the role or the password ends every session of that user.',
        security,
        params: IdParamsSchema,
        body: PatchUserSchema,
        response: { 200: UserSchema, ...errors(400, 401, 403, 404, 409) },
      },
    },
    async (request) => users.update(request.actor, request.params.id, request.body),
  );

  app.delete(
    '/:id',
    {
      onRequest: authorize('admin'),
      schema: {
        tags: ['users'],
        summary: 'Soft-delete a user (admin); their tokens stop working',
        security,
        params: IdParamsSchema,
        response: { 204: NoContentSchema, ...errors(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      await users.remove(request.params.id);
      return reply.code(204).send(null);
    },
  );
};

export default plugin;
