import type { AppEnv, Settings } from './schema.js';

type Layer = Partial<Settings>;

/** Values shared by every environment; the per-environment layers below override them. */
export const base: Layer = {
  SERVICE_NAME: 'plinth',
  HOST: '0.0.0.0',
  PORT: 3000,
  WORKER_PORT: 3001,
  LOG_LEVEL: 'info',
  LOG_FORMAT: 'json',
  TRUST_PROXY: false,
  BODY_LIMIT: 1_048_576,
  CORS_ORIGINS: '',
  DOCS_ENABLED: true,
  SHUTDOWN_GRACE_MS: 10_000,
  DATABASE_POOL_MAX: 10,
  DATABASE_CONNECT_TIMEOUT_MS: 5000,
  DATABASE_STATEMENT_TIMEOUT_MS: 5000,
  DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS: 30_000,
  PGLITE_DATA_DIR: './data/pglite',
  DB_MIGRATE_ON_START: false,
  REDIS_PREFIX: 'plinth:',
  REDIS_CONNECT_TIMEOUT_MS: 2000,
  REDIS_COMMAND_TIMEOUT_MS: 1000,
  KAFKA_CLIENT_ID: 'plinth',
  KAFKA_TOPIC_PREFIX: '',
  KAFKA_TOPIC_PARTITIONS: 4,
  KAFKA_TOPIC_REPLICATION: 1,
  KAFKA_SSL: false,
  KAFKA_CONNECT_TIMEOUT_MS: 5000,
  KAFKA_REQUEST_TIMEOUT_MS: 5000,
  KAFKA_SEND_TIMEOUT_MS: 10_000,
  OUTBOX_POLL_MS: 500,
  OUTBOX_BATCH_SIZE: 500,
  OUTBOX_BACKLOG_DEGRADED: 10_000,
  CONSUMERS_IN_API: false,
  CONSUMER_MAX_ATTEMPTS: 5,
  CONSUMER_RETRY_BASE_MS: 200,
  CONSUMER_COMMIT_INTERVAL_MS: 1000,
  CONSUMER_CONCURRENCY: 2,
  JWT_ALGORITHM: 'HS256',
  JWT_ISSUER: 'plinth',
  ACCESS_TOKEN_TTL_S: 900,
  REFRESH_TOKEN_TTL_S: 30 * 24 * 3600,
  REVOCATION_SYNC_MS: 5000,
  FLAGS_RESYNC_MS: 5000,
  RATE_LIMIT_MAX: 1000,
  RATE_LIMIT_WINDOW_MS: 60_000,
  LOGIN_RATE_LIMIT_MAX: 20,
  LOGIN_MAX_FAILURES: 5,
  LOGIN_FAILURE_WINDOW_S: 900,
};

// Development secret: long enough for HS256, never accepted outside local/test (no default there).
const DEV_JWT_SECRET = 'plinth-local-development-secret-do-not-deploy';

export const overrides: Record<AppEnv, Layer> = {
  local: {
    HOST: '127.0.0.1',
    CONSUMERS_IN_API: true,
    LOG_LEVEL: 'info',
    LOG_FORMAT: 'pretty',
    CORS_ORIGINS: '*',
    DB_MIGRATE_ON_START: true,
    JWT_SECRET: DEV_JWT_SECRET,
  },
  test: {
    HOST: '127.0.0.1',
    PORT: 0,
    WORKER_PORT: 0,
    LOG_LEVEL: 'silent',
    PGLITE_DATA_DIR: 'memory://',
    DB_MIGRATE_ON_START: true,
    JWT_SECRET: DEV_JWT_SECRET,
    RATE_LIMIT_MAX: 0,
    // Tests log in many users from one address; the ones about this limit set it themselves.
    LOGIN_RATE_LIMIT_MAX: 10_000,
    OUTBOX_POLL_MS: 50,
    CONSUMER_RETRY_BASE_MS: 20,
    CONSUMER_COMMIT_INTERVAL_MS: 100,
    REVOCATION_SYNC_MS: 1000,
  },
  staging: {
    TRUST_PROXY: true,
  },
  production: {
    TRUST_PROXY: true,
    KAFKA_TOPIC_PARTITIONS: 6,
    KAFKA_TOPIC_REPLICATION: 3,
    DOCS_ENABLED: false,
    LOG_LEVEL: 'info',
  },
};

/** Settings that have no default in staging/production: the deployment must provide them. */
export const requiredWhenDeployed = ['DATABASE_URL', 'REDIS_URL', 'KAFKA_BROKERS'] as const;
