import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { consumers } from '../../../consumers/index.js';
import { type ConsumerRuntime, createConsumerRuntime } from './runtime.js';

declare module 'fastify' {
  interface FastifyInstance {
    consumers: ConsumerRuntime;
  }
}

/**
 * Runs app/consumers once the app is ready, stops them first on close (in-flight messages finish,
 * offsets are committed, the groups are left).
 */
export default fp(
  async (app: FastifyInstance) => {
    const { settings } = app;
    const runtime = createConsumerRuntime({
      app,
      kafka: app.kafka,
      db: app.db,
      log: app.log.child({ component: 'consumers' }),
      definitions: consumers,
      groupPrefix: settings.SERVICE_NAME,
      maxAttempts: settings.CONSUMER_MAX_ATTEMPTS,
      retryBaseMs: settings.CONSUMER_RETRY_BASE_MS,
      commitIntervalMs: settings.CONSUMER_COMMIT_INTERVAL_MS,
      concurrency: settings.CONSUMER_CONCURRENCY,
    });
    app.decorate('consumers', runtime);
    app.addHook('onReady', () => runtime.start());
    app.addHook('onClose', () => runtime.stop());
  },
  { name: 'consumers', dependencies: ['settings', 'database', 'kafka', 'orders', 'products'], fastify: '5.x' },
);
