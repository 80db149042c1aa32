import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { sql } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js';
import { migrate as migratePostgres } from 'drizzle-orm/postgres-js/migrator';
import postgres from 'postgres';

/** The database type every repository sees, whichever driver runs underneath. */
export type Db = PgDatabase<PgQueryResultHKT>;
/** A database or an open transaction: repositories accept either. */
export type Executor = Db;

export interface DatabaseConnection {
  kind: 'postgres' | 'pglite';
  db: Db;
  migrate(migrationsFolder: string): Promise<void>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Arbitrary but fixed key: serialises migrations when several processes start at once. */
const MIGRATION_LOCK_KEY = 7_263_114_001;

export interface PostgresOptions {
  url: string;
  poolMax: number;
  applicationName: string;
  connectTimeoutS?: number;
}

/** postgres.js pool + drizzle. Connects eagerly so a dead server fails start-up, not the first request. */
export async function connectPostgres(options: PostgresOptions): Promise<DatabaseConnection> {
  const client = postgres(options.url, {
    max: options.poolMax,
    connect_timeout: options.connectTimeoutS ?? 5,
    idle_timeout: 60,
    onnotice: () => {},
    connection: { application_name: options.applicationName },
  });
  try {
    await client`select 1`;
  } catch (error) {
    await client.end({ timeout: 0 });
    throw new Error(`PostgreSQL is unreachable at ${safeUrl(options.url)}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const db = drizzlePostgres(client) as unknown as Db;
  return {
    kind: 'postgres',
    db,
    async migrate(migrationsFolder) {
      const lock = await client.reserve();
      try {
        await lock`select pg_advisory_lock(${MIGRATION_LOCK_KEY})`;
        await migratePostgres(drizzlePostgres(client), { migrationsFolder });
      } finally {
        await lock`select pg_advisory_unlock(${MIGRATION_LOCK_KEY})`.catch(() => {});
        lock.release();
      }
    },
    async ping() {
      await client`select 1`;
    },
    async close() {
      await client.end({ timeout: 5 });
    },
  };
}

/**
 * Embedded PostgreSQL (PGlite, WASM) for local/test without DATABASE_URL. A data folder keeps the
 * data between runs; `memory://` keeps nothing. PGlite has no cross-process locking, so a lock file
 * stops a second process from opening the same folder and silently losing writes.
 */
export async function connectPglite(dataDir: string): Promise<DatabaseConnection> {
  const inMemory = dataDir.startsWith('memory://');
  const lockFile = inMemory ? undefined : join(dataDir, '..', `${basename(dataDir)}.lock`);
  if (lockFile) {
    await mkdir(dirname(lockFile), { recursive: true });
    await acquireLock(lockFile, dataDir);
  }
  let client: PGlite;
  try {
    client = await PGlite.create(dataDir);
  } catch (error) {
    if (lockFile) await rm(lockFile, { force: true });
    throw error;
  }
  const db = drizzlePglite(client) as unknown as Db;
  return {
    kind: 'pglite',
    db,
    async migrate(migrationsFolder) {
      await migratePglite(drizzlePglite(client), { migrationsFolder });
    },
    async ping() {
      await db.execute(sql`select 1`);
    },
    async close() {
      await client.close();
      if (lockFile) await rm(lockFile, { force: true });
    },
  };
}

function basename(path: string): string {
  return path.replace(/\/+$/, '').split('/').pop() || 'pglite';
}

async function acquireLock(lockFile: string, dataDir: string): Promise<void> {
  const holder = Number.parseInt(await readFile(lockFile, 'utf8').catch(() => ''), 10);
  if (holder && holder !== process.pid && isAlive(holder)) {
    throw new Error(
      `The embedded database in ${dataDir} is in use by process ${holder}. PGlite serves one process only: ` +
      'stop that process, or set DATABASE_URL to share a PostgreSQL server.',
    );
  }
  await writeFile(lockFile, String(process.pid));
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The URL without its password, for messages. */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '<unparseable url>';
  }
}
