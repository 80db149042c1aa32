import { EventEmitter } from 'node:events';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Redis } from 'ioredis';

export type Listener = (message: string) => void;

/**
 * Broadcast between instances: Redis pub/sub when Redis is configured, an in-process emitter
 * otherwise (one instance only). Channel names get the settings' prefix, like keys do.
 */
export interface PubSub {
  kind: 'redis' | 'memory';
  publish(channel: string, message: string): Promise<void>;
  /** Resolves once the subscription is active, so nothing published afterwards is missed. */
  subscribe(channel: string, listener: Listener): Promise<void>;
  close(): Promise<void>;
}

export function createMemoryPubSub(): PubSub {
  const emitter = new EventEmitter();
  emitter.setMaxListeners(0);
  return {
    kind: 'memory',
    async publish(channel, message) {
      // Asynchronous like the real thing: a publisher never runs listeners inside its own call.
      queueMicrotask(() => emitter.emit(channel, message));
    },
    async subscribe(channel, listener) {
      emitter.on(channel, listener);
    },
    async close() {
      emitter.removeAllListeners();
    },
  };
}

export function createRedisPubSub(redis: Redis, prefix: string): PubSub {
  const listeners = new Map<string, Set<Listener>>();
  // A connection in subscriber mode can do nothing else, so subscriptions get their own.
  const subscriber = redis.duplicate({ keyPrefix: '' });
  subscriber.on('error', () => {});
  subscriber.on('message', (channel: string, message: string) => {
    for (const listener of listeners.get(channel) ?? []) listener(message);
  });
  return {
    kind: 'redis',
    async publish(channel, message) {
      await redis.publish(prefix + channel, message);
    },
    async subscribe(channel, listener) {
      const full = prefix + channel;
      let set = listeners.get(full);
      if (!set) {
        set = new Set();
        listeners.set(full, set);
        await subscriber.subscribe(full);
      }
      set.add(listener);
    },
    async close() {
      listeners.clear();
      await subscriber.quit().catch(() => subscriber.disconnect());
    },
  };
}

declare module 'fastify' {
  interface FastifyInstance {
    pubsub: PubSub;
  }
}

export default fp(
  async (app: FastifyInstance) => {
    const pubsub = app.redis ? createRedisPubSub(app.redis, app.settings.REDIS_PREFIX) : createMemoryPubSub();
    app.decorate('pubsub', pubsub);
    app.addHook('onClose', () => pubsub.close());
  },
  { name: 'pubsub', dependencies: ['settings', 'redis'], fastify: '5.x' },
);
