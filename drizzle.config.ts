import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { defineConfig } from 'drizzle-kit';
import { loadSettings } from './app/core/settings/index.js';

// Same settings as the service: DATABASE_URL when set, the embedded PGlite folder otherwise.
const settings = loadSettings();
const embedded = !settings.DATABASE_URL && !settings.PGLITE_DATA_DIR.startsWith('memory://');
// PGlite creates its data folder but not the folders above it.
if (embedded) mkdirSync(dirname(settings.PGLITE_DATA_DIR), { recursive: true });

export default defineConfig({
  dialect: 'postgresql',
  schema: ['./app/*/model.ts', './app/core/**/model.ts'],
  // db:check generates into a scratch copy to detect models that changed without a migration.
  out: process.env.DRIZZLE_OUT ?? './drizzle',
  strict: true,
  verbose: false,
  ...(settings.DATABASE_URL
    ? { dbCredentials: { url: settings.DATABASE_URL } }
    : { driver: 'pglite', dbCredentials: { url: settings.PGLITE_DATA_DIR } }),
});
