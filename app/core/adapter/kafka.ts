import ConfluentKafka, { type KafkaJS as KJS, type RdKafka as RdK } from '@confluentinc/kafka-javascript';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { isEmbeddedAllowed, type Settings } from '../settings/index.js';

/*
 * Two APIs of @confluentinc/kafka-javascript, chosen per use:
 * - KafkaJS-compatible API for the producer and the consumers: promise per send that resolves on the broker's
 *   acknowledgement, group membership, eachMessage/eachBatch, pause/resume and commitOffsets are what the outbox relay
 *   and the consumer runtime need. Measured on the embedded broker it does ~75k msg/s produce and ~70k consume (the
 *   librdkafka-style API ~120-150k); our producers and handlers write to PostgreSQL per message or batch (~16k simple
 *   queries/s here), so the client is not the bottleneck and the simpler, safer API wins.
 * - librdkafka-style API (RdKafka) where the KafkaJS API has no equivalent: hosting the mock cluster and reading its
 *   broker list, and plain Metadata requests (readiness ping, topic auto-creation on the embedded broker, connection
 *   probe). KafkaJS only offers metadata through its admin client, which must not be used against the mock cluster.
 */
const { KafkaJS, RdKafka } = ConfluentKafka;

type Config = Record<string, string | number | boolean>;

/*
 * Every call to the brokers is bounded by a setting: KAFKA_CONNECT_TIMEOUT_MS (first contact; the whole start-up gets
 * twice that, so a dead broker fails start-up instead of hanging), KAFKA_REQUEST_TIMEOUT_MS (metadata and admin
 * requests) and KAFKA_SEND_TIMEOUT_MS (a message's wait for the broker's acknowledgement; librdkafka's default is 5 min).
 */
/** The in-process embedded broker answers at once; its first Metadata request gets this long. */
const EMBEDDED_CONNECT_TIMEOUT_MS = 5_000;
/** Below the health check's own 1 s timeout, so a ping never outlives its check. */
const PING_TIMEOUT_MS = 800;

/*
 * librdkafka's mock cluster (`test.mock.num.brokers`) behaves unlike a real broker in ways that matter; every
 * workaround lives here:
 * - Fetch requests are not answered early when data arrives: with the default fetch.wait.max.ms (500) every message
 *   waits ~500 ms. 10 ms gives p50 7 ms / p99 19 ms.
 * - A group's first join waits a fixed 3 s (its group.initial.rebalance.delay.ms, not configurable from here); later
 *   rebalances wait session timeout - 1 s, hence a short session timeout.
 * - Topics are auto-created (4 partitions, the mock's default) by Metadata and Produce requests, never by subscribe:
 *   ensureTopics() sends a Metadata request per topic. A short metadata refresh lets clients see new topics quickly.
 * - No admin API: CreateTopics times out, some group admin calls crash the process. Never use admin against it.
 * - Data lives in this process's memory only, about 5 MiB per partition.
 */
const EMBEDDED_PRODUCER: Config = { 'topic.metadata.refresh.interval.ms': 1000 };
const EMBEDDED_CONSUMER: Config = { 'fetch.wait.max.ms': 10, 'topic.metadata.refresh.interval.ms': 1000 };
const EMBEDDED_SESSION_TIMEOUT_MS = 3000;
const EMBEDDED_HEARTBEAT_INTERVAL_MS = 500;
/** The mock cluster names itself so (its Metadata ClusterId); how an embedded broker given as KAFKA_BROKERS is recognised. */
const MOCK_CLUSTER_ID = /^mockCluster/;

