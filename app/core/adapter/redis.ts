import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { Redis } from 'ioredis';
import type { Settings } from '../settings/index.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** ioredis client, or null when REDIS_URL is unset (local/test: in-process stand-ins are used). */
    redis: Redis | null;
  }
}

/** An ioredis client that is connected when the promise resolves, or a clear error naming the URL. */
export async function connectRedis(url: string, options: { keyPrefix?: string; name?: string } = {}): Promise<Redis> {
  const client = new Redis(url, {
    keyPrefix: options.keyPrefix,
    connectionName: options.name,
    lazyConnect: true,
    connectTimeout: 5000,
    // At start-up fail fast; once running, ioredis reconnects by itself and commands wait briefly.
    maxRetriesPerRequest: 2,
    enableOfflineQueue: true,
  });
  // Without a listener ioredis prints every reconnect error; the readiness check reports the outage.
  let lastError: Error | undefined;
  client.on('error', (error: Error) => {
    lastError = error;
  });
  try {
    await client.connect();
  } catch (error) {
    client.disconnect();
    // connect() only says "Connection is closed"; the error event has the cause (ECONNREFUSED, auth, ...).
    const reason = (lastError ?? (error as Error)).message;
    throw new Error(`Redis is unreachable at ${new URL(url).host}: ${reason}`, { cause: error });
  }
  return client;
}

export default fp(
  async (app: FastifyInstance) => {
    const settings: Settings = app.settings;
    if (!settings.REDIS_URL) {
      app.log.warn('REDIS_URL is unset: using in-process stand-ins; they serve ONE instance only');
      app.decorate('redis', null);
      app.health.add('redis', async () => {});
      return;
    }
    const client = await connectRedis(settings.REDIS_URL, { keyPrefix: settings.REDIS_PREFIX, name: settings.SERVICE_NAME });
    app.decorate('redis', client);
    app.health.add('redis', () => client.ping());
    app.addHook('onClose', async () => {
      await client.quit().catch(() => client.disconnect());
    });
    app.log.info('redis ready');
  },
  { name: 'redis', dependencies: ['settings', 'health'], fastify: '5.x' },
);
