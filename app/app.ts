import { fileURLToPath } from 'node:url';
import autoload from '@fastify/autoload';
import closeWithGrace from 'close-with-grace';
import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import fp from 'fastify-plugin';
import kafka from './core/adapter/kafka.js';
import pubsub from './core/adapter/pubsub.js';
import redis from './core/adapter/redis.js';
import database from './core/database.js';
import docs from './core/docs.js';
import health from './core/health.js';
import metrics from './core/metrics.js';
import http, { frameworkError, OneLineLogController, requestChildLogger, requestIdFrom } from './core/http.js';
import security from './core/security/index.js';
import cache from './core/service/cache.js';
import consumers from './core/service/consumers/index.js';
import flags from './core/service/flags/index.js';
import mutex from './core/service/mutex.js';
import outbox from './core/service/outbox/index.js';
import type { Settings } from './core/settings/index.js';
import settingsPlugin from './core/settings/plugin.js';
import { entities } from './entities.js';

/** Fastify server options for these settings. main.ts and the tests use the same ones. */
export function serverOptions(settings: Settings): FastifyServerOptions {
  return {
    logger: {
      level: settings.LOG_LEVEL,
      base: { service: settings.SERVICE_NAME, env: settings.APP_ENV },
      // Pretty printing runs in pino's worker thread and only when asked for (local); JSON goes straight to stdout.
      ...(settings.LOG_FORMAT === 'pretty'
        ? { transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,service,env' } } }
        : {}),
      redact: {
        paths: [
          'req.headers.authorization',
          'req.headers.cookie',
          // Explicit paths: wildcard paths (`*.password`) make pino walk every logged object, which cost ~25% of
          // a trivial route's throughput in `npm run bench`. Nothing here logs bodies; these guard the usual slips.
          'body.password',
          'body.refreshToken',
          'body.accessToken',
          'user.passwordHash',
        ],
        censor: '[redacted]',
      },
    },
    logController: new OneLineLogController(),
    // Every line of a request carries requestId and correlationId.
    childLoggerFactory: requestChildLogger,
    genReqId: requestIdFrom,
    requestIdHeader: false,
    bodyLimit: settings.BODY_LIMIT,
    trustProxy: settings.TRUST_PROXY,
    // While closing, http.ts answers new requests with an api.md 503 (Fastify's own 503 has another body shape).
    return503OnClosing: false,
    frameworkErrors: frameworkError,
    // Embedded PostgreSQL (PGlite) starts and migrates in a few seconds, longer on a busy machine;
    // a dead dependency still fails fast through its own connect timeout.
    pluginTimeout: 60_000,
    forceCloseConnections: 'idle',
  };
}

/**
 * For entry points: on SIGTERM/SIGINT (or an uncaught error) close the app, which lets in-flight
 * requests and messages finish, within SHUTDOWN_GRACE_MS.
 */
export function closeOnSignals(instance: FastifyInstance, settings: Settings, what: string) {
  closeWithGrace({ delay: settings.SHUTDOWN_GRACE_MS }, async ({ signal, err }) => {
    if (err) instance.log.error({ err, process: what }, 'shutting down after an unexpected error');
    else instance.log.info({ signal, process: what }, 'shutting down: finishing in-flight work');
    await instance.close();
  });
}

// @fastify/autoload only loads .ts files when told so; running from source (tsx, tap) needs it.
if (import.meta.url.endsWith('.ts')) process.env.FASTIFY_AUTOLOAD_TYPESCRIPT ??= '1';

/**
 * The whole service as one plugin, in the order design.md gives: core adapters (awaited, so a dead
 * dependency fails start-up), core services and security, entities, then the autoloaded endpoints.
 */
export interface AppOptions {
  settings: Settings;
  /** `api` (default): HTTP routes, plus the consumers when the broker is embedded. `worker`: consumers, no routes. */
  role?: 'api' | 'worker';
}

export async function app(instance: FastifyInstance, opts: AppOptions) {
  const { settings } = opts;
  const role = opts.role ?? 'api';
  await instance.register(settingsPlugin, { settings });
  await instance.register(http);
  await instance.register(metrics);
  // Docs first: swagger only sees routes added after it.
  if (role === 'api') await instance.register(docs);
  await instance.register(health);

  await instance.register(database);
  await instance.register(redis);
  await instance.register(pubsub);
  await instance.register(kafka);

  await instance.register(cache);
  await instance.register(mutex);
  await instance.register(security);
  await instance.register(flags);
  await instance.register(outbox);

  // In the order app/entities.ts lists them; `npm run gen:entity` adds new entities there.
  for (const entity of entities) await instance.register(entity);

  // With KAFKA_BROKERS set the consumers run in `npm run worker`; with the embedded broker of
  // `npm start` they run here, so one process is the whole system.
  if (role === 'worker' || (!settings.KAFKA_BROKERS && settings.CONSUMERS_IN_API)) {
    await instance.register(consumers);
  }
  if (role === 'worker') return;

  await instance.register(autoload, {
    dir: fileURLToPath(new URL('./endpoints/v1', import.meta.url)),
    options: { prefix: '/v1' },
    ignorePattern: /\.d\.ts$|\.map$/,
  });
}

export default fp(app, { name: 'plinth', fastify: '5.x' });
