import fastifyJwt from '@fastify/jwt';
import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';
import fp from 'fastify-plugin';
import type { Role } from '../../users/model.js';
import { ForbiddenError, TokenExpiredError, TokenRevokedError, UnauthorizedError } from '../base/errors.js';
import type { Actor } from '../base/validator.js';
import { createLoginGuard, type LoginGuard } from './login-guard.js';
import { createRevocations } from './revocation.js';
import { type AccessClaims, createSessions, type Sessions } from './sessions.js';

declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: AccessClaims;
    user: AccessClaims;
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    /** onRequest hook: a valid, unrevoked Bearer access token is required. */
    authenticate: onRequestHookHandler;
    /** onRequest hook factory: authenticated and holding `role`. */
    authorize: (role: Role) => onRequestHookHandler;
    sessions: Sessions;
    loginGuard: LoginGuard;
  }
  interface FastifyRequest {
    /** The authenticated caller, set by `authenticate`. */
    actor: Actor;
  }
}

export default fp(
  async (app: FastifyInstance) => {
    const { settings } = app;
    const hs = settings.JWT_ALGORITHM === 'HS256';
    await app.register(fastifyJwt, {
      secret: hs
        ? (settings.JWT_SECRET as string)
        : { private: settings.JWT_PRIVATE_KEY as string, public: settings.JWT_PUBLIC_KEY as string },
      sign: { algorithm: settings.JWT_ALGORITHM, expiresIn: `${settings.ACCESS_TOKEN_TTL_S}s`, iss: settings.JWT_ISSUER },
      // Only the configured algorithm is accepted: `alg: none` and algorithm confusion are refused.
      verify: { algorithms: [settings.JWT_ALGORITHM], allowedIss: settings.JWT_ISSUER },
    });

    const revocations = createRevocations({
      db: app.db,
      pubsub: app.pubsub,
      accessTtlMs: settings.ACCESS_TOKEN_TTL_S * 1000,
      syncMs: settings.REVOCATION_SYNC_MS,
      log: app.log,
    });
    await revocations.start();
    app.addHook('onClose', async () => revocations.stop());

    app.decorate(
      'sessions',
      createSessions({
        db: app.db,
        jwt: app.jwt,
        revocations,
        accessTtlS: settings.ACCESS_TOKEN_TTL_S,
        refreshTtlS: settings.REFRESH_TOKEN_TTL_S,
      }),
    );
    app.decorate(
      'loginGuard',
      createLoginGuard({
        redis: app.redis,
        log: app.log,
        maxFailures: settings.LOGIN_MAX_FAILURES,
        windowS: settings.LOGIN_FAILURE_WINDOW_S,
      }),
    );
    app.decorateRequest('actor', null as unknown as Actor);

    async function authenticate(request: FastifyRequest, _reply: FastifyReply) {
      let claims: AccessClaims;
      try {
        claims = await request.jwtVerify<AccessClaims>();
      } catch (error) {
        const code = (error as { code?: string }).code;
        if (code === 'FST_JWT_NO_AUTHORIZATION_IN_HEADER') throw new UnauthorizedError('A Bearer access token is required');
        if (code === 'FST_JWT_AUTHORIZATION_TOKEN_EXPIRED') throw new TokenExpiredError();
        throw new UnauthorizedError('The access token is invalid');
      }
      if (typeof claims.sid !== 'string' || typeof claims.sub !== 'string') {
        throw new UnauthorizedError('The access token is invalid');
      }
      if (revocations.isRevoked(claims.sid)) throw new TokenRevokedError();
      request.actor = { id: claims.sub, role: claims.role };
    }
    app.decorate('authenticate', authenticate);
    app.decorate('authorize', (role: Role) => async (request: FastifyRequest, reply: FastifyReply) => {
      await authenticate(request, reply);
      if (request.actor.role !== role) throw new ForbiddenError(`This action requires the ${role} role`);
    });
  },
  { name: 'security', dependencies: ['settings', 'database', 'redis', 'pubsub'], fastify: '5.x' },
);
