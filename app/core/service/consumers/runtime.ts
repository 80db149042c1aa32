import { setTimeout as delay } from 'node:timers/promises';
import type { KafkaJS } from '@confluentinc/kafka-javascript';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { Static, TSchema } from 'typebox';
import { Value } from 'typebox/value';
import { type Envelope, EnvelopeSchema } from '../../../schemas/events.js';
import type { KafkaAdapter } from '../../adapter/kafka.js';
import type { WriteContext } from '../../base/service.js';
import type { Db } from '../../database.js';
import { processedEvents } from './model.js';

/** What a handler gets besides the event: the app's decorators and a context for its writes. */
export interface HandlerContext {
  app: FastifyInstance;
  /** Every line carries the consumer, topic, partition, offset, event id and correlation id. */
  log: FastifyBaseLogger;
  /** Pass to service calls: they join the handler's transaction and defer their post-commit work. */
  write: Required<Pick<WriteContext, 'tx' | 'afterCommit'>> & Pick<WriteContext, 'correlationId'>;
}

/** One file in app/consumers/ exports one of these. */
export interface ConsumerDefinition<S extends TSchema = TSchema> {
  /** Stable name: the consumer group and the dedupe namespace. */
  name: string;
  /** The logical topic (without KAFKA_TOPIC_PREFIX). */
  topic: string;
  /** Schema of the envelope's `data`. */
  data: S;
  handle(event: Envelope<Static<S>>, context: HandlerContext): Promise<void>;
}

export const defineConsumer = <S extends TSchema>(definition: ConsumerDefinition<S>) => definition;

export interface ConsumerStats {
  processed: number;
  duplicates: number;
  failed: number;
  dlq: number;
}

/** How far a consumer is behind on one partition it is assigned: messages written and not yet committed. */
export interface PartitionLag {
  consumer: string;
  topic: string;
  partition: number;
  lag: number;
}

/** Bound on each broker request of lag(), so a scrape stays short while the broker is slow or rebalancing. */
const LAG_TIMEOUT_MS = 2000;

export interface RuntimeOptions {
  app: FastifyInstance;
  kafka: KafkaAdapter;
  db: Db;
  log: FastifyBaseLogger;
  definitions: ConsumerDefinition[];
  groupPrefix: string;
  /** Attempts for an error that may pass (database down, deadlock) before the message goes to the DLQ. */
  maxAttempts: number;
  /** First retry delay; doubles on each attempt. */
  retryBaseMs: number;
  /** How often the offsets of handled messages are committed (see start()). */
  commitIntervalMs: number;
  /** Partitions of one consumer handled at the same time (each partition stays in order). */
  concurrency: number;
}

type Message = KafkaJS.KafkaMessage;

/** A failure retrying cannot fix: a typed 4xx error (unknown order, wrong amount, invalid transition). */
const isPermanent = (error: unknown) => {
  const status = (error as { statusCode?: number }).statusCode;
  return typeof status === 'number' && status >= 400 && status < 500;
};

const text = (value: Buffer | string | null | undefined) => (value == null ? undefined : value.toString());

function header(message: Message, name: string): string | undefined {
  const value = message.headers?.[name];
  return text(Array.isArray(value) ? value[0] : value);
}

/**
 * Runs consumers: decode + validate each message against its TypeBox schema, dedupe by envelope id
 * (processed_events, written in the handler's transaction), retry with exponential backoff, and send
 * what cannot be handled to `<topic>.dlq` with the original key and value plus x-error,
 * x-original-topic, x-original-partition and x-original-offset. Offsets are committed only after
 * success or DLQ; a bad message never stops the consumer. stop() lets in-flight messages finish,
 * commits and leaves the groups.
 */
