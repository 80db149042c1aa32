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
  /** The connection pool as PostgreSQL sees it; PGlite has no pool (one in-process connection). */
  pool?: PoolMonitor;
  migrate(migrationsFolder: string): Promise<void>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface PoolMonitor {
  /** DATABASE_POOL_MAX: the most connections the pool opens. */
  max: number;
  /** The pool's open connections: in use (running a query or holding a transaction) and idle. */
  connections(): Promise<{ inUse: number; idle: number }>;
}

/** PostgreSQL keeps the first 63 bytes of application_name (NAMEDATALEN - 1). */
export const APPLICATION_NAME_MAX = 63;

/** Arbitrary but fixed key: serialises migrations when several processes start at once. */
const MIGRATION_LOCK_KEY = 7_263_114_001;

export interface PostgresOptions {
  url: string;
  poolMax: number;
  applicationName: string;
  connectTimeoutS?: number;
  /** Wins over connectTimeoutS. */
  connectTimeoutMs?: number;
  /**
   * Bound on every query: PostgreSQL's statement_timeout, and the same deadline in the client for the time
   * spent waiting for a pooled connection (see guarded()). Unset: no bound (tests' helper pools, tools).
   */
  statementTimeoutMs?: number;
  /** PostgreSQL's idle_in_transaction_session_timeout. */
  idleInTransactionTimeoutMs?: number;
}

