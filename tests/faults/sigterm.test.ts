import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { Agent, request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { and, eq, inArray, sql } from 'drizzle-orm';
import postgres from 'postgres';
import t from 'tap';
import { startEmbeddedBroker } from '../../app/core/adapter/kafka.js';
import { processedEvents } from '../../app/core/service/consumers/model.js';
import { orders } from '../../app/orders/model.js';
import { connectTestDatabase } from '../helpers/db.js';
import { errorShapeProblems } from '../helpers/error-shape.js';
import { REDIS_URL, testDatabaseUrl, testRedisPrefix } from '../helpers/infra.js';
import { buildWorker, envelope, testProducer } from '../helpers/kafka.js';
import { startLoad } from '../helpers/load.js';
import { freePort } from '../helpers/net.js';
import { PASSWORD, uniqueEmail } from '../helpers/users.js';
import { waitFor } from '../helpers/wait.js';

/*
 * SIGTERM during load, on the real entry points (`node dist/main.js`, `node dist/worker.js`, compiled here as
 * `npm start` does): requests already in flight complete, new connections are refused, the worker finishes and
 * commits what it handled and leaves its group, and both processes exit 0 within SHUTDOWN_GRACE_MS.
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const GRACE_MS = 8000;

interface Proc {
  child: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
}

function run(script: string, env: Record<string, string>): Proc {
  const child = spawn(process.execPath, [script], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = once(child, 'exit').then(([code, signal]) => ({
    code: code as number | null,
    signal: signal as NodeJS.Signals | null,
    at: performance.now(),
  }));
  return { child, output: () => output, exited };
}

interface Answer {
  status: number;
  headers: Record<string, unknown>;
  body: string;
}

interface CallOptions {
  body?: unknown;
  headers?: Record<string, string>;
}

function call(port: number, agent: Agent, method: string, path: string, options: CallOptions = {}) {
  return new Promise<Answer>((resolve, reject) => {
    const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        agent,
        headers: { ...(payload ? { 'content-type': 'application/json' } : {}), ...options.headers },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

t.test('SIGTERM during load: the API and the worker finish their work and exit 0', async (t) => {
  const build = spawn(process.execPath, [fileURLToPath(new URL('../../node_modules/typescript/bin/tsc', import.meta.url)), '-p', 'tsconfig.build.json'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let buildOutput = '';
  build.stdout.on('data', (chunk: Buffer) => (buildOutput += chunk.toString()));
  const [buildCode] = await once(build, 'exit');
  t.equal(buildCode, 0, `the service compiles (tsc -p tsconfig.build.json) ${buildOutput}`);

  const broker = await startEmbeddedBroker();
  t.teardown(() => broker.stop());
  const port = await freePort();
  const adminEmail = uniqueEmail('admin');
  const env = {
    APP_ENV: 'test',
    HOST: '127.0.0.1',
    PORT: String(port),
    LOG_LEVEL: 'info',
    DATABASE_URL: await testDatabaseUrl(),
    REDIS_URL,
    REDIS_PREFIX: testRedisPrefix(),
    KAFKA_BROKERS: broker.bootstrap,
    SHUTDOWN_GRACE_MS: String(GRACE_MS),
    SEED_ADMIN_EMAIL: adminEmail,
    SEED_ADMIN_PASSWORD: PASSWORD,
  };
  const api = run('dist/main.js', env);
  const worker = run('dist/worker.js', env);
  t.teardown(() => {
    for (const p of [api, worker]) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  });
  const agent = new Agent({ keepAlive: true, maxSockets: 16 });
  t.teardown(() => agent.destroy());
  await waitFor(async () => (await call(port, agent, 'GET', '/health/ready').catch(() => undefined))?.status === 200, 30_000,
    `the API to be ready (output: ${api.output().slice(-500)})`);
  await waitFor(() => worker.output().includes('worker ready'), 30_000, 'the worker to be ready');

  // A buyer, an admin and a product, through the API.
  const email = uniqueEmail('buyer');
  t.equal((await call(port, agent, 'POST', '/v1/auth/register', { body: { email, password: PASSWORD, name: 'Buyer' } })).status, 201, 'a buyer');
  const token = async (who: string) =>
    JSON.parse((await call(port, agent, 'POST', '/v1/auth/login', { body: { email: who, password: PASSWORD } })).body).accessToken as string;
  const buyer = { authorization: `Bearer ${await token(email)}` };
  const admin = { authorization: `Bearer ${await token(adminEmail)}` };
  const created = await call(port, agent, 'POST', '/v1/products', {
    headers: admin,
    body: { sku: `sku-${randomUUID().slice(0, 8)}`, name: 'Lamp', priceCents: 900, stock: 100_000 },
  });
  t.equal(created.status, 201, 'a product');
  const productId = JSON.parse(created.body).id as string;
  const held = await call(port, agent, 'POST', '/v1/products', {
    headers: admin,
    body: { sku: `sku-${randomUUID().slice(0, 8)}`, name: 'Held', priceCents: 500, stock: 100 },
  });
  const heldId = JSON.parse(held.body).id as string;
  const order = (product = productId, id: string = randomUUID()) =>
    call(port, agent, 'POST', '/v1/orders', {
      headers: { ...buyer, 'idempotency-key': randomUUID(), 'x-request-id': id },
      body: { items: [{ productId: product, quantity: 1 }] },
    });

  // Load: cached product reads and orders, back to back, each with a request id of ours to find it in the API's log.
  const answers: (Answer & { sentAt: number })[] = [];
  const lost: { id: string; sentAt: number; error: string }[] = [];
  const load = startLoad(async (n) => {
    const sentAt = performance.now();
    const id = `load-${n}`;
    try {
      const answer = n % 2
        ? await order(productId, id)
        : await call(port, agent, 'GET', `/v1/products/${productId}`, { headers: { 'x-request-id': id } });
      answers.push({ ...answer, sentAt });
      return answer.status;
    } catch (error) {
      lost.push({ id, sentAt, error: (error as Error).message });
      throw error;
    }
  }, 4);
  await waitFor(() => load.count(201) >= 20, 20_000, '20 orders under load');

  // Requests certainly in flight at SIGTERM: orders of a second product whose row the test keeps locked.
  const database = await connectTestDatabase(t, 1);
  const holder = postgres(await testDatabaseUrl(), { max: 1, onnotice: () => {} });
  t.teardown(() => holder.end({ timeout: 1 }));
  const session = await holder.reserve();
  await session`begin`;
  await session`select 1 from products where id = ${heldId} for update`;
  const inFlight = Array.from({ length: 5 }, () => order(heldId));
  await waitFor(async () => {
    const [row] = await database.query<{ n: number }>(sql`
      select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`);
    return (row?.n ?? 0) >= 5;
  }, 10_000, 'the five orders to wait on the row lock inside the API');

  const sigterm = performance.now();
  api.child.kill('SIGTERM');
  await waitFor(() => api.output().includes('shutting down'), 5000, 'the API to start shutting down');
  const refused = await new Promise<string>((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.on('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
  t.equal(refused, 'ECONNREFUSED', 'a new connection is refused once shutdown began');

  await session`rollback`;
  session.release();
  const completed = await Promise.all(inFlight);
  t.same(completed.map((a) => a.status), [201, 201, 201, 201, 201], 'every request in flight at SIGTERM completed (201)');
  const apiExit = await api.exited;
  t.same({ code: apiExit.code, signal: apiExit.signal }, { code: 0, signal: null }, `the API exited 0 (output: ${api.output().slice(-300)})`);
  t.ok(apiExit.at - sigterm < GRACE_MS, `within SHUTDOWN_GRACE_MS (${Math.round(apiExit.at - sigterm)} ms)`);

  await load.stop();
  // A request the API accepted (it logged it) must have got its answer. One still in the kernel's buffer when the
  // server closed its idle keep-alive connection was never accepted: the client sees a reset and may retry it.
  const handled = new Set([...api.output().matchAll(/"requestId":"(load-\d+)"/g)].map((m) => m[1]));
  t.ok(handled.size >= answers.length / 2, `the API logged the load's requests (${handled.size})`);
  t.same(lost.filter((l) => handled.has(l.id)), [], 'no request the API accepted lost its connection');
  t.comment(`load: ${answers.length} answered, ${lost.length} refused or reset (${lost.filter((l) => l.sentAt < sigterm).length} sent before SIGTERM)`);
  t.ok(answers.some((a) => a.sentAt > sigterm) || lost.length > 0, 'the load went on after SIGTERM');
  const malformed = answers
    .filter((a) => a.status >= 400)
    .map((a) => ({ status: a.status, problems: errorShapeProblems({ statusCode: a.status, headers: a.headers, body: a.body }) }))
    .filter((a) => a.status !== 503 || a.problems.length > 0);
  t.same(malformed, [], 'the only error answers are well-formed 503s of the shutdown');

  // The worker: payments for the orders, SIGTERM once it is working through them.
  const placed = await database.db.select({ id: orders.id, total: orders.totalCents }).from(orders).where(eq(orders.status, 'pending'));
  const producer = await testProducer(t, broker.bootstrap);
  const payments = placed.map((o) => envelope('payments.completed.v1', { orderId: o.id, paymentId: randomUUID(), amountCents: o.total }));
  await Promise.all(payments.map((p) => producer.sendEvent('payments.completed.v1', p.data.orderId, p)));
  const paid = async () => {
    const [row] = await database.query<{ n: number }>(sql`select count(*)::int as n from orders where status = 'paid'`);
    return row?.n ?? 0;
  };
  await waitFor(async () => (await paid()) >= 1, 30_000, 'the worker to pay a first order');
  const workerTerm = performance.now();
  worker.child.kill('SIGTERM');
  const workerExit = await worker.exited;
  t.same({ code: workerExit.code, signal: workerExit.signal }, { code: 0, signal: null }, 'the worker exited 0');
  t.ok(workerExit.at - workerTerm < GRACE_MS, `within SHUTDOWN_GRACE_MS (${Math.round(workerExit.at - workerTerm)} ms)`);
  t.match(worker.output(), /shutting down/, 'after finishing its in-flight work');

  // A new worker in the same group takes over from the committed offsets: nothing handled before is handled again.
  const handledBefore = await paid();
  const successor = await buildWorker(t, { KAFKA_BROKERS: broker.bootstrap });
  await waitFor(async () => (await paid()) === placed.length, 60_000, `all ${placed.length} orders to be paid`);
  const stats = successor.consumers.stats()['payments-completed'];
  t.equal(stats?.duplicates, 0, `the successor got no message the first worker had committed (${handledBefore} were done before)`);
  t.equal((stats?.processed ?? 0) + handledBefore, placed.length, 'together they paid each order once');
  const rows = await database.db
    .select({ n: sql<number>`count(*)::int` })
    .from(processedEvents)
    .where(and(eq(processedEvents.consumer, 'payments-completed'), inArray(processedEvents.eventId, payments.map((p) => p.id))));
  t.equal(rows[0]?.n, placed.length, 'one processed_events row per payment');
});
