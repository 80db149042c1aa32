import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import fp from 'fastify-plugin';
import {
  APPLICATION_NAME_MAX,
  connectPglite,
  connectPostgres,
  type DatabaseConnection,
  type Db,
  type PoolMonitor,
  safeUrl,
} from './adapter/postgres.js';
import { isEmbeddedAllowed, type Settings } from './settings/index.js';

export type { Db, Executor } from './adapter/postgres.js';

export const migrationsFolder = fileURLToPath(new URL('../../drizzle', import.meta.url));

let pools = 0;

/**
 * `<service>:<host>:<pid>` (and `:<n>` for a second pool in the same process, as in tests): unique per pool, so
 * pg_stat_activity tells which connections are this pool's (pool metrics; finding a process's sessions), and
 * within PostgreSQL's 63 bytes (the host name is shortened when needed, never the pid).
 */
export function applicationName(service: string, host = hostname(), pid = process.pid, nth = 1): string {
  const tail = `:${pid}${nth > 1 ? `:${nth}` : ''}`;
  const room = Math.max(0, APPLICATION_NAME_MAX - tail.length - service.length - 1);
  return `${service}:${host.replace(/[^\x20-\x7e]/g, '?').slice(0, room)}${tail}`.slice(-APPLICATION_NAME_MAX);
}

/** Opens the configured database: PostgreSQL when DATABASE_URL is set, embedded PGlite otherwise. */
export async function openDatabase(settings: Settings): Promise<DatabaseConnection> {
  if (settings.DATABASE_URL) {
    pools += 1;
    return connectPostgres({
      url: settings.DATABASE_URL,
      poolMax: settings.DATABASE_POOL_MAX,
      applicationName: applicationName(settings.SERVICE_NAME, hostname(), process.pid, pools),
      connectTimeoutMs: settings.DATABASE_CONNECT_TIMEOUT_MS,
      statementTimeoutMs: settings.DATABASE_STATEMENT_TIMEOUT_MS,
      idleInTransactionTimeoutMs: settings.DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS,
    });
  }
  if (!isEmbeddedAllowed(settings)) {
    // loadSettings already refuses this; kept so the plugin is safe with hand-built settings too.
    throw new Error(`DATABASE_URL is required when APP_ENV=${settings.APP_ENV}`);
  }
  return connectPglite(settings.PGLITE_DATA_DIR);
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Drizzle over postgres.js or PGlite. `app.db.transaction(async (tx) => ...)` is the transaction helper. */
    db: Db;
    dbKind: DatabaseConnection['kind'];
    /** Pool statistics for /metrics; null on PGlite, which has no pool. */
    dbPool: PoolMonitor | null;
  }
}

export default fp(
  async (app) => {
    const { settings } = app;
    const started = performance.now();
    const connection = await openDatabase(settings);
    app.addHook('onClose', () => connection.close());
    if (settings.DB_MIGRATE_ON_START) await connection.migrate(migrationsFolder);
    const where = settings.DATABASE_URL ? safeUrl(settings.DATABASE_URL) : `embedded PGlite (${settings.PGLITE_DATA_DIR})`;
    app.log.info(
      { database: connection.kind, migrated: settings.DB_MIGRATE_ON_START, ms: Math.round(performance.now() - started) },
      `database ready: ${where}`,
    );

    app.decorate('db', connection.db);
    app.decorate('dbKind', connection.kind);
    app.decorate('dbPool', connection.pool ?? null);
    app.health.add('db', () => connection.ping());
  },
  { name: 'database', dependencies: ['settings', 'health'], fastify: '5.x' },
);
