import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eq, sql } from 'drizzle-orm';
import postgres from 'postgres';
import t, { type Test } from 'tap';
import { connectPglite, connectPostgres, type DatabaseConnection, type Db } from '../../app/core/adapter/postgres.js';
import { migrationsFolder, openDatabase } from '../../app/core/database.js';
import { loadSettings } from '../../app/core/settings/index.js';
import { users } from '../../app/users/model.js';
import { build, testSettings } from '../helpers/app.js';
import { databaseUrl, POSTGRES_URL, testDatabaseUrl, uniqueName } from '../helpers/infra.js';
import { freePort } from '../helpers/net.js';
import { createUser } from '../helpers/users.js';

const migrationCount = async () =>
  (JSON.parse(await readFile(join(migrationsFolder, 'meta', '_journal.json'), 'utf8')) as { entries: unknown[] }).entries
    .length;

async function emailsLike(db: Db, email: string) {
  return db.select({ email: users.email }).from(users).where(eq(users.email, email));
}

/** A transaction that inserts a row and then fails must leave nothing behind. */
async function assertRollback(t: Test, db: Db) {
  const email = `rollback-${Date.now()}-${Math.random().toString(16).slice(2)}@example.com`;
  await t.rejects(
    db.transaction(async (tx) => {
      await tx.insert(users).values({ email, name: 'Rolled Back', passwordHash: 'x' });
      t.equal((await emailsLike(tx, email)).length, 1, 'the row is visible inside the transaction');
      throw new Error('boom');
    }),
    { message: 'boom' },
  );
  t.same(await emailsLike(db, email), [], 'the insert was rolled back');

  await db.transaction(async (tx) => {
    await tx.insert(users).values({ email, name: 'Committed', passwordHash: 'x' });
  });
  t.equal((await emailsLike(db, email)).length, 1, 'a successful transaction commits');
}

t.test('openDatabase on the real PostgreSQL', async (t) => {
  const settings = await testSettings();
  const connection = await openDatabase({ ...settings, SERVICE_NAME: 'plinth-db-test' });
  t.teardown(() => connection.close());
  t.equal(connection.kind, 'postgres');
  await t.resolves(connection.ping(), 'ping works');

  t.test('migrations are idempotent on an already migrated database', async (t) => {
    await t.resolves(connection.migrate(migrationsFolder));
    await t.resolves(connection.migrate(migrationsFolder));
    const rows = await connection.db.execute(sql`select count(*)::int as n from drizzle.__drizzle_migrations`);
    t.same([...(rows as unknown as { n: number }[])], [{ n: await migrationCount() }]);
  });

  t.test('a failing transaction rolls back', async (t) => {
    await assertRollback(t, connection.db);
  });
});

t.test('migrations on an empty database: applied once, idempotent, safe to run concurrently', async (t) => {
  const admin = postgres(POSTGRES_URL, { max: 1, onnotice: () => {} });
  const name = uniqueName('t');
  await admin.unsafe(`create database "${name}"`);
  t.teardown(async () => {
    await admin.unsafe(`drop database if exists "${name}" with (force)`);
    await admin.end();
  });
  const url = databaseUrl(name);
  const a = await connectPostgres({ url, poolMax: 2, applicationName: 'plinth-migrate-a' });
  const b = await connectPostgres({ url, poolMax: 2, applicationName: 'plinth-migrate-b' });
  t.teardown(() => Promise.all([a.close(), b.close()]));

  await t.resolves(Promise.all([a.migrate(migrationsFolder), b.migrate(migrationsFolder)]), 'two processes at once');
  await t.resolves(a.migrate(migrationsFolder), 'a third run is a no-op');
  const applied = await a.db.execute(sql`select count(*)::int as n from drizzle.__drizzle_migrations`);
  t.same([...(applied as unknown as { n: number }[])], [{ n: await migrationCount() }], 'each migration recorded once');
  const tables = await a.db.execute(
    sql`select table_name from information_schema.tables where table_schema = 'public' order by table_name`,
  );
  const names = (tables as unknown as { table_name: string }[]).map((r) => r.table_name);
  for (const table of ['users', 'sessions', 'refresh_tokens']) t.ok(names.includes(table), `table ${table} exists`);
  await assertRollback(t, a.db);
});