export function createConsumerRuntime(options: RuntimeOptions) {
  const { app, kafka, db, log, definitions } = options;
  const consumers: { definition: ConsumerDefinition; consumer: KafkaJS.Consumer }[] = [];
  const stats = new Map<string, ConsumerStats>(
    definitions.map((d) => [d.name, { processed: 0, duplicates: 0, failed: 0, dlq: 0 }]),
  );

  async function toDlq(
    definition: ConsumerDefinition,
    topic: string,
    partition: number,
    message: Message,
    reason: string,
    messageLog: FastifyBaseLogger,
  ) {
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(message.headers ?? {})) {
      const first = Array.isArray(value) ? value[0] : value;
      if (first != null) headers[name] = first.toString();
    }
    await kafka.send(kafka.topic(`${definition.topic}.dlq`), [
      {
        key: message.key ?? null,
        value: message.value ?? null,
        headers: {
          ...headers,
          'x-error': reason.slice(0, 1000),
          'x-original-topic': topic,
          'x-original-partition': String(partition),
          'x-original-offset': message.offset,
        },
      },
    ]);
    (stats.get(definition.name) as ConsumerStats).dlq += 1;
    messageLog.warn({ reason }, 'message sent to the DLQ');
  }

  /** Decodes and validates; returns the envelope or the reason it is unusable. */
  function decode(definition: ConsumerDefinition, message: Message): { event: Envelope } | { reason: string } {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text(message.value) ?? '');
    } catch {
      return { reason: 'not JSON' };
    }
    const schema = EnvelopeSchema(definition.topic, definition.data);
    if (!Value.Check(schema, parsed)) {
      const first = Value.Errors(schema, parsed)[0];
      return { reason: `schema: ${first?.instancePath || '/'} ${first?.message ?? 'is invalid'}` };
    }
    return { event: parsed as Envelope };
  }

  async function handleOnce(definition: ConsumerDefinition, event: Envelope, messageLog: FastifyBaseLogger): Promise<'done' | 'duplicate'> {
    const deferred: (() => Promise<unknown> | unknown)[] = [];
    const outcome = await db.transaction(async (tx) => {
      const fresh = await tx
        .insert(processedEvents)
        .values({ consumer: definition.name, eventId: event.id })
        .onConflictDoNothing()
        .returning({ id: processedEvents.eventId });
      if (fresh.length === 0) return 'duplicate' as const;
      await definition.handle(event, {
        app,
        log: messageLog,
        write: { tx, afterCommit: (work) => deferred.push(work), correlationId: event.correlationId ?? event.id },
      });
      return 'done' as const;
    });
    // The effect is committed: follow-up work (cache invalidation, waking the relay) must not make
    // the message count as failed, since a retry would only find it already processed.
    for (const work of deferred) {
      await Promise.resolve()
        .then(work)
        .catch((error: Error) => messageLog.warn({ err: error }, 'post-commit work failed'));
    }
    return outcome;
  }

  /**
   * The logger for one message: every line about it carries the event id and the correlation id (the envelope's,
   * which is also what its writes pass on; the headers' for a message that cannot be decoded).
   */
  function messageLogger(definition: ConsumerDefinition, topic: string, partition: number, message: Message, event?: Envelope) {
    const eventId = event?.id ?? header(message, 'x-event-id');
    const correlationId = event ? (event.correlationId ?? event.id) : (header(message, 'x-correlation-id') ?? eventId);
    return log.child({ consumer: definition.name, topic, partition, offset: message.offset, eventId, correlationId });
  }

  async function process(definition: ConsumerDefinition, topic: string, partition: number, message: Message) {
    const started = performance.now();
    const counters = stats.get(definition.name) as ConsumerStats;
    const decoded = decode(definition, message);
    const messageLog = messageLogger(definition, topic, partition, message, 'event' in decoded ? decoded.event : undefined);
    try {
      if ('reason' in decoded) return await toDlq(definition, topic, partition, message, decoded.reason, messageLog);
      for (let attempt = 1; ; attempt += 1) {
        try {
          const outcome = await handleOnce(definition, decoded.event, messageLog);
          if (outcome === 'duplicate') counters.duplicates += 1;
          else counters.processed += 1;
          messageLog.debug({ outcome, attempt, ms: Math.round(performance.now() - started) }, 'message handled');
          return;
        } catch (error) {
          counters.failed += 1;
          const reason = (error as Error).message;
          if (isPermanent(error) || attempt >= options.maxAttempts) {
            const code = (error as { code?: string }).code ?? 'ERROR';
            return await toDlq(definition, topic, partition, message, `${code}: ${reason}`, messageLog);
          }
          messageLog.warn({ attempt, err: error }, 'handler failed; retrying');
          await delay(options.retryBaseMs * 2 ** (attempt - 1));
        }
      }
    } catch (error) {
      messageLog.error({ err: error }, 'message not handled and the DLQ is unreachable; it will be delivered again');
      throw error;
    }
  }

  /** Lag of one consumer on the partitions assigned to it in this process; none while it has no assignment. */
  async function lagOf(definition: ConsumerDefinition, consumer: KafkaJS.Consumer): Promise<PartitionLag[]> {
    const assigned = consumer.assignment();
    if (assigned.length === 0) return [];
    const committed = await consumer.committed(assigned, LAG_TIMEOUT_MS);
    return Promise.all(
      committed.map(async ({ topic, partition, offset }) => {
        const { low, high } = await kafka.watermarks(topic, partition, LAG_TIMEOUT_MS);
        // No commit yet: the group starts at the earliest offset (fromBeginning), so all that is there is lag.
        const position = offset === null || Number(offset) < 0 ? low : Number(offset);
        return { consumer: definition.name, topic, partition, lag: Math.max(0, high - position) };
      }),
    );
  }

  return {
    async start() {
      const topics = definitions.flatMap((d) => [kafka.topic(d.topic), kafka.topic(`${d.topic}.dlq`)]);
      await kafka.ensureTopics(topics);
      for (const definition of definitions) {
        // The client stores a message's offset only once eachMessage has resolved (handled, duplicate or sent to the
        // DLQ) and commits the stored offsets every commitIntervalMs and when the consumer leaves. A crash can
        // therefore redeliver up to one interval of handled messages, which the processed_events dedupe absorbs;
        // a synchronous commit per message instead cost a broker round trip each (a tenth of the bare consumer's
        // throughput in `npm run bench`).
        const consumer = kafka.createConsumer({
          groupId: `${options.groupPrefix}.${definition.name}`,
          autoCommit: true,
          autoCommitIntervalMs: options.commitIntervalMs,
        });
        consumers.push({ definition, consumer });
        await consumer.connect();
        await consumer.subscribe({ topics: [kafka.topic(definition.topic)] });
        await consumer.run({
          partitionsConsumedConcurrently: options.concurrency,
          eachMessage: async ({ topic, partition, message }) => {
            // Throws only when even the DLQ is unreachable: the message is then delivered again.
            await process(definition, topic, partition, message);
          },
        });
      }
      log.info({ consumers: definitions.map((d) => d.name) }, 'consumers running');
    },

    /** Finishes in-flight messages, commits, leaves the groups. */
    async stop() {
      await Promise.all(consumers.splice(0).map(({ consumer }) => consumer.disconnect().catch(() => {})));
    },

    /**
     * Consumer lag per assigned partition: the partition's high watermark minus the group's committed offset, both
     * asked of the brokers now (the standard definition, as kafka-consumer-groups shows it). Each process reports
     * the partitions assigned to it, so the sum over all workers is the group's lag. A consumer that cannot answer
     * (rebalancing, broker unreachable) is left out rather than reported as 0. Asked only when scraped: a few
     * OffsetFetch and ListOffsets requests, which librdkafka's mock cluster answers like a real broker.
     * Not librdkafka's statistics (statistics.interval.ms): their consumer_lag is -1 until the group's first
     * commit and stale while a consumer is paused (the high watermark comes from its own fetches), and they
     * cost a large JSON document per client and interval, scraped or not.
     */
    async lag(): Promise<PartitionLag[]> {
      const lags = await Promise.all(
        consumers.map(({ definition, consumer }) =>
          lagOf(definition, consumer).catch((error: Error) => {
            log.debug({ err: error, consumer: definition.name }, 'consumer lag unavailable');
            return [];
          }),
        ),
      );
      return lags.flat();
    },

    stats(): Record<string, ConsumerStats> {
      return Object.fromEntries([...stats].map(([name, s]) => [name, { ...s }]));
    },
  };
}

export type ConsumerRuntime = ReturnType<typeof createConsumerRuntime>;
