import { sql } from 'drizzle-orm';
import postgres from 'postgres';
import t, { type Test } from 'tap';
import { connectPostgres, type DatabaseConnection, type Db } from '../../app/core/adapter/postgres.js';
import { isDatabaseUnavailable } from '../../app/core/base/errors.js';
import { rowsOf } from '../helpers/db.js';
import { testDatabaseUrl, uniqueName } from '../helpers/infra.js';
import { failure } from '../helpers/wait.js';

/*
 * The bounds adapter/postgres.ts puts on every query (statement timeout, the wait for a pooled connection, BEGIN), and
 * a transaction whose connection is killed failing cleanly; isDatabaseUnavailable() telling such failures from bugs.
 * The fault suite (tests/faults) shows the same under load; these are the fast unit checks.
 */

const TIMEOUT_MS = 300;

async function connect(t: Test, poolMax: number): Promise<DatabaseConnection> {
  const connection = await connectPostgres({
    url: await testDatabaseUrl(),
    poolMax,
    applicationName: uniqueName('bounds'),
    statementTimeoutMs: TIMEOUT_MS,
    idleInTransactionTimeoutMs: 5000,
    connectTimeoutMs: 2000,
  });
  t.teardown(() => connection.close());
  return connection;
}

/** Keeps one pooled connection busy in an open transaction until `release()`. */
function holdConnection(db: Db) {
  let release: () => void = () => {};
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  const holder = db.transaction(async (tx) => {
    await tx.execute(sql`select 1`);
    await held;
  });
  return { release, holder };
}

t.test('a query past the statement timeout fails as the database being unavailable', async (t) => {
  const { db } = await connect(t, 2);
  const started = performance.now();
  const error = await failure(db.execute(sql`select pg_sleep(5)`));
  t.ok(isDatabaseUnavailable(error), `a timeout, not a bug (${(error as Error).message})`);
  t.ok(performance.now() - started < TIMEOUT_MS + 1500, 'within the bound');
  t.same(await rowsOf(db, sql`select 1 as one`), [{ one: 1 }], 'the pool works on');
});

t.test('a query waiting for a connection gives up at the bound and never runs', async (t) => {
  const { db } = await connect(t, 1);
  const table = uniqueName('bounds_t');
  await db.execute(sql.raw(`create table ${table} (n int)`));
  t.teardown(async () => {
    const cleanup = postgres(await testDatabaseUrl(), { max: 1, onnotice: () => {} });
    await cleanup.unsafe(`drop table if exists ${table}`);
    await cleanup.end();
  });
  // The only connection is busy in a transaction that outlives the bound (its statements are each fast).
  const { release, holder } = holdConnection(db);
  const queued = failure(db.execute(sql.raw(`insert into ${table} values (1)`)));
  const error = await queued;
  t.match(error, { cause: { code: 'DATABASE_TIMEOUT' } }, 'the queued query failed at the bound');
  t.ok(isDatabaseUnavailable(error));
  release();
  await holder;
  t.same(await rowsOf(db, sql.raw(`select count(*)::int as n from ${table}`)), [{ n: 0 }], 'the insert that timed out in the queue never ran');
  const begin = failure(db.transaction(async (tx) => {
    await tx.execute(sql`select pg_sleep(0)`);
  }));
  t.equal(await begin, undefined, 'transactions begin again');
});

t.test('BEGIN waiting for a connection gives up at the bound and the transaction body never runs', async (t) => {
  const { db } = await connect(t, 1);
  const { release, holder } = holdConnection(db);
  let ran = false;
  const error = await failure(db.transaction(async () => {
    ran = true;
  }));
  t.match(error, { code: 'DATABASE_TIMEOUT' });
  release();
  await holder;
  // Let the expired transaction get its connection: it must roll back without running the body.
  await db.execute(sql`select 1`);
  t.notOk(ran, 'the body of the expired transaction did not run');
});

t.test('nested transactions (savepoints) run under the same bounds', async (t) => {
  const { db } = await connect(t, 2);
  const result = await db.transaction(async (tx) => tx.transaction(async (inner) => rowsOf(inner, sql`select 2 as two`)));
  t.same(result, [{ two: 2 }]);
  const error = await failure(db.transaction(async (tx) => tx.transaction(async (inner) => inner.execute(sql`select pg_sleep(5)`))));
  t.ok(isDatabaseUnavailable(error), 'a savepoint statement past the timeout');
});

t.test('a transaction whose connection is killed fails as unavailable; the process and the pool go on', async (t) => {
  const connection = await connect(t, 2);
  const { db } = connection;
  const killer = postgres(await testDatabaseUrl(), { max: 1, onnotice: () => {} });
  t.teardown(() => killer.end());
  const error = await failure(db.transaction(async (tx) => {
    const [me] = await rowsOf<{ pid: number }>(tx, sql`select pg_backend_pid() as pid`);
    await killer`select pg_terminate_backend(${me?.pid ?? 0})`;
    await tx.execute(sql`select 1`);
    await tx.execute(sql`select 2`);
  }));
  t.ok(isDatabaseUnavailable(error), `the caller learns the database went away (${(error as Error).message})`);
  // Two at once, so the killed connection is opened again too (postgres.js otherwise waits for it at close).
  // The server's termination notice can still be on its way: a query sent on that connection in the
  // meantime fails, as unavailable too; the next round must find the pool whole again.
  let again: PromiseSettledResult<unknown>[] = [];
  for (let round = 0; round < 5; round++) {
    again = await Promise.allSettled([rowsOf(db, sql`select 3 as three`), rowsOf(db, sql`select 3 as three`)]);
    const failures = again.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    for (const failure of failures) t.ok(isDatabaseUnavailable(failure.reason), 'a query caught by the termination fails as unavailable');
    if (failures.length === 0) break;
  }
  t.same(again, [{ status: 'fulfilled', value: [{ three: 3 }] }, { status: 'fulfilled', value: [{ three: 3 }] }], 'the pool reconnects');
});

t.test('isDatabaseUnavailable', async (t) => {
  const pg = (code: string) => Object.assign(new Error(`pg ${code}`), { name: 'PostgresError', code });
  for (const code of ['57014', '57P01', '57P03', '53300', '08006', '55P03', '25P03']) {
    t.ok(isDatabaseUnavailable(pg(code)), `PostgreSQL ${code}`);
    t.ok(isDatabaseUnavailable(Object.assign(new Error('Failed query: select 1'), { cause: pg(code) })), `${code} wrapped by drizzle`);
  }
  for (const code of ['CONNECTION_CLOSED', 'CONNECT_TIMEOUT', 'ECONNREFUSED', 'DATABASE_TIMEOUT']) {
    t.ok(isDatabaseUnavailable(Object.assign(new Error(code), { code })), code);
  }
  for (const error of [pg('23505'), pg('22021'), pg('42P01'), new Error('boom'), Object.assign(new Error('x'), { code: 57014 }), null, undefined]) {
    t.notOk(isDatabaseUnavailable(error), `not: ${String((error as Error | null)?.message)}`);
  }
});
