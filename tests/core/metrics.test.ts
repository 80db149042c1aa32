import { sql as drizzleSql } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import postgres from 'postgres';
import t from 'tap';
import type { ConsumerStats } from '../../app/core/service/consumers/runtime.js';
import { build } from '../helpers/app.js';
import { uniqueSku } from '../helpers/catalog.js';
import { testDatabaseUrl } from '../helpers/infra.js';
import { envelope, testProducer, waitFor } from '../helpers/kafka.js';
import { deferred } from '../helpers/wait.js';

/** /metrics after real traffic: HTTP requests, process series, the database pool, the outbox and the consumers. */

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a Prometheus text exposition. */
function parse(body: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of body.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) continue;
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[key as string] = value as string;
    samples.push({ name: match[1] as string, labels, value: Number(match[3]) });
  }
  return samples;
}

async function scrape(app: FastifyInstance): Promise<Sample[]> {
  const response = await app.inject({ method: 'GET', url: '/metrics' });
  if (response.statusCode !== 200) throw new Error(`/metrics answered ${response.statusCode}: ${response.body}`);
  return parse(response.body);
}

/** The value of the one sample named `name` whose labels include `labels`; undefined when there is none. */
function valueOf(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (found.length > 1) throw new Error(`${found.length} samples of ${name} match ${JSON.stringify(labels)}`);
  return found[0]?.value;
}