export interface EmbeddedBroker {
  /** `127.0.0.1:<port>[,...]`: any client or process (kcat too) connects to it over TCP. */
  bootstrap: string;
  brokers: number;
  /** Destroys the brokers and their data. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Hosts librdkafka's mock Kafka cluster in this process: a client created with `test.mock.num.brokers` starts that
 * many brokers on 127.0.0.1 (random ports) and lists them in its metadata. The brokers live as long as the client.
 */
export async function startEmbeddedBroker(options: { brokers?: number; log?: FastifyBaseLogger } = {}): Promise<EmbeddedBroker> {
  const brokers = options.brokers ?? 1;
  const host = new RdKafka.Producer({
    'test.mock.num.brokers': brokers,
    'client.id': 'plinth-embedded-broker',
  } as RdK.ProducerGlobalConfig);
  if (options.log) forwardLogs(host, options.log);
  const metadata = await connect(host, { allTopics: false, timeout: EMBEDDED_CONNECT_TIMEOUT_MS });
  const bootstrap = metadata.brokers
    .toSorted((a, b) => a.id - b.id)
    .map((broker) => `${broker.host}:${broker.port}`)
    .join(',');
  let stopping: Promise<void> | undefined;
  return {
    bootstrap,
    brokers,
    stop: () => (stopping ??= disconnect(host)),
  };
}

/** A message to send; `send()` copies it (the KafkaJS producer rewrites what it is given). */
export interface OutgoingMessage {
  key?: string | Buffer | null;
  value: string | Buffer | null;
  headers?: Record<string, string | Buffer>;
  partition?: number;
}

export interface ConsumerOptions {
  /** The consumer group; KAFKA_TOPIC_PREFIX is prepended like to topics, so test files sharing a cluster share no group. */
  groupId: string;
  /** Where a group without a committed offset starts: earliest (default) or latest. */
  fromBeginning?: boolean;
  /** KafkaJS semantics: offsets of messages whose handler resolved are committed every autoCommitIntervalMs. Default true. */
  autoCommit?: boolean;
  autoCommitIntervalMs?: number;
  /** Default 30 s, or 3 s against the embedded broker (its rebalances wait session timeout - 1 s). */
  sessionTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  /** Extra librdkafka properties (e.g. `js.consumer.max.batch.size`, `max.poll.interval.ms`); they win over ours. */
  config?: Config;
}

export interface KafkaOptions {
  settings: Settings;
  log: FastifyBaseLogger;
  /** Brokers to use instead of KAFKA_BROKERS. */
  bootstrap?: string;
  /**
   * true: the brokers are an embedded broker (librdkafka's mock cluster), and with no brokers given one is started
   * here and stopped by close(). false: a real cluster. Unset: recognised from the cluster id.
   */
  embedded?: boolean;
  /** How long send() waits for the broker before it rejects. */
  sendTimeoutMs?: number;
}

/** The `app.kafka` decorator: producer, consumer factory, topic provisioning and readiness for one cluster. */
export type KafkaAdapter = Awaited<ReturnType<typeof createKafka>>;

/**
 * Connects to Kafka (or starts an embedded broker) and returns the adapter once the producer is connected. Fails within
 * ~10 s with a message naming the brokers when they cannot be reached.
 */
export async function createKafka(options: KafkaOptions) {
  const { settings, log } = options;
  const cleanup: (() => Promise<unknown>)[] = [];
  const undo = async () => {
    for (const step of cleanup.reverse()) await step().catch(() => {});
  };

  let broker: EmbeddedBroker | undefined;
  let brokers = normaliseBrokers(options.bootstrap ?? settings.KAFKA_BROKERS ?? '');
  if (!brokers) {
    if (options.embedded !== true) throw new Error('Kafka: no brokers given (KAFKA_BROKERS is unset)');
    const started = await startEmbeddedBroker({ log });
    cleanup.push(() => started.stop());
    broker = started;
    brokers = started.bootstrap;
    log.warn(
      { brokers },
      `KAFKA_BROKERS is unset: embedded Kafka broker at ${brokers} (librdkafka mock cluster), in memory, hosted by this ` +
      'process only: its topics and offsets are lost when the process stops',
    );
  }

  const startTimeoutMs = 2 * settings.KAFKA_CONNECT_TIMEOUT_MS;
  try {
    return await withTimeout(
      connectClients(),
      startTimeoutMs,
      () => new Error(`Kafka is unreachable at ${brokers}: start-up did not finish within ${startTimeoutMs / 1000} s`),
    );
  } catch (error) {
    await undo();
    throw error;
  }

  async function connectClients() {
    const base: Config = { 'bootstrap.servers': brokers, 'client.id': settings.KAFKA_CLIENT_ID };
    // The embedded broker speaks plaintext only.
    const connection = { ...base, ...(options.embedded === true ? {} : securityConfig(settings)) };

    const { clusterId } = await probe(connection, brokers, settings.KAFKA_CONNECT_TIMEOUT_MS);
    const embedded = options.embedded ?? MOCK_CLUSTER_ID.test(clusterId ?? '');
    if (embedded && options.embedded === undefined) {
      log.info({ brokers }, 'kafka: these brokers are an embedded broker (librdkafka mock cluster): no admin API, embedded tuning');
    }

    const meta = new RdKafka.Producer({ ...connection, 'client.id': `${settings.KAFKA_CLIENT_ID}-meta` } as RdK.ProducerGlobalConfig);
    forwardLogs(meta, log);
    await connect(meta, { allTopics: false, timeout: settings.KAFKA_CONNECT_TIMEOUT_MS });
    cleanup.push(() => disconnect(meta));

    const client = new KafkaJS.Kafka({
      ...connection,
      kafkaJS: { logger: kafkaJsLogger(log), logLevel: KafkaJS.logLevel.WARN },
    } as KJS.CommonConstructorConfig);
    const producer = client.producer({
      ...(embedded ? EMBEDDED_PRODUCER : {}),
      // send() hands librdkafka a whole batch at once; 1 ms still groups concurrent sends, and adds ~1 ms to the ack
      // (librdkafka's default 5 ms made every acknowledgement wait ~5 ms).
      'linger.ms': 1,
      'message.timeout.ms': options.sendTimeoutMs ?? settings.KAFKA_SEND_TIMEOUT_MS,
      // Topics come from ensureTopics() (configured partitions and replication), not from a broker default,
      // except on the embedded broker, which has no other way to create them.
      'kafkaJS': { idempotent: true, allowAutoTopicCreation: embedded },
    } as KJS.ProducerConstructorConfig);
    cleanup.push(() => producer.disconnect());
    await producer.connect();

    return adapter({ settings, log, brokers, embedded, broker, meta, client, producer });
  }
}

function adapter(parts: {
  settings: Settings;
  log: FastifyBaseLogger;
  brokers: string;
  embedded: boolean;
  broker: EmbeddedBroker | undefined;
  meta: RdK.Producer;
  client: KJS.Kafka;
  producer: KJS.Producer;
}) {
  const { settings, log, brokers, embedded, broker, meta, client, producer } = parts;
  const prefix = settings.KAFKA_TOPIC_PREFIX;
  const requestTimeoutMs = settings.KAFKA_REQUEST_TIMEOUT_MS;
  const consumers = new Set<KJS.Consumer>();
  let admin: Promise<KJS.Admin> | undefined;
  let pinging: Promise<void> | undefined;
  let closing: Promise<void> | undefined;

  return {
    brokers,
    embedded,

    /** The real name of a topic: KAFKA_TOPIC_PREFIX + name. Every other method takes real names. */
    topic(name: string): string {
      return `${prefix}${name}`;
    },

    /** Sends to one topic (idempotent producer, acks=all); resolves when the broker has acknowledged every message. */
    async send(topic: string, messages: OutgoingMessage[]): Promise<KJS.RecordMetadata[]> {
      if (messages.length === 0) return [];
      return producer.send({
        topic,
        messages: messages.map((m) => ({
          key: m.key ?? null,
          value: m.value,
          ...(m.headers ? { headers: { ...m.headers } } : {}),
          ...(m.partition === undefined ? {} : { partition: m.partition }),
        })),
      });
    },

    /**
     * A KafkaJS consumer tuned for this cluster, not yet connected: `connect()`, `subscribe()` (after ensureTopics())
     * and `run()` it. close() disconnects the ones still connected.
     */
    createConsumer(options: ConsumerOptions): KJS.Consumer {
      const timing = embedded
        ? { sessionTimeout: EMBEDDED_SESSION_TIMEOUT_MS, heartbeatInterval: EMBEDDED_HEARTBEAT_INTERVAL_MS }
        : {};
      const consumer = client.consumer({
        ...(embedded ? EMBEDDED_CONSUMER : {}),
        ...options.config,
        kafkaJS: {
          groupId: `${prefix}${options.groupId}`,
          fromBeginning: options.fromBeginning ?? true,
          autoCommit: options.autoCommit ?? true,
          ...(options.autoCommitIntervalMs === undefined ? {} : { autoCommitInterval: options.autoCommitIntervalMs }),
          ...timing,
          ...(options.sessionTimeoutMs === undefined ? {} : { sessionTimeout: options.sessionTimeoutMs }),
          ...(options.heartbeatIntervalMs === undefined ? {} : { heartbeatInterval: options.heartbeatIntervalMs }),
          allowAutoTopicCreation: false,
        },
      } as KJS.ConsumerConstructorConfig);
      consumers.add(consumer);
      return consumer;
    },

    /**
     * Makes sure the topics exist before anyone subscribes. Real cluster: CreateTopics with KAFKA_TOPIC_PARTITIONS and
     * KAFKA_TOPIC_REPLICATION ("already exists" is fine). Embedded broker: a Metadata request per topic creates it.
     */
    async ensureTopics(names: string[]): Promise<void> {
      const topics = [...new Set(names)];
      if (embedded) {
        await Promise.all(topics.map(async (topic) => {
          const metadata = await getMetadata(meta, { topic, allTopics: false, timeout: requestTimeoutMs });
          if (!metadata.topics.find((t) => t.name === topic)?.partitions.length) {
            throw new Error(`Kafka: topic ${topic} was not created on the embedded broker at ${brokers}`);
          }
        }));
        return;
      }
      admin ??= (async () => {
        const created = producer.dependentAdmin();
        await created.connect();
        return created;
      })();
      try {
        await (await admin).createTopics({
          timeout: requestTimeoutMs,
          topics: topics.map((topic) => ({
            topic,
            numPartitions: settings.KAFKA_TOPIC_PARTITIONS,
            replicationFactor: settings.KAFKA_TOPIC_REPLICATION,
          })),
        });
      } catch (error) {
        const causes = (error as { errors?: { topic?: string; message: string }[] }).errors;
        const detail = causes?.map((e) => `${e.topic ?? '?'}: ${e.message}`).join('; ') ?? (error as Error).message;
        throw new Error(`Kafka: creating topics at ${brokers} failed: ${detail}`, { cause: error });
      }
      log.info({ topics }, 'kafka topics ensured');
    },

    /**
     * A partition's low and high watermarks (its first offset, and the offset the next message will get), asked of
     * the partition leader now (ListOffsets), so they are current even when no consumer fetches (paused, stuck).
     */
    watermarks(topic: string, partition: number, timeoutMs = requestTimeoutMs): Promise<{ low: number; high: number }> {
      return new Promise((resolve, reject) => {
        meta.queryWatermarkOffsets(topic, partition, timeoutMs, (error, offsets) =>
          error ? reject(error) : resolve({ low: offsets.lowOffset, high: offsets.highOffset }));
      });
    },

    /** The partition ids of a topic, from a Metadata request now; none when the topic does not exist. */
    async partitions(topic: string): Promise<number[]> {
      const metadata = await getMetadata(meta, { topic, allTopics: false, timeout: requestTimeoutMs });
      return (metadata.topics.find((t) => t.name === topic)?.partitions ?? []).map((p) => p.id).sort((a, b) => a - b);
    },

    /** Readiness: one Metadata request with a short timeout (concurrent calls share it). */
    ping(): Promise<void> {
      pinging ??= getMetadata(meta, { allTopics: false, timeout: PING_TIMEOUT_MS })
        .then(() => undefined)
        .finally(() => {
          pinging = undefined;
        });
      return pinging;
    },

    /** Disconnects the consumers still connected, flushes and disconnects the producer, stops an owned broker. */
    close(): Promise<void> {
      closing ??= (async () => {
        await Promise.allSettled([...consumers].map((c) => c.disconnect()));
        if (admin) await admin.then((a) => a.disconnect()).catch(() => {});
        await producer.flush({ timeout: 5000 }).catch((error: Error) => {
          log.warn({ err: error }, 'kafka: unsent messages dropped at close');
        });
        await producer.disconnect().catch(() => {});
        await disconnect(meta);
        await broker?.stop();
      })();
      return closing;
    },
  };
}

/** librdkafka properties for TLS and SASL from the settings. */
export function securityConfig(settings: Settings): Config {
  const sasl = settings.KAFKA_SASL_MECHANISM;
  const protocol = settings.KAFKA_SSL ? (sasl ? 'sasl_ssl' : 'ssl') : (sasl ? 'sasl_plaintext' : 'plaintext');
  return {
    'security.protocol': protocol,
    ...(sasl
      ? {
          'sasl.mechanism': sasl.toUpperCase(),
          'sasl.username': settings.KAFKA_SASL_USERNAME ?? '',
          'sasl.password': settings.KAFKA_SASL_PASSWORD ?? '',
        }
      : {}),
  };
}

function normaliseBrokers(list: string): string {
  return list.split(',').map((b) => b.trim()).filter(Boolean).join(',');
}

/**
 * The first contact: a short-lived client whose Metadata request proves the brokers answer (or yields an error naming
 * them and librdkafka's reason), and whose debug log carries the cluster id, the only sign of a mock cluster.
 */
async function probe(connection: Config, brokers: string, timeoutMs: number): Promise<{ clusterId?: string }> {
  const client = new RdKafka.Producer({
    ...connection,
    'client.id': `${String(connection['client.id'])}-probe`,
    'debug': 'metadata',
  } as RdK.ProducerGlobalConfig);
  let clusterId: string | undefined;
  let lastError: string | undefined;
  let seen: () => void = () => {};
  const clusterIdSeen = new Promise<void>((resolve) => {
    seen = resolve;
  });
  client.on('event.log', (entry: { severity: number; message: string }) => {
    const match = /ClusterId: ([^,\s]+)/.exec(entry.message);
    if (match) {
      clusterId = match[1];
      seen();
    }
    if (entry.severity <= 3) {
      lastError = entry.message.replace(/^\[thrd:[^\]]*\]: /, '').replace(/, \d+ identical error\(s\) suppressed/, '');
    }
  });
  client.on('event.error', () => {});
  try {
    await connect(client, { allTopics: false, timeout: timeoutMs });
  } catch (error) {
    throw new Error(`Kafka is unreachable at ${brokers}: ${lastError ?? (error as Error).message}`, { cause: error });
  }
  try {
    // The log line travels on another queue than the connect callback and may arrive just after it.
    await withTimeout(clusterIdSeen, 250, () => new Error('no cluster id')).catch(() => {});
  } finally {
    await disconnect(client);
  }
  return clusterId === undefined ? {} : { clusterId };
}

