import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import postgres from 'postgres';
import t from 'tap';
import { connectPostgres } from '../../app/core/adapter/postgres.js';
import { migrationsFolder } from '../../app/core/database.js';

/**
 * Real PostgreSQL and Redis for integration tests, isolated per test file: each file gets its own
 * database (cloned from a migrated template, so migrations run once per change, not once per file)
 * and its own Redis key prefix. Both are removed when the file's tests end.
 */
export const POSTGRES_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

const TEMPLATE_LOCK = 7_263_114_002;

export const uniqueName = (prefix: string) => `${prefix}_${process.pid}_${randomBytes(4).toString('hex')}`;

export function databaseUrl(name: string, base = POSTGRES_URL): string {
  const url = new URL(base);
  url.pathname = `/${name}`;
  return url.toString();
}

/**
 * Name of the template database for a migrations folder: a changed migration gets a new template. The
 * journal counts too, because drizzle's migrator decides what is applied from its timestamps.
 */
export function templateName(folder: string = migrationsFolder): string {
  const hash = createHash('sha256');
  for (const file of readdirSync(folder).filter((f) => f.endsWith('.sql')).sort()) {
    hash.update(file).update(readFileSync(join(folder, file)));
  }
  hash.update(readFileSync(join(folder, 'meta', '_journal.json')));
  return `plinth_tpl_${hash.digest('hex').slice(0, 12)}`;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function ensureTemplate(admin: postgres.Sql): Promise<string> {
  const template = templateName();
  const lock = await admin.reserve();
  try {
    await lock`select pg_advisory_lock(${TEMPLATE_LOCK})`;
    // Leftovers of runs that died before their teardown.
    const stale = await lock<{ datname: string }[]>`select datname from pg_database where datname ~ '^t_[0-9]+_'`;
    for (const { datname } of stale) {
      const pid = Number(datname.split('_')[1]);
      if (!isAlive(pid)) await lock.unsafe(`drop database if exists "${datname}" with (force)`);
    }
    const [exists] = await lock`select 1 from pg_database where datname = ${template}`;
    if (!exists) {
      const building = `${template}_building`;
      await lock.unsafe(`drop database if exists "${building}" with (force)`);
      await lock.unsafe(`create database "${building}"`);
      const connection = await connectPostgres({ url: databaseUrl(building), poolMax: 2, applicationName: 'plinth-tests' });
      try {
        await connection.migrate(migrationsFolder);
      } finally {
        await connection.close();
      }
      await lock.unsafe(`alter database "${building}" rename to "${template}"`);
    }
  } finally {
    await lock`select pg_advisory_unlock(${TEMPLATE_LOCK})`;
    lock.release();
  }
  return template;
}

let database: Promise<string> | undefined;

/** A migrated database of this test file's own; dropped when the file's tests end. Returns its URL. */
export function testDatabaseUrl(): Promise<string> {
  database ??= (async () => {
    const admin = postgres(POSTGRES_URL, { max: 2, onnotice: () => {} });
    try {
      const template = await ensureTemplate(admin);
      const name = uniqueName('t');
      await admin.unsafe(`create database "${name}" template "${template}"`);
      t.teardown(async () => {
        const dropper = postgres(POSTGRES_URL, { max: 1, onnotice: () => {} });
        await dropper.unsafe(`drop database if exists "${name}" with (force)`);
        await dropper.end();
      });
      return databaseUrl(name);
    } finally {
      await admin.end();
    }
  })();
  return database;
}

let prefix: string | undefined;

/** A Redis key prefix of this test file's own; its keys are deleted when the file's tests end. */
export function testRedisPrefix(): string {
  if (!prefix) {
    const mine = `${uniqueName('t')}:`;
    prefix = mine;
    t.teardown(async () => {
      const redis = new Redis(REDIS_URL, { lazyConnect: true });
      await redis.connect();
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${mine}*`, 'COUNT', 500);
        if (keys.length) await redis.del(...keys);
        cursor = next;
      } while (cursor !== '0');
      await redis.quit();
    });
  }
  return prefix;
}
