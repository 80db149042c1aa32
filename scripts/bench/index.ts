/**
 * `npm run bench`: how much of the underlying stack's speed Plinth keeps. Boots the compiled service
 * (production settings and log level) on the real PostgreSQL and Redis with an embedded Kafka broker, and
 * in the same run the bare baselines of scripts/bench/baseline.ts on the same Node; loads each pair with
 * autocannon (warm-up first) and reports every scenario as a ratio to its baseline, because the machines are
 * shared and noisy: absolute numbers move from run to run, ratios measured minutes apart much less.
 *
 *   npm run bench [-- --duration 10 --warmup 3 --connections 32 --profile]
 *   npm run bench -- --soak [--minutes 10 --rate 1500 --mix mixed|list]
 *     (--rate 0: no limit, i.e. sustained overload; --mix list: only GET /v1/products?limit=20)
 *
 * Needs PostgreSQL (BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/postgres: a database
 * `plinth_bench_<pid>` is created and dropped) and Redis (BENCH_REDIS_URL, default redis://127.0.0.1:6379,
 * keys under a private prefix, removed at the end). Writes the table to bench/results/<time>.md.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon, { type RequestSpec, type Result } from 'autocannon';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import postgres from 'postgres';
import { type EmbeddedBroker, startEmbeddedBroker } from '../../app/core/adapter/kafka.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '3' },
    connections: { type: 'string', default: '32' },
    only: { type: 'string' },
    profile: { type: 'boolean', default: false },
    soak: { type: 'boolean', default: false },
    minutes: { type: 'string', default: '10' },
    rate: { type: 'string', default: '1500' },
    mix: { type: 'string', default: 'mixed' },
    messages: { type: 'string', default: '5000' },
    // Extra settings for the service, e.g. --set LOG_LEVEL=warn, to find what a cost is made of.
    set: { type: 'string', multiple: true, default: [] },
  },
});
const DURATION = Number(args.duration);
const WARMUP = Number(args.warmup);
const CONNECTIONS = Number(args.connections);
const ADMIN = { email: 'bench-admin@example.com', password: 'bench-admin-password' };
const PRODUCTS = 100;
const CATALOG_PAGE = '/v1/products?limit=20';

const baseUrl = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const redisUrl = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const dbName = `plinth_bench_${process.pid}`;
const databaseUrl = (() => {
  const url = new URL(baseUrl);
  url.pathname = `/${dbName}`;
  return url.toString();
})();
const redisPrefix = `plinth-bench-${process.pid}:`;
const children = new Set<ChildProcess>();
const log = (line: string) => process.stderr.write(`bench: ${line}\n`);

// ---------------------------------------------------------------------------------------------- processes

async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  return port;
}

interface Proc {
  child: ChildProcess;
  port: number;
  url: string;
}

function start(
  command: string[],
  env: Record<string, string>,
  ready: RegExp | null,
  port: number,
  extraNodeArgs: string[] = [],
): Promise<Proc> {
  const [file, ...rest] = command;
  const child = spawn(process.execPath, [...extraNodeArgs, file as string, ...rest], {
    cwd: root,
    env: { ...process.env, ...env, PORT: String(port) },
    // The service logs to stdout as it does in production; the bench discards it (a log collector would read it).
    stdio: ['ignore', ready ? 'pipe' : 'ignore', 'pipe'],
  });
  children.add(child);
  child.on('exit', () => children.delete(child));
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  return new Promise((resolve, reject) => {
    const fail = (code: number | null) => reject(new Error(`${command.join(' ')} exited with ${code}:\n${stderr}`));
    child.once('exit', fail);
    const done = () => {
      child.off('exit', fail);
      resolve({ child, port, url: `http://127.0.0.1:${port}` });
    };
    if (ready) {
      let out = '';
      child.stdout?.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        if (ready.test(out)) {
          done();
          child.stdout?.removeAllListeners('data');
          child.stdout?.resume();
        }
      });
    } else {
      void waitForHttp(`http://127.0.0.1:${port}/health/live`, child).then(done, reject);
    }
  });
}

async function waitForHttp(url: string, child: ChildProcess, timeoutMs = 60_000): Promise<number> {
  const started = performance.now();
  while (performance.now() - started < timeoutMs) {
    if (child.exitCode !== null) throw new Error(`process exited with ${child.exitCode} before answering ${url}`);
    try {
      const response = await fetch(url);
      if (response.ok) return performance.now() - started;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms`);
}

async function stop(proc: { child: ChildProcess }): Promise<number | null> {
  if (proc.child.exitCode !== null) return proc.child.exitCode;
  const exited = once(proc.child, 'exit');
  proc.child.kill('SIGTERM');
  const [code] = (await exited) as [number | null];
  return code;
}

const rssMb = (pid: number) => {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
};

function serviceEnv(broker: EmbeddedBroker, extra: Record<string, string> = {}): Record<string, string> {
  return {
    APP_ENV: 'production',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
    DATABASE_URL: databaseUrl,
    REDIS_URL: redisUrl,
    REDIS_PREFIX: redisPrefix,
    KAFKA_BROKERS: broker.bootstrap,
    KAFKA_TOPIC_PREFIX: `bench${process.pid}.`,
    KAFKA_TOPIC_REPLICATION: '1',
    JWT_SECRET: randomBytes(32).toString('hex'),
    ACCESS_TOKEN_TTL_S: '86400',
    // The rate limit stays on (its cost is part of every request) with a ceiling the load cannot reach.
    RATE_LIMIT_MAX: '1000000000',
    SEED_ADMIN_EMAIL: ADMIN.email,
    SEED_ADMIN_PASSWORD: ADMIN.password,
    ...Object.fromEntries((args.set ?? []).map((pair) => pair.split(/=(.*)/s).slice(0, 2))),
    ...extra,
  };
}

/** With --profile, the service and the worker write V8 CPU profiles (summarise them with profile-summary.ts). */
const profileArgs = () => (args.profile ? ['--cpu-prof', `--cpu-prof-dir=${join(root, 'bench', 'results', 'profiles')}`] : []);

