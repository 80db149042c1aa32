import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { errors, NoContentSchema } from '../../schemas/common.js';
import { LoginSchema, RefreshSchema, RegisterSchema, TokenPairSchema, UserSchema } from '../../users/schema.js';

export const autoPrefix = '/auth';

const plugin: FastifyPluginAsyncTypebox = async (app) => {
  const { users, settings } = app;

  app.post(
    '/register',
    {
      schema: {
        tags: ['auth'],
        summary: 'Create an account',
        body: RegisterSchema,
        response: { 201: UserSchema, ...errors(400, 409, 413, 415, 429) },
      },
    },
    async (request, reply) => reply.code(201).send(await users.register(request.body, { correlationId: request.correlationId })),
  );

  app.post(
    '/login',
    {
      schema: {
        tags: ['auth'],
        summary: 'Start a session: an access and a refresh token',
        body: LoginSchema,
        response: { 200: TokenPairSchema, ...errors(400, 401, 429) },
      },
      config: { rateLimit: { max: settings.LOGIN_RATE_LIMIT_MAX, timeWindow: 60_000 } },
    },
    async (request) => users.login(request.body, request.ip),
  );

  app.post(
    '/refresh',
    {
      schema: {
        tags: ['auth'],
        summary: 'Exchange a refresh token for a new pair; the presented one is spent',
        body: RefreshSchema,
        response: { 200: TokenPairSchema, ...errors(400, 401, 429) },
      },
    },
    async (request) => users.refresh(request.body.refreshToken),
  );

  app.post(
    '/logout',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['auth'],
        summary: 'End the session: its refresh and access tokens stop working',
        security: [{ bearerAuth: [] }],
        body: RefreshSchema,
        response: { 204: NoContentSchema, ...errors(400, 401, 429) },
      },
    },
    async (request, reply) => {
      await users.logout(request.user, request.body.refreshToken);
      return reply.code(204).send(null);
    },
  );
};

export default plugin;
