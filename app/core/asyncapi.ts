import type { TSchema } from 'typebox';
import { consumedTopics, EnvelopeSchema, producedTopics } from '../schemas/events.js';
import type { Settings } from './settings/index.js';

/** Plain JSON of a TypeBox schema (TypeBox keeps its own metadata in symbol keys). */
const json = (schema: TSchema) => JSON.parse(JSON.stringify(schema)) as Record<string, unknown>;

const headers = (extra: Record<string, string> = {}) => ({
  type: 'object',
  properties: {
    'x-event-id': { type: 'string', format: 'uuid', description: 'the envelope id' },
    'x-event-type': { type: 'string', description: 'the topic name' },
    'x-correlation-id': { type: 'string', description: 'the request or event that caused this one' },
    ...Object.fromEntries(Object.entries(extra).map(([name, description]) => [name, { type: 'string', description }])),
  },
});

const DLQ_HEADERS = {
  'x-error': 'why the message could not be handled',
  'x-original-topic': 'the topic it was consumed from',
  'x-original-partition': 'its partition there',
  'x-original-offset': 'its offset there',
};

/**
 * The AsyncAPI 3 document of every topic this service produces (through the outbox) or consumes, with
 * the dead-letter topics, generated from the same TypeBox schemas the code validates with.
 */
export function asyncApiDocument(settings: Settings) {
  const channels: Record<string, unknown> = {};
  const operations: Record<string, unknown> = {};
  const messages: Record<string, unknown> = {};

  const add = (topic: string, data: TSchema, action: 'send' | 'receive', summary: string, extraHeaders = {}) => {
    const address = settings.KAFKA_TOPIC_PREFIX + topic;
    messages[topic] = {
      name: topic,
      contentType: 'application/json',
      summary,
      headers: headers(extraHeaders),
      payload: json(EnvelopeSchema(topic, data)),
      bindings: { kafka: { key: { type: 'string', description: 'the aggregate id (ordering per aggregate)' } } },
    };
    channels[topic] = { address, messages: { [topic]: { $ref: `#/components/messages/${topic}` } } };
    operations[`${action}:${topic}`] = {
      action,
      channel: { $ref: `#/channels/${topic}` },
      messages: [{ $ref: `#/channels/${topic}/messages/${topic}` }],
    };
  };

  for (const [topic, data] of Object.entries(producedTopics)) {
    add(topic, data, 'send', `Published through the transactional outbox (at least once)`);
  }
  for (const [topic, data] of Object.entries(consumedTopics)) {
    add(topic, data, 'receive', 'Handled once per event id; unusable messages go to the .dlq topic');
    add(`${topic}.dlq`, data, 'send', 'The original key and value, unchanged, plus the error headers', DLQ_HEADERS);
  }

  return {
    asyncapi: '3.0.0',
    info: {
      title: 'Plinth orders service events',
      version: '1',
      description: 'Every message value is a JSON envelope { id, type, occurredAt, version, correlationId?, data }.',
    },
    defaultContentType: 'application/json',
    servers: {
      kafka: {
        host: settings.KAFKA_BROKERS ?? 'embedded broker (see the start-up log)',
        protocol: settings.KAFKA_SSL ? 'kafka-secure' : 'kafka',
      },
    },
    channels,
    operations,
    components: { messages },
  };
}
