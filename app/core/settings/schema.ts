import Type, { type Static } from 'typebox';

export const AppEnvs = ['local', 'test', 'staging', 'production'] as const;
export type AppEnv = (typeof AppEnvs)[number];

/**
 * Every setting of the service, in one schema. Values come from the environment (strings) and are
 * converted to the declared types before validation; see ./index.ts.
 */
export const SettingsSchema = Type.Object({
  APP_ENV: Type.Enum(AppEnvs),
  SERVICE_NAME: Type.String({ minLength: 1, pattern: '^[a-z][a-z0-9-]*$' }),
  HOST: Type.String({ minLength: 1 }),
  PORT: Type.Integer({ minimum: 0, maximum: 65535 }),
  LOG_LEVEL: Type.Enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
  TRUST_PROXY: Type.Boolean(),
  BODY_LIMIT: Type.Integer({ minimum: 1024 }),
  CORS_ORIGINS: Type.String({ description: 'comma-separated allowed origins, or * for any' }),
  DOCS_ENABLED: Type.Boolean(),
  SHUTDOWN_GRACE_MS: Type.Integer({ minimum: 0 }),

  DATABASE_URL: Type.Optional(Type.String({ pattern: '^postgres(ql)?://' })),
  DATABASE_POOL_MAX: Type.Integer({ minimum: 1, maximum: 500 }),
  PGLITE_DATA_DIR: Type.String({ minLength: 1, description: 'embedded PostgreSQL folder, or memory://' }),
  DB_MIGRATE_ON_START: Type.Boolean(),

  REDIS_URL: Type.Optional(Type.String({ pattern: '^rediss?://' })),
  REDIS_PREFIX: Type.String({ pattern: '^[A-Za-z0-9:._-]*$' }),

  KAFKA_BROKERS: Type.Optional(Type.String({ minLength: 1, description: 'comma-separated host:port list' })),
  KAFKA_CLIENT_ID: Type.String({ minLength: 1 }),
  KAFKA_TOPIC_PREFIX: Type.String({ pattern: '^[A-Za-z0-9._-]*$', description: 'prefix of every topic name (tests isolate with it)' }),
  KAFKA_TOPIC_PARTITIONS: Type.Integer({ minimum: 1, maximum: 1000 }),
  KAFKA_TOPIC_REPLICATION: Type.Integer({ minimum: 1, maximum: 10 }),
  KAFKA_SSL: Type.Boolean(),
  KAFKA_SASL_MECHANISM: Type.Optional(Type.Enum(['plain', 'scram-sha-256', 'scram-sha-512'])),
  KAFKA_SASL_USERNAME: Type.Optional(Type.String({ minLength: 1 })),
  KAFKA_SASL_PASSWORD: Type.Optional(Type.String({ minLength: 1 })),
  OUTBOX_POLL_MS: Type.Integer({ minimum: 10, description: 'how often the relay looks for events nobody woke it for' }),
  OUTBOX_BATCH_SIZE: Type.Integer({ minimum: 1, maximum: 10_000 }),
  CONSUMERS_IN_API: Type.Boolean({ description: 'with the embedded broker only: run the consumers inside the API process' }),
  CONSUMER_MAX_ATTEMPTS: Type.Integer({ minimum: 1, maximum: 100 }),
  CONSUMER_RETRY_BASE_MS: Type.Integer({ minimum: 1 }),

  JWT_ALGORITHM: Type.Enum(['HS256', 'RS256', 'ES256']),
  JWT_SECRET: Type.Optional(Type.String({ minLength: 32 })),
  JWT_PRIVATE_KEY: Type.Optional(Type.String({ minLength: 1 })),
  JWT_PUBLIC_KEY: Type.Optional(Type.String({ minLength: 1 })),
  JWT_ISSUER: Type.String({ minLength: 1 }),
  ACCESS_TOKEN_TTL_S: Type.Integer({ minimum: 30, maximum: 86_400 }),
  REFRESH_TOKEN_TTL_S: Type.Integer({ minimum: 60 }),
  REVOCATION_SYNC_MS: Type.Integer({ minimum: 100 }),
  FLAGS_RESYNC_MS: Type.Integer({ minimum: 100, description: 'safety-net reload of feature flags' }),

  RATE_LIMIT_MAX: Type.Integer({ minimum: 0, description: 'requests per window per client address; 0 turns it off' }),
  RATE_LIMIT_WINDOW_MS: Type.Integer({ minimum: 1000 }),
  LOGIN_RATE_LIMIT_MAX: Type.Integer({ minimum: 1 }),
  LOGIN_MAX_FAILURES: Type.Integer({ minimum: 1 }),
  LOGIN_FAILURE_WINDOW_S: Type.Integer({ minimum: 1 }),

  SEED_ADMIN_EMAIL: Type.Optional(Type.String({ format: 'email' })),
  SEED_ADMIN_PASSWORD: Type.Optional(Type.String({ minLength: 8, maxLength: 128 })),
});

export type Settings = Static<typeof SettingsSchema>;
export type SettingName = keyof Settings;