// ---------------------------------------------------------------------------------------------- load

interface Load {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
}

async function load(url: string, requests: RequestSpec[], options: { duration?: number } = {}): Promise<Load> {
  const run = (duration: number) =>
    autocannon({ url, connections: CONNECTIONS, duration, requests, timeout: 10 }) as PromiseLike<Result>;
  await run(WARMUP);
  const result = await run(options.duration ?? DURATION);
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
  };
}

async function api<T>(base: string, method: string, path: string, body?: unknown, token?: string): Promise<T> {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: {
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path} -> ${response.status} ${text}`);
  return (text ? JSON.parse(text) : undefined) as T;
}

// ---------------------------------------------------------------------------------------------- report

interface Row {
  scenario: string;
  baseline: string;
  app?: Load;
  base?: Load;
  value?: string;
  ratio?: number;
  target: string;
  pass: boolean;
  note?: string;
}

const fmt = (n: number | undefined, digits = 0) => (n === undefined ? '—' : n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }));
const lat = (l?: Load) => (l ? `${fmt(l.p50, 1)} / ${fmt(l.p99, 1)}` : '—');

function table(rows: Row[], meta: string[]): string {
  const lines = [
    '| scenario | baseline | Plinth req/s | baseline req/s | ratio | target | Plinth p50 / p99 ms | baseline p50 / p99 ms | met |',
    '|---|---|---:|---:|---:|---|---:|---:|:---:|',
    ...rows.map((r) =>
      [
        r.scenario,
        r.baseline,
        r.value ?? fmt(r.app?.rps),
        fmt(r.base?.rps),
        r.ratio === undefined ? '—' : r.ratio.toFixed(2),
        r.target,
        lat(r.app),
        lat(r.base),
        r.pass ? 'yes' : '**no**',
      ].join(' | ').replace(/^/, '| ').replace(/$/, ' |'),
    ),
  ];
  const notes = rows.filter((r) => r.note).map((r) => `- ${r.scenario}: ${r.note}`);
  return [...meta, '', ...lines, '', ...notes].join('\n');
}

// ---------------------------------------------------------------------------------------------- scenarios

async function main() {
  const admin = postgres(baseUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`drop database if exists ${dbName}`);
  await admin.unsafe(`create database ${dbName}`);
  const sql = postgres(databaseUrl, { max: 2, onnotice: () => {} });
  const redis = new Redis(redisUrl);
  const broker = await startEmbeddedBroker({ log: pino({ level: 'warn' }) as never });
  const rows: Row[] = [];
  const wanted = (name: string) => !args.only || name.includes(args.only);
  try {
    log('migrating the bench database');
    const migrate = spawn(process.execPath, ['dist/migrate.js'], { cwd: root, env: { ...process.env, DATABASE_URL: databaseUrl }, stdio: 'inherit' });
    const [code] = (await once(migrate, 'exit')) as [number];
    if (code !== 0) throw new Error('migration failed');

    const app = await start(['dist/main.js'], serviceEnv(broker), null, await freePort(), profileArgs());
    log(`service up at ${app.url}`);

    // Data: an admin (seeded by the service), a customer, a catalog with stock that cannot run out.
    const adminToken = (await api<{ accessToken: string }>(app.url, 'POST', '/v1/auth/login', ADMIN)).accessToken;
    const customer = { email: `bench-${randomUUID()}@example.com`, password: 'bench-customer-pw', name: 'Bench' };
    const registered = await api<{ id: string }>(app.url, 'POST', '/v1/auth/register', customer);
    const token = (await api<{ accessToken: string }>(app.url, 'POST', '/v1/auth/login', { email: customer.email, password: customer.password })).accessToken;
    const productIds: string[] = [];
    for (let i = 0; i < PRODUCTS; i++) {
      const product = await api<{ id: string }>(app.url, 'POST', '/v1/products', {
        sku: `BENCH-${i}`, name: `Bench product ${i}`, description: 'A product of the benchmark catalog', priceCents: 100 + i, stock: 1_000_000_000,
      }, adminToken);
      productIds.push(product.id);
    }
    const hot = productIds[0] as string;
    const cachedJson = await (await fetch(`${app.url}/v1/products/${hot}`)).text();
    await redis.set(`bench-baseline:products:${hot}`, cachedJson);

    const baseEnv = { DATABASE_URL: databaseUrl, REDIS_URL: redisUrl, BENCH_USER_ID: registered.id };
    const baseline = (kind: string) => freePort().then((port) => start(['--import', 'tsx', 'scripts/bench/baseline.ts', kind], baseEnv, /ready/, port));

    type Extra = (row: Row) => void;
    async function pair(scenario: string, kind: string, base: string, target: number, requests: RequestSpec[], extra?: Extra) {
      if (!wanted(scenario)) return;
      const bare = await baseline(kind);
      try {
        log(`${scenario}: baseline`);
        const baseLoad = await load(bare.url, requests);
        log(`${scenario}: Plinth`);
        const appLoad = await load(app.url, requests);
        const ratio = appLoad.rps / baseLoad.rps;
        const clean = appLoad.errors === 0 && appLoad.non2xx === 0;
        const row: Row = { scenario, baseline: base, app: appLoad, base: baseLoad, ratio, target: `≥ ${target.toFixed(2)}`, pass: ratio >= target && clean };
        if (!clean) row.note = `Plinth answered ${appLoad.non2xx} non-2xx and ${appLoad.errors} errors/timeouts`;
        if (baseLoad.errors || baseLoad.non2xx) row.note = `${row.note ?? ''} baseline: ${baseLoad.non2xx} non-2xx, ${baseLoad.errors} errors`.trim();
        extra?.(row);
        rows.push(row);
        log(`${scenario}: ${fmt(appLoad.rps)} vs ${fmt(baseLoad.rps)} req/s, ratio ${ratio.toFixed(2)}`);
      } finally {
        await stop(bare);
      }
    }

    await pair('GET /health/live', 'bare', 'bare Fastify', 0.8, [{ method: 'GET', path: '/health/live' }]);
    await pair('GET /v1/products/:id (cached)', 'redis', 'Fastify + ioredis GET', 0.75, [{ method: 'GET', path: `/v1/products/${hot}` }]);
    await pair('GET /v1/products?limit=20', 'postgres', 'Fastify + postgres.js, same queries', 0.7, [{ method: 'GET', path: CATALOG_PAGE }]);
    let n = 0;
    const orderRequest: RequestSpec = {
      method: 'POST',
      path: '/v1/orders',
      headers: { 'content-type': 'application/json', 'authorization': `Bearer ${token}` },
      setupRequest: (request) => {
        n += 1;
        const productId = productIds[n % PRODUCTS] as string;
        return {
          ...request,
          headers: { ...request.headers, 'idempotency-key': `bench-${process.pid}-${n}` },
          body: JSON.stringify({ items: [{ productId, quantity: 1 }] }),
        };
      },
    };
    await pair('POST /v1/orders', 'orders', 'postgres.js, same transaction', 0.6, [orderRequest], (row) => {
      const p99 = row.app?.p99 ?? Infinity;
      row.target = `≥ 0.60, p99 < 50 ms @ ${CONNECTIONS}`;
      row.pass = row.pass && p99 < 50;
    });

    if (wanted('consumer')) rows.push(await consumerScenario(broker, sql, registered.id));
    await stop(app);
    if (wanted('start')) rows.push(...(await startupScenarios(broker)));
    if (args.soak) rows.push(...(await soak(broker, productIds, baseline)));
  } finally {
    for (const child of children) child.kill('SIGKILL');
    await sql.end({ timeout: 1 });
    await admin.unsafe(`drop database if exists ${dbName} with (force)`).catch(() => {});
    await admin.end({ timeout: 1 });
    const keys = await redis.keys(`${redisPrefix}*`);
    keys.push(...(await redis.keys('bench-baseline:*')));
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
    await broker.stop();
  }

  const meta = [
    `# Plinth benchmark — ${new Date().toISOString()}`,
    '',
    `Node ${process.version}, ${(await import('node:os')).cpus().length} CPUs, autocannon ${CONNECTIONS} connections, ` +
    `${WARMUP} s warm-up + ${DURATION} s measured per run; service: APP_ENV=production, LOG_LEVEL=info (logs written to /dev/null), ` +
    'real PostgreSQL and Redis, embedded Kafka broker. Ratio = Plinth req/s ÷ baseline req/s in the same run.',
  ];
  const report = table(rows, meta);
  const dir = join(root, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${new Date().toISOString().replace(/[:.]/g, '-')}.md`);
  writeFileSync(file, `${report}\n`);
  process.stdout.write(`${report}\n\nwritten to ${file}\n`);
}

/** payments.completed.v1 → orders paid, by the worker and by the bare consumer, over the same number of pending orders. */
async function consumerScenario(broker: EmbeddedBroker, sql: postgres.Sql, _customerId: string): Promise<Row> {
  const count = Number(args.messages);
  const { KafkaJS } = await import('@confluentinc/kafka-javascript');
  const producer = new KafkaJS.Kafka({ kafkaJS: { brokers: [broker.bootstrap], logLevel: KafkaJS.logLevel.NOTHING } }).producer({ 'linger.ms': 5 });
  await producer.connect();

  async function prepare(topic: string): Promise<string> {
    const [user] = await sql`insert into users (email, password_hash, name) values (${`c-${randomUUID()}@example.com`}, 'x', 'consumer bench') returning id`;
    const userId = user!.id as string;
    await sql`insert into orders (user_id, total_cents, idempotency_key)
      select ${userId}, 1000, 'k-' || g from generate_series(1, ${count}) g`;
    const ids = await sql`select id from orders where user_id = ${userId}`;
    for (let i = 0; i < ids.length; i += 1000) {
      await producer.send({
        topic,
        messages: ids.slice(i, i + 1000).map(({ id }) => ({
          key: id as string,
          value: JSON.stringify({ id: randomUUID(), type: 'payments.completed.v1', occurredAt: new Date().toISOString(), version: 1,
            data: { orderId: id, paymentId: `p-${id}`, amountCents: 1000 } }),
          headers: { 'content-type': 'application/json' },
        })),
      });
    }
    return userId;
  }

  /** Messages per second from the first paid order to the last (group join and start-up excluded). */
  async function rate(userId: string): Promise<number> {
    let first: { at: number; paid: number } | undefined;
    const deadline = performance.now() + 300_000;
    while (performance.now() < deadline) {
      const [row] = await sql`select count(*)::int as paid from orders where user_id = ${userId} and status = 'paid'`;
      const paid = row!.paid as number;
      const at = performance.now();
      if (!first && paid > 0) first = { at, paid };
      if (paid >= count && first) return (paid - first.paid) / ((at - first.at) / 1000);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    throw new Error('consumers did not finish within 5 minutes');
  }

  const prefix = `bench${process.pid}.`;
  const appUser = await prepare(`${prefix}payments.completed.v1`);
  const bareTopic = `bench-baseline-${process.pid}.payments.completed.v1`;
  const bareUser = await prepare(bareTopic);
  await producer.disconnect();

  log('consumer: baseline');
  const bare = await start(['--import', 'tsx', 'scripts/bench/baseline.ts', 'consumer'], {
    DATABASE_URL: databaseUrl, REDIS_URL: redisUrl, KAFKA_BROKERS: broker.bootstrap, BENCH_TOPIC: bareTopic,
  }, /ready/, 0);
  const bareRate = await rate(bareUser);
  await stop(bare);
  log('consumer: Plinth worker');
  const worker = await start(['dist/worker.js'], serviceEnv(broker), /worker ready/, 0, profileArgs());
  const appRate = await rate(appUser);
  await stop(worker);
  const ratio = appRate / bareRate;
  log(`consumer: ${fmt(appRate)} vs ${fmt(bareRate)} msg/s`);
  return {
    scenario: `consumer payments.completed.v1 (${count} messages)`,
    baseline: 'same client + the same UPDATE',
    value: `${fmt(appRate)} msg/s`,
    base: { rps: bareRate, p50: NaN, p99: NaN, errors: 0, non2xx: 0 },
    ratio,
    target: '≥ 0.60',
    pass: ratio >= 0.6,
  };
}

/** Spawn to first answer of /health/live, median of 5; idle RSS 3 s after ready. */
async function startupScenarios(broker: EmbeddedBroker): Promise<Row[]> {
  const runs = 5;
  const dataDir = mkdtempSync(join(tmpdir(), 'plinth-bench-pglite-'));
  const embeddedEnv = {
    APP_ENV: 'local', LOG_LEVEL: 'info', PGLITE_DATA_DIR: join(dataDir, 'pglite'), DATABASE_URL: '', REDIS_URL: '', KAFKA_BROKERS: '',
  };
  async function measure(env: Record<string, string>, label: string): Promise<{ ms: number; rss: number }> {
    const times: number[] = [];
    let rss = 0;
    for (let i = 0; i <= runs; i++) {
      const port = await freePort();
      const child = spawn(process.execPath, ['dist/main.js'], { cwd: root, env: { ...process.env, ...env, PORT: String(port) }, stdio: 'ignore' });
      children.add(child);
      const ms = await waitForHttp(`http://127.0.0.1:${port}/health/live`, child);
      // The first run of the embedded database creates its data folder: not a start-up a user repeats.
      if (i > 0) times.push(ms);
      if (i === runs) {
        await new Promise((resolve) => setTimeout(resolve, 3000));
        rss = rssMb(child.pid as number);
      }
      await stop({ child });
    }
    times.sort((a, b) => a - b);
    const median = times[Math.floor(times.length / 2)] as number;
    log(`start-up ${label}: median ${fmt(median)} ms of ${times.map((t) => fmt(t)).join(', ')}; RSS ${fmt(rss)} MB`);
    return { ms: median, rss };
  }
  try {
    const embedded = await measure(embeddedEnv, 'embedded');
    const real = await measure(serviceEnv(broker), 'real services');
    return [
      { scenario: 'start-up to ready, embedded defaults', baseline: '—', value: `${fmt(embedded.ms)} ms`, target: '< 1.5 s', pass: embedded.ms < 1500 },
      { scenario: 'start-up to ready, real services', baseline: '—', value: `${fmt(real.ms)} ms`, target: '< 0.8 s', pass: real.ms < 800 },
      { scenario: 'idle RSS after start, real services', baseline: '—', value: `${fmt(real.rss)} MB`, target: '< 150 MB', pass: real.rss < 150 },
      { scenario: 'idle RSS after start, embedded defaults', baseline: '—', value: `${fmt(embedded.rss)} MB`, target: '(PGlite in process)', pass: true },
    ];
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

type Minute = { latencies: number[]; count: number; errors: number };
const p99 = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length * 0.99)] ?? NaN;
const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

