import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import t from 'tap';
import { build } from '../helpers/app.js';
import { databaseUrl, testDatabaseUrl, uniqueName } from '../helpers/infra.js';
import { login, PASSWORD, uniqueEmail } from '../helpers/users.js';
import { runCli } from '../helpers/cli.js';

/** `npm run seed` (app/seed.ts) as its own process: the admin and the sample catalog, idempotently. */

const SAMPLE_SIZE = 10;
const seed = (env: Record<string, string>) => runCli('seed', [], { env: { APP_ENV: 'test', ...env } });

t.test('invalid settings: exit 78 naming the problem, before any database is touched', async (t) => {
  const result = await seed({ DATABASE_URL: databaseUrl(uniqueName('t')), SEED_ADMIN_EMAIL: 'admin@example.com' });
  t.equal(result.code, 78);
  t.match(result.stderr, 'SEED_ADMIN_EMAIL/SEED_ADMIN_PASSWORD: set both or neither');
  t.equal(result.stdout, '');
});

t.test('a database that does not exist: exit 1 with one line saying which', async (t) => {
  const result = await seed({ DATABASE_URL: databaseUrl(uniqueName('t')) });
  t.equal(result.code, 1);
  t.match(result.stderr, /^seed: failed on postgres:\/\/\S+: PostgreSQL is unreachable at .*does not exist.*\n$/);
  t.equal(result.stderr.trim().split('\n').length, 1, 'one line');
});

t.test('on PostgreSQL: catalog without an admin, then the admin, then nothing new', async (t) => {
  const url = await testDatabaseUrl();
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  t.teardown(() => sql.end({ timeout: 1 }));
  const email = uniqueEmail('seed-admin');
  const withAdmin = { DATABASE_URL: url, SEED_ADMIN_EMAIL: email, SEED_ADMIN_PASSWORD: PASSWORD };

  const products = () => sql`select * from products order by sku`;
  const admin = () => sql`select * from users where email = ${email}`;
  const adminEvents = () => sql`
    select o.id, o.key from outbox o join users u on o.key = u.id::text
    where o.topic = 'users.registered.v1' and u.email = ${email}`;

  const catalogOnly = await seed({ DATABASE_URL: url });
  t.equal(catalogOnly.code, 0, catalogOnly.stderr);
  t.match(catalogOnly.stdout, 'admin: skipped (SEED_ADMIN_EMAIL and SEED_ADMIN_PASSWORD are not set)');
  t.match(catalogOnly.stdout, `products: ${SAMPLE_SIZE} created, 0 already there`);
  const seeded = await products();
  t.equal(seeded.length, SAMPLE_SIZE, `${SAMPLE_SIZE} products`);
  t.same(new Set(seeded.map((p) => p.version)), new Set([1]), 'each at version 1');
  t.ok(seeded.every((p) => /^SEED-[A-Z]{3}-\d{3}$/.test(p.sku as string)), 'with the fixed SEED-* skus');
  t.same(await admin(), [], 'no admin without SEED_ADMIN_*');

  const adminRun = await seed(withAdmin);
  t.equal(adminRun.code, 0, adminRun.stderr);
  t.match(adminRun.stdout, `admin ${email}: created`);
  t.match(adminRun.stdout, `products: 0 created, ${SAMPLE_SIZE} already there`);
  const [row] = await admin();
  t.match(row, { role: 'admin', version: 1 });
  t.match(row?.password_hash, /^\$argon2id\$/, 'the password is stored hashed');
  t.equal((await adminEvents()).length, 1, 'its users.registered.v1 event is in the outbox, like any registration');
  t.same(await products(), seeded, 'the products were left exactly as they were');

  const again = await seed(withAdmin);
  t.equal(again.code, 0, again.stderr);
  t.match(again.stdout, `admin ${email}: already there`);
  t.match(again.stdout, `products: 0 created, ${SAMPLE_SIZE} already there`);
  t.same(await products(), seeded, 'same products, same versions and timestamps');
  t.same(await admin(), [row], 'same admin row');
  t.equal((await adminEvents()).length, 1, 'no second event');

  const app = await build(t);
  const tokens = await login(app, email, PASSWORD);
  const me = await app.inject({ method: 'GET', url: '/v1/users/me', headers: { authorization: `Bearer ${tokens.accessToken}` } });
  t.match(me.json(), { email, role: 'admin' }, 'the admin logs in with SEED_ADMIN_PASSWORD');
  const listed = await app.inject({ method: 'GET', url: '/v1/products?limit=100' });
  t.same(
    (listed.json() as { items: { sku: string }[] }).items.map((p) => p.sku).sort(),
    seeded.map((p) => p.sku),
    'the catalog is served by the API',
  );
});

t.test('on the embedded PGlite folder: migrates it, seeds once, and says when another process holds it', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'plinth-seed-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const env = { PGLITE_DATA_DIR: join(dir, 'pglite') };

  const first = await seed(env);
  t.equal(first.code, 0, first.stderr);
  t.match(first.stdout, /^seed: embedded PGlite \(.*pglite\)\n/);
  t.match(first.stdout, `products: ${SAMPLE_SIZE} created, 0 already there`);
  const second = await seed(env);
  t.equal(second.code, 0, second.stderr);
  t.match(second.stdout, `products: 0 created, ${SAMPLE_SIZE} already there`, 'the folder kept the first run');

  // As `npm start` would hold it: a live process's pid in the folder's lock file.
  await writeFile(join(dir, 'pglite.lock'), String(process.pid));
  const held = await seed(env);
  t.equal(held.code, 1);
  t.match(held.stderr, new RegExp(`^seed: failed on embedded PGlite .*: .*is in use by process ${process.pid}\\. PGlite serves one process only`));
});