function connect(client: RdK.Producer, options: RdK.MetadataOptions): Promise<RdK.Metadata> {
  return new Promise((resolve, reject) => {
    client.connect(options, (error, metadata) => (error ? reject(error) : resolve(metadata)));
  });
}

function getMetadata(client: RdK.Producer, options: RdK.MetadataOptions): Promise<RdK.Metadata> {
  return new Promise((resolve, reject) => {
    client.getMetadata(options, (error, metadata) => (error ? reject(error) : resolve(metadata)));
  });
}

/** Disconnects a librdkafka-style client; a failed connect leaves it disconnected already (and disconnect would throw). */
function disconnect(client: RdK.Producer): Promise<void> {
  if (!client.isConnected()) return Promise.resolve();
  return new Promise((resolve) => {
    client.disconnect(2000, () => resolve());
  });
}

function forwardLogs(client: RdK.Producer, log: FastifyBaseLogger): void {
  client.on('event.log', (entry: { severity: number; fac: string; message: string; name: string }) => {
    const fields = { kafka: { client: entry.name, fac: entry.fac } };
    if (entry.severity <= 4) log.warn(fields, entry.message);
    else log.trace(fields, entry.message);
  });
  // Errors are logged through event.log as well; the listener keeps them from going anywhere else.
  client.on('event.error', () => {});
}

