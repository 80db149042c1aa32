import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { producedTopics } from '../../../schemas/events.js';
import { createOutbox, type OutgoingMessage, type Outbox } from './service.js';

declare module 'fastify' {
  interface FastifyInstance {
    outbox: Outbox;
  }
}

/**
 * `app.outbox`: services add events in their transactions; the relay publishing them to Kafka runs in
 * every process (API and worker), which is safe because relays claim rows with SKIP LOCKED.
 */
export default fp(
  async (app: FastifyInstance) => {
    const { settings } = app;
    const { kafka } = app;
    const outbox = createOutbox({
      db: app.db,
      log: app.log.child({ component: 'outbox' }),
      publish: async (messages) => {
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
      publishTimeoutMs: settings.KAFKA_SEND_TIMEOUT_MS,
    });
    app.decorate('outbox', outbox);
    // A backlog past the threshold means events are not getting out (Kafka down, relay stuck): readiness says so.
    app.health.addGauge('outboxBacklog', () => outbox.backlog(), { check: 'outbox', max: settings.OUTBOX_BACKLOG_DEGRADED });
    app.addHook('onReady', async () => {
      await kafka.ensureTopics(Object.keys(producedTopics).map((topic) => kafka.topic(topic)));
      outbox.start();
    });
    // Fastify closes plugins in reverse order: the relay stops (finishing its batch) before Kafka closes.
    app.addHook('onClose', async () => outbox.stop());
  },
  { name: 'outbox', dependencies: ['settings', 'health', 'database', 'kafka'], fastify: '5.x' },
);