/** postgres.js pool + drizzle. Connects eagerly so a dead server fails start-up, not the first request. */
export async function connectPostgres(options: PostgresOptions): Promise<DatabaseConnection> {
  const base = {
    connect_timeout: options.connectTimeoutMs === undefined ? (options.connectTimeoutS ?? 5) : options.connectTimeoutMs / 1000,
    idle_timeout: 60,
    onnotice: () => {},
  };
  const client = postgres(options.url, {
    // postgres.js waits up to 20 s between reconnects after failures (3^n / 100 s); capped at ~2 s, the pool is
    // back within seconds of PostgreSQL.
    backoff: (retries: number) => Math.min(0.05 * 2 ** retries, 2) * (0.5 + Math.random() / 2),
    ...base,
    max: options.poolMax,
    connection: {
      application_name: options.applicationName,
      ...(options.statementTimeoutMs ? { statement_timeout: options.statementTimeoutMs } : {}),
      ...(options.idleInTransactionTimeoutMs
        ? { idle_in_transaction_session_timeout: options.idleInTransactionTimeoutMs }
        : {}),
    },
  });
  try {
    await client`select 1`;
  } catch (error) {
    await client.end({ timeout: 0 });
    throw new Error(`PostgreSQL is unreachable at ${safeUrl(options.url)}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const queries = guarded(client, options.statementTimeoutMs);
  const db = drizzlePostgres(queries) as unknown as Db;
  const monitor = poolMonitor(options);
  return {
    kind: 'postgres',
    db,
    pool: monitor.pool,
    async migrate(migrationsFolder) {
      // Migrations may legitimately run long (an index on a big table): connections of their own, without
      // the statement timeout. Two: one holds the advisory lock, the other migrates.
      const migrator = postgres(options.url, { ...base, max: 2, connection: { application_name: options.applicationName } });
      const lock = await migrator.reserve();
      try {
        await lock`select pg_advisory_lock(${MIGRATION_LOCK_KEY})`;
        await migratePostgres(drizzlePostgres(migrator), { migrationsFolder });
      } finally {
        await lock`select pg_advisory_unlock(${MIGRATION_LOCK_KEY})`.catch(() => {});
        lock.release();
        await migrator.end({ timeout: 5 });
      }
    },
    async ping() {
      await queries.unsafe('select 1');
    },
    async close() {
      await Promise.all([client.end({ timeout: 5 }), monitor.close()]);
    },
  };
}

/**
 * Pool statistics. postgres.js exposes none (its connection queues are private), and counting in-flight queries
 * here would mean wrapping every query on the hot path and still not see open-but-idle connections. PostgreSQL
 * itself knows each connection's state: pg_stat_activity, filtered by this pool's application_name (unique per
 * process, see database.ts). Asked only when /metrics is scraped, over a separate single connection (opened on
 * the first scrape, closed after a minute unused) so a scrape never waits behind an exhausted pool, which is when
 * these numbers matter most; that connection excludes itself by pid.
 */
function poolMonitor(options: PostgresOptions): { pool: PoolMonitor; close(): Promise<void> } {
  let sql: postgres.Sql | undefined;
  return {
    pool: {
      max: options.poolMax,
      async connections() {
        sql ??= postgres(options.url, {
          max: 1,
          connect_timeout: 2,
          idle_timeout: 60,
          onnotice: () => {},
          connection: { application_name: options.applicationName },
        });
        const [row] = await sql<{ idle: number; inUse: number }[]>`
          select count(*) filter (where state = 'idle')::int as idle,
                 count(*) filter (where state is distinct from 'idle')::int as "inUse"
          from pg_stat_activity
          where application_name = ${options.applicationName.slice(0, APPLICATION_NAME_MAX)} and pid <> pg_backend_pid()`;
        return { inUse: row?.inUse ?? 0, idle: row?.idle ?? 0 };
      },
    },
    async close() {
      await sql?.end({ timeout: 1 });
    },
  };
}

/** A query given up by the client: it waited longer than the statement timeout (for a connection or an answer). */
export class DatabaseTimeoutError extends Error {
  readonly code = 'DATABASE_TIMEOUT';
  constructor(ms: number, what: string) {
    super(`PostgreSQL: ${what} took over ${ms} ms`);
    this.name = 'DatabaseTimeoutError';
  }
}

/** Errors that may mean the connection under a transaction is gone (killed, server restarted, network). */
const LOST = new Set(['CONNECTION_CLOSED', 'CONNECTION_DESTROYED', 'CONNECTION_ENDED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT']);
function isConnectionLost(error: unknown): boolean {
  type E = { code?: unknown; severity?: unknown; cause?: unknown };
  for (let e = error as E | undefined, depth = 0; e && depth < 5; e = e.cause as E | undefined, depth += 1) {
    if (typeof e.code === 'string' && LOST.has(e.code)) return true;
    if (e.severity === 'FATAL' || e.severity === 'PANIC') return true;
  }
  return false;
}

/**
 * The postgres.js client drizzle uses, with two things postgres.js 3.4.9 lacks.
 *
 * Bounded waits (when `ms` is given): postgres.js has no bound on the wait for a pooled connection and pipelines
 * queries behind busy ones, so with the pool stuck (a table lock, a hung server) requests would pile up, each
 * waiting for the ones before it. Every query, and the BEGIN of every transaction, fails with DatabaseTimeoutError
 * after `ms`, as the server's statement_timeout does for a running one. A query still waiting in the pool's queue
 * is removed from it (it never runs); one already sent is left to the server's statement_timeout (same bound).
 *
 * No writes to a dead transaction connection: when the connection under a transaction dies, postgres.js still
 * sends the transaction's next query, or its ROLLBACK, to the closed socket, which throws an uncatchable TypeError
 * from a setImmediate and takes the whole process down, or leaves the pooled connection unable to ever send again
 * (porsager/postgres#1154, #1208; no release fixes it yet). So once the connection is known lost, queries of that
 * transaction fail without being sent, and a transaction failing because its connection is lost does not hand
 * its error back to postgres.js (which would write ROLLBACK): the caller still gets the failure, from begin().
 */
function guarded(sql: postgres.Sql, ms: number | undefined, lost: () => boolean = () => false): postgres.Sql {
  return new Proxy(sql, {
    get(target, property, receiver) {
      if (property === 'unsafe') {
        return (...args: Parameters<postgres.Sql['unsafe']>) => {
          if (lost()) throw Object.assign(new Error('PostgreSQL: the connection of this transaction is gone'), { code: 'CONNECTION_CLOSED' });
          const query = target.unsafe(...args);
          return ms ? withDeadline(query, ms) : query;
        };
      }
      if (property === 'begin') {
        return (...args: unknown[]) => begin(target, ms, args.at(-1) as (tx: postgres.Sql) => unknown);
      }
      if (property === 'savepoint' && 'savepoint' in target) {
        const savepoint = (target as unknown as postgres.TransactionSql).savepoint;
        return (...args: unknown[]) => {
          const fn = args.at(-1);
          if (typeof fn !== 'function') return Reflect.apply(savepoint, target, args);
          const inner = (tx: postgres.Sql) => unlessLost(() => fn(guarded(tx, ms, lost)) as unknown, lost);
          return Reflect.apply(savepoint, target, [...args.slice(0, -1), inner]);
        };
      }
      return Reflect.get(target, property, receiver) as unknown;
    },
  });
}

/**
 * Runs a transaction's (or savepoint's) fn; if it fails and the connection turns out to be lost, never settles,
 * so postgres.js writes no ROLLBACK to the dead socket. The loss is known from begin() (postgres.js rejects it
 * when the connection closes), which happens within the same turn of the event loop as the failed query.
 */
async function unlessLost(fn: () => unknown, lost: () => boolean): Promise<unknown> {
  try {
    return await fn();
  } catch (error) {
    if (!lost() && isConnectionLost(error)) await new Promise((resolve) => setImmediate(resolve));
    if (lost()) return new Promise(() => {});
    throw error;
  }
}

type Pending = ReturnType<postgres.Sql['unsafe']>;

function withDeadline(query: Pending, ms: number): Pending {
  const then = query.then;
  // postgres.js sends a query when it is awaited (then); the deadline starts there.
  query.then = function deadlineThen(onfulfilled, onrejected) {
    const settled = Reflect.apply(then, query, []) as Promise<postgres.RowList<postgres.Row[]>>;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        // Not handed to a connection yet (postgres.js sets `state` then): cancel() just takes it out of the queue.
        if (!(query as unknown as { state: unknown }).state) void query.cancel();
        reject(new DatabaseTimeoutError(ms, 'a query'));
      }, ms);
    });
    return Promise.race([settled, timeout])
      .finally(() => clearTimeout(timer))
      .then(onfulfilled, onrejected);
  };
  return query;
}

async function begin(sql: postgres.Sql, ms: number | undefined, fn: (tx: postgres.Sql) => unknown): Promise<unknown> {
  let expired = false;
  let lost = false;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    if (!ms) return;
    timer = setTimeout(() => {
      expired = true;
      reject(new DatabaseTimeoutError(ms, 'waiting for a connection to begin a transaction'));
    }, ms);
  });
  const run = sql.begin(async (tx) => {
    clearTimeout(timer);
    // The caller has been told it failed: roll back instead of doing the work behind its back.
    if (expired) throw new DatabaseTimeoutError(ms ?? 0, 'waiting for a connection to begin a transaction');
    return unlessLost(() => fn(guarded(tx as unknown as postgres.Sql, ms, () => lost)), () => lost);
  });
  // postgres.js rejects begin() as soon as the transaction's connection closes; from then on it is lost. After a
  // timeout, the transaction's own rejection has nobody waiting for it.
  run.catch((error: unknown) => {
    if (isConnectionLost(error)) lost = true;
  });
  try {
    return await Promise.race([run, timeout]);
  } finally {
    clearTimeout(timer);
  }
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
