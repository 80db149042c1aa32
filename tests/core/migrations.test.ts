import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import postgres from 'postgres';
import t, { type Test } from 'tap';
import { migrationsFolder } from '../../app/core/database.js';
import { type CliResult, run, runCli } from '../helpers/cli.js';
import { waitFor } from '../helpers/wait.js';
import { databaseUrl, POSTGRES_URL, uniqueName } from '../helpers/infra.js';

/**
 * `npm run db:migrate` (app/migrate.ts, run as its own process) on empty databases, then drizzle-kit's own
 * comparison of the models with what the migrations built: models and committed migrations can agree (db:check)
 * while a hand-edited migration builds something else, and this is where that shows.
 */

/** The key app/core/adapter/postgres.ts serialises migrations with. */
const MIGRATION_LOCK_KEY = 7_263_114_001;

/**
 * drizzle-kit 0.31 reads array defaults back wrongly (`'{}'::uuid[]` comes back as `'{""}'`), so it always proposes
 * setting this default again. The column's real default is asserted separately below.
 */
const KNOWN_FALSE_DIFFS = [`ALTER TABLE "feature_flags" ALTER COLUMN "allow_user_ids" SET DEFAULT '{}'::uuid[];`];

const journalEntries = async () =>
  (JSON.parse(await readFile(join(migrationsFolder, 'meta', '_journal.json'), 'utf8')) as { entries: { tag: string }[] })
    .entries;

/** An empty database of this test's own, dropped (with whatever connects to it) when `t` ends. */
async function emptyDatabase(t: Test): Promise<{ url: string; sql: postgres.Sql }> {
  const admin = postgres(POSTGRES_URL, { max: 1, onnotice: () => {} });
  const name = uniqueName('t');
  await admin.unsafe(`create database "${name}"`);
  const url = databaseUrl(name);
  const sql = postgres(url, { max: 2, onnotice: () => {} });
  t.teardown(async () => {
    await sql.end({ timeout: 1 });
    await admin.unsafe(`drop database if exists "${name}" with (force)`);
    await admin.end();
  });
  return { url, sql };
}

const migrate = (url: string) => runCli('migrate', [], { env: { APP_ENV: 'test', DATABASE_URL: url } });

function expectMigrated(t: Test, result: CliResult, what: string) {
  t.equal(result.code, 0, `${what}: exit code 0 (stderr: ${result.stderr.trim()})`);
  t.match(result.stdout, /^db:migrate: postgres:\/\/.* is up to date \(\d+ ms\)\n$/, `${what}: says so`);
}

/**
 * The SQL `drizzle-kit push` finds missing in the database of `url` to match the models of drizzle.config.ts (and
 * applies, on this throwaway database). Its programmatic pushSchema loses the parameters of one of its introspection
 * queries (tables with a composite primary key fail), so this runs the command line, which does not.
 */
async function pendingStatements(t: Test, url: string): Promise<string[]> {
  const result = await run(process.execPath, ['node_modules/drizzle-kit/bin.cjs', 'push', '--verbose', '--force'], {
    env: { APP_ENV: 'test', DATABASE_URL: url },
  });
  // eslint-disable-next-line no-control-regex -- strips the spinner's ANSI escapes from the output
  const output = result.stdout.replace(/\u001b\[[0-9;]*[A-Za-z]/g, '');
  t.equal(result.code, 0, `drizzle-kit push ran (stderr: ${result.stderr.trim()})`);
  if (/No changes detected/.test(output)) return [];
  const listed = /You are about to execute current statements:\n([\s\S]*?)\n\s*(?:\[.\] Changes applied|$)/.exec(output);
  if (!listed?.[1]) throw new Error(`unexpected drizzle-kit push output:\n${output}\n${result.stderr}`);
  return listed[1]
    .split(/;\s*\n/)
    .map((statement) => statement.trim().replace(/;?$/, ';'))
    .filter((statement) => statement !== ';' && !KNOWN_FALSE_DIFFS.includes(statement));
}

t.test('db:migrate on an empty database builds exactly what the models describe', async (t) => {
  const { url, sql } = await emptyDatabase(t);
  const entries = await journalEntries();

  expectMigrated(t, await migrate(url), 'first run');
  const applied = await sql<{ hash: string; created_at: string }[]>`
    select hash, created_at::text from drizzle.__drizzle_migrations order by id`;
  t.equal(applied.length, entries.length, `every migration of the journal applied once (${entries.length})`);

  t.same(await pendingStatements(t, url), [], 'drizzle-kit finds nothing to change: database and models agree');
  const [flagsDefault] = await sql<{ column_default: string }[]>`
    select column_default from information_schema.columns
    where table_schema = 'public' and table_name = 'feature_flags' and column_name = 'allow_user_ids'`;
  t.equal(flagsDefault?.column_default, `'{}'::uuid[]`, 'the array default drizzle-kit cannot compare is right');

  t.test('a second run is a no-op', async (t) => {
    const flagsBefore = await sql`select * from feature_flags order by key`;
    expectMigrated(t, await migrate(url), 'second run');
    t.same(
      await sql`select hash, created_at::text from drizzle.__drizzle_migrations order by id`,
      applied,
      'no migration recorded again',
    );
    t.same(await sql`select * from feature_flags order by key`, flagsBefore, 'the data migration did not run again');
  });

  t.test('the comparison does see a database that differs from the models', async (t) => {
    await sql`alter table products drop column description`;
    await sql`drop index products_sku_live_key`;
    await sql`alter table products drop constraint products_stock_non_negative`;
    const pending = await pendingStatements(t, url);
    t.match(pending, [
      'ALTER TABLE "products" ADD COLUMN "description" text;',
      /^CREATE UNIQUE INDEX "products_sku_live_key" ON "products"/,
      /^ALTER TABLE "products" ADD CONSTRAINT "products_stock_non_negative" CHECK/,
    ]);
    t.equal(pending.length, 3, 'and only that');
  });
});

t.test('two db:migrate at once on an empty database: one waits for the other, both succeed', async (t) => {
  const { url, sql } = await emptyDatabase(t);
  // Hold the migration lock, so both processes are surely inside migrate() at the same time.
  const holder = await sql.reserve();
  await holder`select pg_advisory_lock(${MIGRATION_LOCK_KEY})`;
  const runs = Promise.all([migrate(url), migrate(url)]);
  await waitFor(
    async () => {
      const [row] = await sql<{ n: number }[]>`
        select count(*)::int as n from pg_locks
        where locktype = 'advisory' and not granted and database = (select oid from pg_database where datname = current_database())`;
      return row?.n === 2;
    },
    30_000,
    'both migrate processes to wait for the migration lock',
  );
  await holder`select pg_advisory_unlock(${MIGRATION_LOCK_KEY})`;
  holder.release();

  const [a, b] = await runs;
  expectMigrated(t, a as CliResult, 'first process');
  expectMigrated(t, b as CliResult, 'second process');
  const [row] = await sql<{ n: number }[]>`select count(*)::int as n from drizzle.__drizzle_migrations`;
  t.equal(row?.n, (await journalEntries()).length, 'each migration recorded once');
  t.same(await pendingStatements(t, url), [], 'and the database matches the models');
});
