import postgres from 'postgres';
import t from 'tap';
import { build } from '../helpers/app.js';
import { createProduct, orderRequest } from '../helpers/catalog.js';
import { errorShapeProblems } from '../helpers/error-shape.js';
import { POSTGRES_URL, testDatabaseUrl } from '../helpers/infra.js';
import { type Outcome, startLoad, tally } from '../helpers/load.js';
import { startProxy } from '../helpers/proxy.js';
import { createAdmin, createUser } from '../helpers/users.js';
import { waitFor } from '../helpers/wait.js';

/*
 * PostgreSQL connections killed mid-load (pg_terminate_backend on this file's own database only), then the server
 * unreachable for a while (a proxy between the app and PostgreSQL refuses connections): failed requests get 503
 * DATABASE_UNAVAILABLE in the api.md shape (never a 500, never internals), /health/ready goes 503, and the service
 * recovers by itself once PostgreSQL is back.
 */

t.test('PostgreSQL connections killed mid-load, then PostgreSQL gone and back', async (t) => {
  const url = new URL(await testDatabaseUrl());
  const database = url.pathname.slice(1);
  const proxy = await startProxy(t, { host: url.hostname, port: Number(url.port || 5432) });
  url.port = String(proxy.port);
  const app = await build(t, {
    env: { DATABASE_URL: url.toString(), DATABASE_CONNECT_TIMEOUT_MS: '1000', DATABASE_STATEMENT_TIMEOUT_MS: '2000' },
  });
  const admin = await createAdmin(app);
  const user = await createUser(app);
  const product = await createProduct(app, admin, { stock: 100_000, priceCents: 100 });

  // The test's own connection to the server, not through the proxy, for killing the app's sessions.
  const killer = postgres(POSTGRES_URL, { max: 1, onnotice: () => {} });
  t.teardown(() => killer.end({ timeout: 1 }));
  const terminate = async () => {
    const rows = await killer<{ killed: boolean }[]>`
      select pg_terminate_backend(pid) as killed from pg_stat_activity
      where datname = ${database} and pid <> pg_backend_pid()`;
    return rows.filter((r) => r.killed).length;
  };

  const failures: { status: number; body: string; headers: Record<string, unknown> }[] = [];
  const routes = [
    () => app.inject({ method: 'GET', url: '/v1/products?limit=5' }),
    () => app.inject({ method: 'GET', url: '/v1/orders?limit=5', headers: user.auth }),
    () => app.inject(orderRequest(user, [{ productId: product.id, quantity: 1 }])),
    () => app.inject({ method: 'GET', url: '/v1/users/me', headers: user.auth }),
  ];
  const send = async (n: number) => {
    const response = await routes[n % routes.length]!();
    if (response.statusCode >= 400) {
      failures.push({ status: response.statusCode, body: response.body, headers: response.headers });
    }
    return response.statusCode;
  };

  const succeeding = (outcomes: Outcome[]) =>
    outcomes.length >= 40 && outcomes.slice(-40).every((o) => o.status === 200 || o.status === 201);

  t.test('killed mid-load: failed requests are 503, the pool reconnects by itself', async (t) => {
    const load = startLoad(send, 6);
    await waitFor(() => load.outcomes.length >= 100, 20_000, '100 requests before the kill');
    let killed = 0;
    for (let round = 0; round < 5; round += 1) {
      const atKill = load.outcomes.length;
      killed += await terminate();
      await waitFor(() => load.outcomes.length >= atKill + 30, 20_000, 'requests after a kill');
    }
    t.ok(killed >= 5, `the app's connections were terminated (${killed} sessions)`);
    // Recovered by itself: 40 successes in a row, within a bound.
    await waitFor(() => succeeding(load.outcomes), 20_000, '40 successful requests in a row after the kills');
    const outcomes = await load.stop();
    const counts = tally(outcomes);
    t.same(Object.keys(counts).filter((s) => !['200', '201', '503'].includes(s)), [], `only 200/201/503 (${JSON.stringify(counts)})`);
    t.pass('the service recovered by itself');
  });

  t.test('PostgreSQL unreachable: 503 and not ready; back: ready and serving again', async (t) => {
    proxy.setMode('down');
    await terminate();
    const load = startLoad(send, 4);
    await waitFor(() => load.count(503) >= 12, 20_000, '12 answers of 503 while PostgreSQL is unreachable');
    const ready = await app.inject({ method: 'GET', url: '/health/ready' });
    t.equal(ready.statusCode, 503, '/health/ready is 503');
    t.equal(ready.json<{ checks: Record<string, string> }>().checks.db, 'down', 'and says the database is down');
    const live = await app.inject({ method: 'GET', url: '/health/live' });
    t.equal(live.statusCode, 200, 'the process itself is alive');

    proxy.setMode('pass');
    await waitFor(async () => (await app.inject({ method: 'GET', url: '/health/ready' })).statusCode === 200, 20_000, 'ready again');
    await waitFor(() => succeeding(load.outcomes), 20_000, '40 successful requests in a row after PostgreSQL came back');
    const outcomes = await load.stop();
    const counts = tally(outcomes);
    t.same(Object.keys(counts).filter((s) => !['200', '201', '503'].includes(s)), [], `only 200/201/503 (${JSON.stringify(counts)})`);
    t.pass('serving again without a restart');
  });

  t.test('every failure was a well-formed 503 DATABASE_UNAVAILABLE', async (t) => {
    t.ok(failures.length > 0, `there were failures to look at (${failures.length})`);
    const wrong = failures
      .map((f) => ({ status: f.status, problems: errorShapeProblems({ ...f, statusCode: f.status }), f }))
      .filter((x) => x.problems.length > 0 || x.status !== 503 || JSON.parse(x.f.body).code !== 'DATABASE_UNAVAILABLE');
    t.same(wrong.slice(0, 5).map((w) => ({ status: w.status, problems: w.problems, body: w.f.body })), [], 'no malformed or non-503 failure');
    t.ok(failures.every((f) => f.headers['retry-after'] === '1'), 'each carries Retry-After');
  });
});
