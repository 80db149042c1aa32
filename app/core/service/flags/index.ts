import type { FastifyInstance, FastifyRequest, onRequestHookHandler } from 'fastify';
import fp from 'fastify-plugin';
import { FeatureDisabledError } from '../../base/errors.js';
import { createFlags, type Flags } from './service.js';

declare module 'fastify' {
  interface FastifyInstance {
    flags: Flags;
    /** onRequest hook: 403 FEATURE_DISABLED unless `key` is on for the caller. Put it after authenticate. */
    requireFlag: (key: string) => onRequestHookHandler;
  }
}

export default fp(
  async (app: FastifyInstance) => {
    const flags = createFlags({
      db: app.db,
      pubsub: app.pubsub,
      log: app.log.child({ component: 'flags' }),
      resyncMs: app.settings.FLAGS_RESYNC_MS,
    });
    await flags.start();
    app.addHook('onClose', async () => flags.stop());
    app.decorate('flags', flags);
    app.decorate('requireFlag', (key: string) => async (request: FastifyRequest) => {
      if (!flags.isEnabled(key, { userId: request.actor?.id })) throw new FeatureDisabledError(key);
    });
    app.log.info({ pubsub: app.pubsub.kind }, `feature flags: ${app.pubsub.kind === 'redis' ? 'Redis pub/sub' : 'in-process (ONE instance only)'}`);
  },
  { name: 'flags', dependencies: ['settings', 'database', 'pubsub', 'security'], fastify: '5.x' },
);
