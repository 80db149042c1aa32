import { randomBytes, randomUUID } from 'node:crypto';
import ConfluentKafka, { type KafkaJS as KJS } from '@confluentinc/kafka-javascript';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Test } from 'tap';
import plinth, { serverOptions } from '../../app/app.js';
import type { Envelope } from '../../app/schemas/events.js';
import { testSettings } from './app.js';

/**
 * Kafka for tests: envelopes as an external producer writes them, and a producer and a topic reader of the test's own
 * (plain KafkaJS clients that only know the bootstrap address, over TCP), never the app's adapter.
 */

const { KafkaJS } = ConfluentKafka;

/** An api.md envelope for `type` with `data`; `overrides` replace (or add) top-level fields. */
export function envelope<D>(type: string, data: D, overrides: Record<string, unknown> = {}): Envelope<D> {
  return { id: randomUUID(), type, occurredAt: new Date().toISOString(), version: 1, data, ...overrides } as Envelope<D>;
}

/** The headers api.md puts on every message. */
export const envelopeHeaders = (event: Envelope) => ({
  'x-event-id': event.id,
  'x-event-type': event.type,
  'x-correlation-id': event.correlationId ?? event.id,
});

/** A plain KafkaJS client of the test's own: it knows nothing but the bootstrap address. */
export function plainClient(bootstrap: string): KJS.Kafka {
  return new KafkaJS.Kafka({
    kafkaJS: { brokers: bootstrap.split(','), clientId: 'plinth-test-client', logLevel: KafkaJS.logLevel.NOTHING },
  });
}

export interface TestProducer {
  /** Sends the messages; resolves with the broker's acknowledgement (partition and offset of each). */
  send(topic: string, messages: KJS.Message[]): Promise<KJS.RecordMetadata[]>;
  /** Sends one envelope as JSON, keyed by `key`, with the api.md headers. */
  sendEvent(topic: string, key: string, event: Envelope): Promise<KJS.RecordMetadata>;
}

/** A connected producer on `bootstrap`, disconnected when `t` ends. */
export async function testProducer(t: Test, bootstrap: string): Promise<TestProducer> {
  const producer = plainClient(bootstrap).producer({ 'linger.ms': 0, 'topic.metadata.refresh.interval.ms': 1000 });
  await producer.connect();
  t.teardown(() => producer.disconnect());
  // Copies: the KafkaJS producer rewrites the messages it is given (values become Buffers).
  const send = (topic: string, messages: KJS.Message[]) =>
    producer.send({ topic, messages: messages.map((m) => ({ ...m, ...(m.headers ? { headers: { ...m.headers } } : {}) })) });
  return {
    send,
    async sendEvent(topic, key, event) {
      const [ack] = await send(topic, [{ key, value: JSON.stringify(event), headers: envelopeHeaders(event) }]);
      return ack as KJS.RecordMetadata;
    },
  };
}

export interface ReadMessage {
  topic: string;
  partition: number;
  offset: string;
  key: string | undefined;
  value: string | undefined;
  headers: Record<string, string>;
}

export interface TopicReader {
  /** Everything read so far, in arrival order. */
  messages: ReadMessage[];
  /** Resolves with the first message (already read or still to come) matching `match`; rejects after `timeoutMs`. */
  find(match: (message: ReadMessage) => boolean, what: string, timeoutMs?: number): Promise<ReadMessage>;
}

/**
 * Reads `topics` from the beginning with a consumer group of its own (a separate client), disconnected when `t` ends.
 * The topics must exist (subscribing does not create a topic on the embedded broker).
 */
export async function readTopics(t: Test, bootstrap: string, topics: string[]): Promise<TopicReader> {
  const consumer = plainClient(bootstrap).consumer({
    'fetch.wait.max.ms': 10,
    'topic.metadata.refresh.interval.ms': 1000,
    'kafkaJS': {
      groupId: `test-reader-${randomBytes(4).toString('hex')}`,
      fromBeginning: true,
      sessionTimeout: 3000,
      heartbeatInterval: 500,
    },
  });
  await consumer.connect();
  t.teardown(() => consumer.disconnect());
  await consumer.subscribe({ topics });
  const messages: ReadMessage[] = [];
  const waiters = new Set<() => void>();
  await consumer.run({
    eachMessage: async ({ topic, partition, message }) => {
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(message.headers ?? {})) {
        const first = Array.isArray(value) ? value[0] : value;
        if (first != null) headers[name] = first.toString();
      }
      messages.push({
        topic,
        partition,
        offset: message.offset,
        key: message.key?.toString(),
        value: message.value?.toString(),
        headers,
      });
      for (const wake of waiters) wake();
    },
  });
  return {
    messages,
    find(match, what, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = messages.find(match);
          if (!found) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(found);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what} (read ${messages.length} messages)`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
  };
}

/**
 * Polls `probe` until it returns something other than undefined (or false) and returns that; throws after
 * `timeoutMs` naming what it waited for and the last value seen. Every wait of the Kafka tests is bounded by this.
 */
export async function waitFor<T>(
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  what: string,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * A ready consumer worker (`role: 'worker'`, as app/worker.ts builds it: consumers, no routes) on this file's database
 * and Redis, closed when `t` ends (closing it earlier is fine).
 */
export async function buildWorker(t: Test, env: Record<string, string | undefined> = {}): Promise<FastifyInstance> {
  const settings = await testSettings({ env });
  const app = Fastify(serverOptions(settings));
  t.teardown(() => app.close());
  await app.register(plinth, { settings, role: 'worker' });
  await app.ready();
  return app;
}
