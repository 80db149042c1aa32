import { fileURLToPath } from 'node:url';
import fp from 'fastify-plugin';
import { connectPglite, connectPostgres, type DatabaseConnection, type Db, safeUrl } from './adapter/postgres.js';
import { isEmbeddedAllowed, type Settings } from './settings/index.js';

export type { Db, Executor } from './adapter/postgres.js';

export const migrationsFolder = fileURLToPath(new URL('../../drizzle', import.meta.url));

/** Opens the configured database: PostgreSQL when DATABASE_URL is set, embedded PGlite otherwise. */
export async function openDatabase(settings: Settings): Promise<DatabaseConnection> {
  if (settings.DATABASE_URL) {
    return connectPostgres({
      url: settings.DATABASE_URL,
      poolMax: settings.DATABASE_POOL_MAX,
      applicationName: settings.SERVICE_NAME,
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
    app.health.add('db', () => connection.ping());
  },
  { name: 'database', dependencies: ['settings', 'health'], fastify: '5.x' },
);
