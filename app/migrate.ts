// `npm run db:migrate`: applies the committed SQL migrations in drizzle/ to the database of DATABASE_URL
// (or the embedded PGlite folder in local). The one migration command deployments run, before the new
// version starts. Safe to run from several places at once: migrations are serialised by an advisory lock.
import { migrationsFolder, openDatabase } from './core/database.js';
import { safeUrl } from './core/adapter/postgres.js';
import { loadSettingsOrExit } from './core/settings/index.js';

const settings = loadSettingsOrExit();
const where = settings.DATABASE_URL ? safeUrl(settings.DATABASE_URL) : `embedded PGlite (${settings.PGLITE_DATA_DIR})`;
const started = performance.now();
try {
  const connection = await openDatabase(settings);
  try {
    await connection.migrate(migrationsFolder);
  } finally {
    await connection.close();
  }
  process.stdout.write(`db:migrate: ${where} is up to date (${Math.round(performance.now() - started)} ms)\n`);
} catch (error) {
  process.stderr.write(`db:migrate: failed on ${where}: ${(error as Error).message}\n`);
  process.exit(1);
}