/**
 * Loads `url` for --minutes (at --rate req/s, or as fast as 32 connections allow with --rate 0), in one
 * long-lived target process; returns the first and last whole minute's responses and the process's RSS
 * after the first minute and at the end.
 */
async function sustain(label: string, url: string, pid: number, requests: RequestSpec[]) {
  const minutes = Number(args.minutes);
  const rate = Number(args.rate);
  const perMinute: Minute[] = [];
  const rss: number[] = [];
  const started = performance.now();
  const minuteOf = () => Math.floor((performance.now() - started) / 60_000);
  const pacing = rate > 0 ? { overallRate: rate } : {};
  const instance = autocannon({ url, connections: 32, ...pacing, duration: minutes * 60, requests, timeout: 10 });
  instance.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
    const bucket = (perMinute[minuteOf()] ??= { latencies: [], count: 0, errors: 0 });
    bucket.count += 1;
    bucket.latencies.push(ms);
    if (status >= 400) bucket.errors += 1;
  });
  const sampler = setInterval(() => rss.push(rssMb(pid)), 10_000);
  const result = await instance;
  clearInterval(sampler);
  // Whole minutes only: responses that arrive after the duration form a partial bucket of their own.
  const whole = perMinute.slice(0, minutes).filter(Boolean);
  for (const [m, bucket] of whole.entries()) {
    log(`${label} minute ${m + 1}: ${fmt(bucket.count / 60)} req/s, p99 ${fmt(p99(bucket.latencies), 1)} ms, ${bucket.errors} errors`);
  }
  const first = whole[0];
  const last = whole[whole.length - 1];
  if (!first || !last || whole.length < 2) throw new Error(`${label} needs at least two whole minutes of responses`);
  const errors = perMinute.filter(Boolean).reduce((sum, m) => sum + m.errors, 0) + result.errors + result.timeouts;
  const warmRss = rss[Math.min(6, rss.length - 1)] ?? NaN; // sampled every 10 s: the 7th is after the first minute
  const lastRss = rss[rss.length - 1] ?? NaN;
  return { first, last, warmRss, lastRss, errors, throughputChange: last.count / first.count - 1 };
}

