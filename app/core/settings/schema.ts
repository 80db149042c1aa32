import Type, { type Static } from 'typebox';

export const AppEnvs = ['local', 'test', 'staging', 'production'] as const;
export type AppEnv = (typeof AppEnvs)[number];

/**
 * Every setting of the service, in one schema. Values come from the environment (strings) and are
 * converted to the declared types before validation; see ./index.ts.
 */
export const SettingsSchema = Type.Object({
  APP_ENV: Type.Enum(AppEnvs, { description: 'which layer of defaults applies; staging/production never fall back to embedded services' }),
  SERVICE_NAME: Type.String({ minLength: 1, pattern: '^[a-z][a-z0-9-]*$', description: 'names the service in logs, metrics and the PostgreSQL application_name' }),
  HOST: Type.String({ minLength: 1, description: 'address the HTTP server listens on' }),
  PORT: Type.Integer({ minimum: 0, maximum: 65535, description: 'HTTP port (0 = any free port)' }),
  WORKER_PORT: Type.Integer({ minimum: 0, maximum: 65535, description: 'port of the worker process for /health/live, /health/ready and /metrics (0 = any free port)' }),
  LOG_LEVEL: Type.Enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], { description: 'pino log level' }),
  LOG_FORMAT: Type.Enum(['json', 'pretty'], { description: 'json: one JSON object a line (log collectors); pretty: coloured lines for a terminal (pino-pretty)' }),
  TRUST_PROXY: Type.Boolean({ description: 'honour X-Forwarded-For for the client address (behind a load balancer)' }),
  BODY_LIMIT: Type.Integer({ minimum: 1024, description: 'largest request body in bytes; larger bodies get 413' }),
  CORS_ORIGINS: Type.String({ description: 'comma-separated allowed origins, or * for any' }),
  DOCS_ENABLED: Type.Boolean({ description: 'serve /docs, /docs/json and /docs/asyncapi.json' }),
  SHUTDOWN_GRACE_MS: Type.Integer({ minimum: 0, description: 'on SIGTERM/SIGINT, how long in-flight requests and messages get to finish' }),

  DATABASE_URL: Type.Optional(Type.String({ pattern: '^postgres(ql)?://', description: 'PostgreSQL URL; unset in local/test → embedded PGlite' })),
  DATABASE_POOL_MAX: Type.Integer({ minimum: 1, maximum: 500, description: 'postgres.js connections per process' }),
  DATABASE_CONNECT_TIMEOUT_MS: Type.Integer({ minimum: 100, description: 'opening a PostgreSQL connection fails after this; the request gets 503 DATABASE_UNAVAILABLE' }),
  DATABASE_STATEMENT_TIMEOUT_MS: Type.Integer({ minimum: 100, description: 'bound on one query, waiting for a pooled connection included (server statement_timeout + the same deadline in the client); past it 503 DATABASE_UNAVAILABLE' }),
  DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS: Type.Integer({ minimum: 1000, description: 'PostgreSQL ends a session whose transaction sits idle this long (a stuck holder of row locks); the outbox relay raises it for its publish' }),
  PGLITE_DATA_DIR: Type.String({ minLength: 1, description: 'embedded PostgreSQL folder, or memory://' }),
  DB_MIGRATE_ON_START: Type.Boolean({ description: 'apply migrations at start; deployments run `npm run db:migrate` instead' }),

  REDIS_URL: Type.Optional(Type.String({ pattern: '^rediss?://', description: 'Redis URL; unset in local/test → in-process stand-ins (one instance only)' })),
  REDIS_PREFIX: Type.String({ pattern: '^[A-Za-z0-9:._-]*$', description: 'prefix of every Redis key and pub/sub channel' }),
  REDIS_CONNECT_TIMEOUT_MS: Type.Integer({ minimum: 100, description: 'opening a Redis connection fails after this (start-up and every reconnect)' }),
  REDIS_COMMAND_TIMEOUT_MS: Type.Integer({ minimum: 10, description: 'bound on every Redis command, queued ones included; a connection that leaves commands unanswered for 3x this is dropped and reopened' }),

  KAFKA_BROKERS: Type.Optional(Type.String({ minLength: 1, description: 'comma-separated host:port list' })),
  KAFKA_CLIENT_ID: Type.String({ minLength: 1, description: 'Kafka client id and consumer-group prefix' }),
  KAFKA_TOPIC_PREFIX: Type.String({ pattern: '^[A-Za-z0-9._-]*$', description: 'prefix of every topic name (tests isolate with it)' }),
  KAFKA_TOPIC_PARTITIONS: Type.Integer({ minimum: 1, maximum: 1000, description: 'partitions per topic created by `npm run kafka:topics` (the most worker replicas that get work)' }),
  KAFKA_TOPIC_REPLICATION: Type.Integer({ minimum: 1, maximum: 10, description: 'replication factor of created topics' }),
  KAFKA_SSL: Type.Boolean({ description: 'TLS to the brokers (managed clusters)' }),
  KAFKA_SASL_MECHANISM: Type.Optional(Type.Enum(['plain', 'scram-sha-256', 'scram-sha-512'], { description: 'SASL authentication to the brokers' })),
  KAFKA_SASL_USERNAME: Type.Optional(Type.String({ minLength: 1, description: 'SASL user (with KAFKA_SASL_MECHANISM)' })),
  KAFKA_SASL_PASSWORD: Type.Optional(Type.String({ minLength: 1, description: 'SASL password (with KAFKA_SASL_MECHANISM)' })),
  KAFKA_CONNECT_TIMEOUT_MS: Type.Integer({ minimum: 100, description: 'first contact with the brokers; start-up fails after twice this' }),
  KAFKA_REQUEST_TIMEOUT_MS: Type.Integer({ minimum: 100, description: 'bound on metadata and admin requests (topic creation)' }),
  KAFKA_SEND_TIMEOUT_MS: Type.Integer({ minimum: 100, description: 'a produced message not acknowledged within this fails (librdkafka message.timeout.ms); the outbox relay retries its batch later' }),
  OUTBOX_POLL_MS: Type.Integer({ minimum: 10, description: 'how often the relay looks for events nobody woke it for' }),
  OUTBOX_BATCH_SIZE: Type.Integer({ minimum: 1, maximum: 10_000, description: 'events the relay claims per batch' }),
  OUTBOX_BACKLOG_DEGRADED: Type.Integer({ minimum: 0, description: 'readiness is degraded (503, checks.outbox down) while more events than this wait to be published; 0 = never' }),
  CONSUMERS_IN_API: Type.Boolean({ description: 'with the embedded broker only: run the consumers inside the API process' }),
  CONSUMER_MAX_ATTEMPTS: Type.Integer({ minimum: 1, maximum: 100, description: 'handler attempts (doubling delay) before a message goes to the DLQ' }),
  CONSUMER_RETRY_BASE_MS: Type.Integer({ minimum: 1, description: 'first retry delay of a failing handler' }),
  CONSUMER_COMMIT_INTERVAL_MS: Type.Integer({ minimum: 10, maximum: 60_000, description: 'how often offsets of handled messages are committed; after a crash up to this much is redelivered (and deduped)' }),
  CONSUMER_CONCURRENCY: Type.Integer({ minimum: 1, maximum: 64, description: 'partitions of one consumer handled at once (order holds within a partition); each holds a database connection while it works' }),

  JWT_ALGORITHM: Type.Enum(['HS256', 'RS256', 'ES256'], { description: 'HS256 uses JWT_SECRET; RS256/ES256 use JWT_PRIVATE_KEY + JWT_PUBLIC_KEY' }),
  JWT_SECRET: Type.Optional(Type.String({ minLength: 32, description: 'HS256 signing secret; required in staging/production with HS256' })),
  JWT_PRIVATE_KEY: Type.Optional(Type.String({ minLength: 1, description: 'PEM private key for RS256/ES256 (\\n escapes allowed)' })),
  JWT_PUBLIC_KEY: Type.Optional(Type.String({ minLength: 1, description: 'PEM public key for RS256/ES256' })),
  JWT_ISSUER: Type.String({ minLength: 1, description: '`iss` of issued access tokens, checked on every request' }),
  ACCESS_TOKEN_TTL_S: Type.Integer({ minimum: 30, maximum: 86_400, description: 'access-token lifetime in seconds' }),
  REFRESH_TOKEN_TTL_S: Type.Integer({ minimum: 60, description: 'refresh-token (session) lifetime in seconds' }),
  REVOCATION_SYNC_MS: Type.Integer({ minimum: 100, description: 'safety-net re-read of revoked sessions (pub/sub announces them at once)' }),
  FLAGS_RESYNC_MS: Type.Integer({ minimum: 100, description: 'safety-net reload of feature flags' }),

  RATE_LIMIT_MAX: Type.Integer({ minimum: 0, description: 'requests per window per client address; 0 turns it off' }),
  RATE_LIMIT_WINDOW_MS: Type.Integer({ minimum: 1000, description: 'window of RATE_LIMIT_MAX' }),
  LOGIN_RATE_LIMIT_MAX: Type.Integer({ minimum: 1, description: 'login attempts per minute per client address' }),
  LOGIN_MAX_FAILURES: Type.Integer({ minimum: 1, description: 'failed logins per (email, address) before 429 TOO_MANY_ATTEMPTS' }),
  LOGIN_FAILURE_WINDOW_S: Type.Integer({ minimum: 1, description: 'window of LOGIN_MAX_FAILURES' }),

  SEED_ADMIN_EMAIL: Type.Optional(Type.String({ format: 'email', description: 'with SEED_ADMIN_PASSWORD: start-up and `npm run seed` make sure this admin exists' })),
  SEED_ADMIN_PASSWORD: Type.Optional(Type.String({ minLength: 8, maxLength: 128, description: 'password of SEED_ADMIN_EMAIL (8..128 characters)' })),
});

export type Settings = Static<typeof SettingsSchema>;
export type SettingName = keyof Settings;