t.test('GET /metrics: requests by route pattern with latency, process, event loop, heap and outbox backlog', async (t) => {
  const app = await build(t);
  const id = '00000000-0000-4000-8000-000000000000';
  await app.inject({ method: 'GET', url: `/v1/products/${id}` });
  await app.inject({ method: 'GET', url: `/v1/products/${id.replace(/0$/, '1')}` });
  await app.inject({ method: 'GET', url: '/health/live' });
  const response = await app.inject({ method: 'GET', url: '/metrics' });
  t.equal(response.statusCode, 200);
  t.match(response.headers['content-type'], /text\/plain/);
  t.notMatch(response.body, new RegExp(id), 'raw ids never become labels');
  const samples = parse(response.body);

  const route = { method: 'GET', route: '/v1/products/:id', status: '404', service: 'plinth' };
  t.equal(valueOf(samples, 'http_requests_total', route), 2, 'two requests counted under the route pattern');
  t.equal(valueOf(samples, 'http_request_duration_seconds_count', route), 2, 'and observed by the latency histogram');
  t.equal(valueOf(samples, 'http_request_duration_seconds_bucket', { ...route, le: '+Inf' }), 2);
  t.ok(valueOf(samples, 'http_request_duration_seconds_bucket', { ...route, le: '0.001' }) !== undefined, 'with buckets');
  t.equal(valueOf(samples, 'http_requests_total', { route: '/health/live', status: '200' }), 1);

  for (const name of ['nodejs_heap_size_used_bytes', 'nodejs_heap_size_total_bytes', 'process_resident_memory_bytes']) {
    t.ok((valueOf(samples, name) ?? 0) > 0, `${name} > 0`);
  }
  t.ok(samples.some((s) => s.name === 'nodejs_heap_space_size_used_bytes' && s.labels.space === 'old'), 'heap by space');
  t.type(valueOf(samples, 'nodejs_eventloop_lag_seconds'), 'number', 'event-loop lag');
  t.type(valueOf(samples, 'nodejs_eventloop_lag_p99_seconds'), 'number', 'event-loop lag percentiles');
  t.ok((valueOf(samples, 'outbox_backlog') ?? -1) >= 0, 'outbox backlog');
  t.equal(valueOf(samples, 'cache_operations_total', { kind: 'misses' }), 2, 'the cache missed both products');
  t.match(response.body, /# TYPE cache_operations_total counter/);
});

t.test('database pool: the configured max, and connections in use and idle as PostgreSQL sees them', async (t) => {
  const app = await build(t, { env: { DATABASE_POOL_MAX: '7' } });
  const before = await scrape(app);
  t.equal(valueOf(before, 'db_pool_max'), 7);
  const open = (samples: Sample[]) =>
    (valueOf(samples, 'db_pool_connections', { state: 'in_use' }) ?? NaN) + (valueOf(samples, 'db_pool_connections', { state: 'idle' }) ?? NaN);
  t.ok(open(before) >= 1 && open(before) <= 7, `between 1 and 7 connections open (${open(before)})`);

  // Three transactions held open at once: three connections are in use whatever else the app does.
  const HELD = 3;
  const release = deferred<void>();
  const started: Promise<void>[] = [];
  const holding = Array.from({ length: HELD }, () => {
    const begun = deferred<void>();
    started.push(begun.promise);
    return app.db.transaction(async (tx) => {
      await tx.execute(drizzleSql`select 1`);
      begun.resolve();
      await release.promise;
    });
  });
  await Promise.all(started);
  const during = await scrape(app);
  release.resolve();
  await Promise.all(holding);
  const inUse = valueOf(during, 'db_pool_connections', { state: 'in_use' }) ?? 0;
  t.ok(inUse >= HELD, `at least ${HELD} connections in use while the transactions are open (${inUse})`);
  t.ok(open(during) <= 7, 'never more than the pool max');
});

t.test('embedded PostgreSQL (PGlite) has no pool: no pool series, and the scrape still answers', async (t) => {
  const app = await build(t, { embedded: true });
  const samples = await scrape(app);
  t.equal(valueOf(samples, 'db_pool_max'), undefined);
  t.notOk(samples.some((s) => s.name === 'db_pool_connections'));
  t.ok((valueOf(samples, 'outbox_backlog') ?? -1) >= 0);
});

t.test('consumers: processed/failed/dlq counters and the lag per topic and partition', async (t) => {
  const app = await build(t, { env: { CONSUMERS_IN_API: 'true' } });
  const producer = await testProducer(t, app.kafka.brokers);
  const topic = app.kafka.topic('inventory.adjusted.v1');
  const consumer = 'inventory-adjusted';
  const stats = () => app.consumers.stats()[consumer] as ConsumerStats;
  const lagOf = async (partition: number) =>
    valueOf(await scrape(app), 'kafka_consumer_lag', { consumer, topic, partition: String(partition) });

  // The group's first join takes ~3 s on the embedded broker: wait until the partitions are assigned and reported.
  const assigned = await waitFor(async () => {
    const lags = (await scrape(app)).filter((s) => s.name === 'kafka_consumer_lag' && s.labels.topic === topic);
    return lags.length > 0 && lags;
  }, 'the consumer to report lag for its partitions');
  t.ok(assigned.every((s) => s.value === 0), 'no lag before anything is produced');
  t.ok(assigned.length >= 1, `${assigned.length} partitions reported`);

  // A lock on the product's row holds the handler of the first message, so the messages stay uncommitted.
  const product = await app.products.create({ sku: uniqueSku('lag'), name: 'Lag', priceCents: 100, stock: 10 });
  const sql = postgres(await testDatabaseUrl(), { max: 1, onnotice: () => {} });
  t.teardown(() => sql.end({ timeout: 1 }));
  const locked = deferred<void>();
  const release = deferred<void>();
  const holder = sql.begin(async (tx) => {
    await tx`select id from products where id = ${product.id} for update`;
    locked.resolve();
    await release.promise;
  });
  await locked.promise;

  const MESSAGES = 3;
  let partition = -1;
  for (let i = 0; i < MESSAGES; i++) {
    const ack = await producer.sendEvent(topic, product.sku, envelope('inventory.adjusted.v1', { sku: product.sku, delta: 1 }));
    partition = ack.partition;
  }
  const stuck = await waitFor(async () => (await lagOf(partition)) === MESSAGES && MESSAGES, 'the lag to show the held messages');
  t.equal(stuck, MESSAGES, `lag ${MESSAGES} on partition ${partition} while the handler is held`);
  t.equal(stats().processed, 0, 'nothing processed yet');

  release.resolve();
  await holder;
  await waitFor(() => stats().processed === MESSAGES || undefined, 'the held messages to be processed');
  await waitFor(async () => (await lagOf(partition)) === 0, 'the lag to drop to 0 once the offsets are committed');
  t.pass('lag back to 0 after consumption');

  // One message that is not JSON and one naming an unknown sku (a handler failure that no retry can fix): both DLQ.
  await producer.send(topic, [{ key: 'bad', value: 'not json' }]);
  await producer.sendEvent(topic, 'nope', envelope('inventory.adjusted.v1', { sku: uniqueSku('missing'), delta: 1 }));
  await waitFor(() => stats().dlq === 2 || undefined, 'both messages to reach the DLQ');

  const samples = await scrape(app);
  const counted = (outcome: string) => valueOf(samples, 'consumer_messages_total', { consumer, outcome });
  t.equal(counted('processed'), MESSAGES);
  t.equal(counted('failed'), 1, 'the unknown sku failed its one attempt');
  t.equal(counted('dlq'), 2);
  t.equal(counted('duplicates'), 0);
  t.match((await app.inject({ method: 'GET', url: '/metrics' })).body, /# TYPE consumer_messages_total counter/);
  // Offsets are committed every CONSUMER_COMMIT_INTERVAL_MS, so the lag reaches 0 at the next commit.
  const caughtUp = async () => {
    const lags = (await scrape(app)).filter((s) => s.name === 'kafka_consumer_lag' && s.labels.topic === topic);
    return lags.length > 0 && lags.every((s) => s.value === 0) ? true : undefined;
  };
  t.ok(await waitFor(caughtUp, 'every partition to catch up'), 'every partition caught up');
});

t.test('GET /health/ready reports the outbox backlog beside the checks', async (t) => {
  const app = await build(t);
  const response = await app.inject({ method: 'GET', url: '/health/ready' });
  t.equal(response.statusCode, 200);
  const body = response.json();
  t.same(body.checks, { db: 'ok', redis: 'ok', kafka: 'ok', outbox: 'ok' });
  t.type(body.outboxBacklog, 'number');
});