/** The soak's mix: 70% cached product reads, 20% catalog pages, 10% orders by a customer of its own. */
async function mixedRequests(url: string, productIds: string[]): Promise<RequestSpec[]> {
  const customer = { email: `soak-${randomUUID()}@example.com`, password: 'bench-customer-pw', name: 'Soak' };
  await api(url, 'POST', '/v1/auth/register', customer);
  const token = (await api<{ accessToken: string }>(url, 'POST', '/v1/auth/login', { email: customer.email, password: customer.password })).accessToken;
  let n = 0;
  return [
    {
      method: 'GET',
      path: '/',
      headers: {},
      setupRequest: (): RequestSpec => {
        n += 1;
        const productId = productIds[n % productIds.length] as string;
        if (n % 10 === 0) {
          return {
            method: 'POST',
            path: '/v1/orders',
            headers: { 'content-type': 'application/json', 'authorization': `Bearer ${token}`, 'idempotency-key': `soak-${process.pid}-${n}` },
            body: JSON.stringify({ items: [{ productId, quantity: 1 }] }),
          };
        }
        return { method: 'GET', path: n % 10 < 3 ? CATALOG_PAGE : `/v1/products/${productId}`, headers: {} };
      },
    },
  ];
}

/**
 * The soak mix at a fixed rate for --minutes; compares the first and the last minute.
 * `--rate 0` sends as fast as the 32 connections allow: the same comparison under sustained overload.
 * `--mix list` sends only catalog pages, to the bare postgres.js baseline first and then to Plinth.
 */