t.test('close ends the pool', async (t) => {
  const applicationName = `plinth-close-${process.pid}`;
  const connection = await connectPostgres({ url: await testDatabaseUrl(), poolMax: 3, applicationName });
  await Promise.all([connection.ping(), connection.ping(), connection.ping()]);
  const admin = postgres(POSTGRES_URL, { max: 1, onnotice: () => {} });
  t.teardown(() => admin.end());
  const count = async () =>
    (await admin<{ n: number }[]>`select count(*)::int as n from pg_stat_activity where application_name = ${applicationName}`)[0]
      ?.n;
  t.ok(((await count()) ?? 0) >= 1, 'the pool holds server connections');

  await connection.close();
  let remaining = await count();
  // The server drops a closed backend from pg_stat_activity asynchronously: poll briefly.
  for (let i = 0; i < 50 && remaining !== 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    remaining = await count();
  }
  t.equal(remaining, 0, 'no server connection is left');
  await t.rejects(connection.ping(), 'queries fail after close');
});

t.test('connectPostgres to a port nothing listens on', async (t) => {
  const port = await freePort();
  const password = 'sup3r-s3cret-pw';
  const started = Date.now();
  const error = await connectPostgres({
    url: `postgres://postgres:${password}@127.0.0.1:${port}/plinth`,
    poolMax: 2,
    applicationName: 'plinth-dead',
    connectTimeoutS: 2,
  }).then(
    () => undefined,
    (e: Error) => e,
  );
  t.ok(error, 'rejects');
  t.match(error?.message, /PostgreSQL is unreachable/);
  t.match(error?.message, `127.0.0.1:${port}`, 'names where it tried');
  t.notOk(error?.message.includes(password), 'the password is not in the message');
  t.ok(Date.now() - started < 5000, 'fails fast on a refused connection');
});

t.test('openDatabase refuses the embedded fallback outside local/test', async (t) => {
  const settings = { ...loadSettings({ APP_ENV: 'test' }), APP_ENV: 'production' as const };
  await t.rejects(openDatabase(settings), { message: /DATABASE_URL is required when APP_ENV=production/ });
});

t.test('the database plugin on PGlite', async (t) => {
  const app = await build(t, { embedded: true });
  t.equal(app.dbKind, 'pglite');
  t.equal(app.settings.DATABASE_URL, undefined);
  const user = await createUser(app);
  const me = await app.inject({ method: 'GET', url: '/v1/users/me', headers: user.auth });
  t.equal(me.statusCode, 200);
  t.equal(me.json().email, user.email);
  const ready = await app.inject({ method: 'GET', url: '/health/ready' });
  t.equal(ready.statusCode, 200);
  t.equal(ready.json().checks.db, 'ok');
  await assertRollback(t, app.db);
});

t.test('the database plugin on PostgreSQL', async (t) => {
  const app = await build(t);
  t.equal(app.dbKind, 'postgres');
  await assertRollback(t, app.db);
});

t.test('PGlite in a data folder', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'plinth-pglite-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const dataDir = join(root, 'db');
  const lockFile = join(root, 'db.lock');

  t.test('persists a row across close and reopen', async (t) => {
    let connection: DatabaseConnection | undefined = await connectPglite(dataDir);
    t.teardown(() => connection?.close());
    t.equal(connection.kind, 'pglite');
    t.equal(await readFile(lockFile, 'utf8'), String(process.pid), 'the lock file holds this process id');
    await connection.migrate(migrationsFolder);
    await connection.migrate(migrationsFolder);
    await connection.db.insert(users).values({ email: 'persisted@example.com', name: 'Persisted', passwordHash: 'x' });
    await connection.close();
    connection = undefined;
    t.notOk(existsSync(lockFile), 'close releases the lock');

    connection = await connectPglite(dataDir);
    await t.resolves(connection.ping());
    const rows = await emailsLike(connection.db, 'persisted@example.com');
    t.same(rows, [{ email: 'persisted@example.com' }], 'the row survived');
    await connection.close();
    connection = undefined;
  });

  t.test('refuses a folder held by another live process', async (t) => {
    const child: ChildProcess = spawn('sleep', ['30'], { stdio: 'ignore' });
    await once(child, 'spawn');
    t.teardown(async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await once(child, 'exit');
      }
    });
    await writeFile(lockFile, String(child.pid));
    await t.rejects(connectPglite(dataDir), { message: new RegExp(`in use by process ${child.pid}`) });
    t.equal(await readFile(lockFile, 'utf8'), String(child.pid), 'the other process keeps its lock');

    child.kill('SIGKILL');
    await once(child, 'exit');
    // The holder is gone: its stale lock no longer blocks.
    const connection = await connectPglite(dataDir);
    t.teardown(() => connection.close());
    t.equal(await readFile(lockFile, 'utf8'), String(process.pid), 'the stale lock is taken over');
    t.same(await emailsLike(connection.db, 'persisted@example.com'), [{ email: 'persisted@example.com' }]);
  });
});
