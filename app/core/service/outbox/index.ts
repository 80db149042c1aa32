import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { createOutbox, type OutgoingMessage, type Outbox } from './service.js';

declare module 'fastify' {
  interface FastifyInstance {
    outbox: Outbox;
  }
}

/**
 * `app.outbox`: services add events in their transactions. The relay publishing them runs in every
 * process that has Kafka (`app.kafka`); a process without it only writes events.
 */
export default fp(
  async (app: FastifyInstance) => {
    const { settings } = app;
    const kafka = app.hasDecorator('kafka') ? app.kafka : undefined;
    const outbox = createOutbox({
      db: app.db,
      log: app.log.child({ service: 'outbox' }),
      publish: async (messages) => {
        if (!kafka) throw new Error('no Kafka producer in this process');
        const byTopic = new Map<string, OutgoingMessage[]>();
        for (const message of messages) byTopic.set(message.topic, [...(byTopic.get(message.topic) ?? []), message]);
        await Promise.all(
          [...byTopic].map(([topic, batch]) =>
            kafka.send(kafka.topic(topic), batch.map(({ key, value, headers }) => ({ key, value, headers }))),
          ),
        );
      },
      pollMs: settings.OUTBOX_POLL_MS,
      batchSize: settings.OUTBOX_BATCH_SIZE,
    });
    app.decorate('outbox', outbox);
    if (kafka) {
      app.addHook('onReady', async () => outbox.start());
      // Runs before the Kafka adapter's own onClose (hooks run in reverse), so the last batch is flushed.
      app.addHook('onClose', async () => outbox.stop());
    }
  },
  { name: 'outbox', dependencies: ['settings', 'database'], fastify: '5.x' },
);