async function soak(broker: EmbeddedBroker, productIds: string[], baseline: (kind: string) => Promise<Proc>): Promise<Row[]> {
  const minutes = Number(args.minutes);
  const rate = Number(args.rate);
  const listOnly = args.mix === 'list';
  const catalogOnly: RequestSpec[] = [{ method: 'GET', path: CATALOG_PAGE, headers: {} }];
  const pace = `${rate > 0 ? `${rate} req/s` : 'no rate limit (overload)'}${listOnly ? ', catalog pages only' : ''}`;
  log(`soak: ${minutes} min at ${pace}`);
  const rows: Row[] = [];
  if (listOnly) {
    const bare = await baseline('postgres');
    try {
      const base = await sustain('soak baseline', bare.url, bare.child.pid as number, catalogOnly);
      rows.push({
        scenario: `soak baseline (Fastify + postgres.js, same queries) @ ${pace}: throughput last vs first minute`, baseline: '—',
        value: `${fmt(base.first.count / 60)} → ${fmt(base.last.count / 60)} req/s (${pct(base.throughputChange)}), `
          + `RSS ${fmt(base.warmRss)} → ${fmt(base.lastRss)} MB, ${base.errors} errors`,
        target: 'no slowdown over 10%', pass: base.throughputChange >= -0.1,
      });
    } finally {
      await stop(bare);
    }
  }
  const app = await start(['dist/main.js'], serviceEnv(broker), null, await freePort());
  let run: Awaited<ReturnType<typeof sustain>>;
  try {
    const requests = listOnly ? catalogOnly : await mixedRequests(app.url, productIds);
    run = await sustain('soak', app.url, app.child.pid as number, requests);
  } finally {
    await stop(app);
  }
  const { first, last, warmRss, lastRss } = run;
  const p99Change = p99(last.latencies) / p99(first.latencies) - 1;
  const rssGrowth = lastRss / warmRss - 1;
  return [
    ...rows,
    {
      scenario: `soak ${minutes} min @ ${pace}: throughput last vs first minute`, baseline: '—',
      value: `${fmt(first.count / 60)} → ${fmt(last.count / 60)} req/s (${pct(run.throughputChange)})`, target: 'within 10%', pass: Math.abs(run.throughputChange) <= 0.1,
    },
    {
      scenario: 'soak: p99 last vs first minute', baseline: '—',
      value: `${fmt(p99(first.latencies), 1)} → ${fmt(p99(last.latencies), 1)} ms (${pct(p99Change)})`, target: 'within 10%', pass: p99Change <= 0.1,
    },
    { scenario: 'soak: RSS growth after warm-up', baseline: '—', value: `${fmt(warmRss)} → ${fmt(lastRss)} MB (${pct(rssGrowth)})`, target: '< 10%', pass: rssGrowth < 0.1 },
    { scenario: 'soak: error answers', baseline: '—', value: String(run.errors), target: '0', pass: run.errors === 0 },
  ];
}

process.on('SIGINT', () => {
  for (const child of children) child.kill('SIGKILL');
  process.exit(130);
});

await main();
