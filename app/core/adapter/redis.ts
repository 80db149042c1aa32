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

export interface RedisOptions {
  keyPrefix?: string;
  name?: string;
  /** Opening a connection (start-up and every reconnect). Default 2000 (REDIS_CONNECT_TIMEOUT_MS). */
  connectTimeoutMs?: number;
  /** Bound on every command, queued ones included. Default 1000 (REDIS_COMMAND_TIMEOUT_MS). */
  commandTimeoutMs?: number;
}

/**
 * An ioredis client that is connected when the promise resolves, or a clear error naming the URL.
 * Every call is bounded: a dead Redis fails a command within commandTimeoutMs (ioredis reconnects by
 * itself meanwhile, and a command sent during a short reconnect waits for it rather than failing at
 * once), and a Redis that accepts connections but never answers gets its connection dropped after
 * 3x commandTimeoutMs of silence, so the client stops reporting itself ready.
 */
export async function connectRedis(url: string, options: RedisOptions = {}): Promise<Redis> {
  const commandTimeout = options.commandTimeoutMs ?? 1000;
  const client = new Redis(url, {
    keyPrefix: options.keyPrefix,
    connectionName: options.name,
    lazyConnect: true,
    connectTimeout: options.connectTimeoutMs ?? 2000,
    commandTimeout,
    socketTimeout: commandTimeout * 3,
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
    const client = await connectRedis(settings.REDIS_URL, {
      keyPrefix: settings.REDIS_PREFIX,
      name: settings.SERVICE_NAME,
      connectTimeoutMs: settings.REDIS_CONNECT_TIMEOUT_MS,
      commandTimeoutMs: settings.REDIS_COMMAND_TIMEOUT_MS,
    });
    app.decorate('redis', client);
    app.health.add('redis', () => client.ping());
    app.addHook('onClose', async () => {
      await client.quit().catch(() => client.disconnect());
    });
    app.log.info('redis ready');
  },
  { name: 'redis', dependencies: ['settings', 'health'], fastify: '5.x' },
);