/** Routes the KafkaJS clients' logs into the app's logger (librdkafka's info lines go to debug). */
function kafkaJsLogger(log: FastifyBaseLogger): KJS.Logger {
  const fields = (extra?: object) => {
    const { name, fac } = (extra ?? {}) as { name?: string; fac?: string };
    return { kafka: { client: name, fac } };
  };
  const logger: KJS.Logger = {
    error: (message, extra) => log.error(fields(extra), message),
    warn: (message, extra) => log.warn(fields(extra), message),
    info: (message, extra) => log.debug(fields(extra), message),
    debug: (message, extra) => log.trace(fields(extra), message),
    namespace: () => logger,
    setLogLevel: () => {},
  };
  return logger;
}

async function withTimeout<T>(promise: Promise<T>, ms: number, error: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(error()), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Kafka producer, consumer factory and topic provisioning; an embedded broker when KAFKA_BROKERS is unset in local/test. */
    kafka: KafkaAdapter;
  }
}

export default fp(
  async (app: FastifyInstance) => {
    if (app.hasDecorator('kafka')) throw new Error('the kafka plugin is already registered');
    const settings: Settings = app.settings;
    if (!settings.KAFKA_BROKERS && !isEmbeddedAllowed(settings)) {
      throw new Error(`KAFKA_BROKERS is required when APP_ENV=${settings.APP_ENV}`);
    }
    const kafka = await createKafka({ settings, log: app.log, ...(settings.KAFKA_BROKERS ? {} : { embedded: true }) });
    app.decorate('kafka', kafka);
    app.health.add('kafka', () => kafka.ping());
    app.addHook('onClose', () => kafka.close());
    app.log.info({ brokers: kafka.brokers, embedded: kafka.embedded }, 'kafka ready');
  },
  { name: 'kafka', dependencies: ['settings', 'health'], fastify: '5.x' },
);
