import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { and, eq } from 'drizzle-orm';
import postgres from 'postgres';
import t from 'tap';
import Type from 'typebox';
import { startEmbeddedBroker } from '../../app/core/adapter/kafka.js';
import { ConflictError } from '../../app/core/base/errors.js';
import { processedEvents } from '../../app/core/service/consumers/model.js';
import { type ConsumerDefinition, createConsumerRuntime, defineConsumer } from '../../app/core/service/consumers/runtime.js';
import { products } from '../../app/products/model.js';
import { build } from '../helpers/app.js';
import { uniqueSku } from '../helpers/catalog.js';
import { testDatabaseUrl } from '../helpers/infra.js';
import { buildWorker, envelope, readTopics, testProducer, waitFor } from '../helpers/kafka.js';

/**
 * The consumer runtime (app/core/service/consumers/runtime.ts) with consumers of the test's own, on the app's embedded
 * broker over TCP and PostgreSQL: retries with exponential backoff, the DLQ after the last attempt or at once for a 4xx,
 * dedupe by envelope id, and a graceful stop of the worker.
 */

// Consumers off: the runtime under test is the only one.
const app = await build(t);
const producer = await testProducer(t, app.kafka.brokers);

const RETRY_BASE_MS = 40;
const MAX_ATTEMPTS = 3;
const Data = Type.Object({ sku: Type.String({ minLength: 1 }), delta: Type.Integer() });

async function stockOf(id: string): Promise<number | undefined> {
  const [row] = await app.db.select({ stock: products.stock }).from(products).where(eq(products.id, id));
  return row?.stock;
}

const newProduct = (stock = 10) => app.products.create({ sku: uniqueSku('rt'), name: 'Runtime test', priceCents: 100, stock });

/** What a test consumer's handler saw: when each attempt started, and when each failed one threw. */
interface Calls {
  at: number[];
  threw: number[];
}

/**
 * A test consumer on its own topic: `behaviour(attempt)` runs after the handler's write (stock += delta through the
 * products service, in the handler's transaction), so a throw there also shows the write is rolled back.
 */
function testConsumer(name: string, behaviour: (attempt: number) => void) {
  const calls: Calls = { at: [], threw: [] };
  const definition = defineConsumer({
    name,
    topic: `test.${name}.v1`,
    data: Data,
    async handle({ data }, { app, write }) {
      calls.at.push(performance.now());
      await app.products.adjustStockBySku(data.sku, data.delta, write);
      try {
        behaviour(calls.at.length);
      } catch (error) {
        calls.threw.push(performance.now());
        throw error;
      }
    },
  });
  return { definition: definition as unknown as ConsumerDefinition, calls, topic: app.kafka.topic(definition.topic) };
}

const flaky = testConsumer('flaky', (attempt) => {
  if (attempt <= 2) throw new Error(`transient failure ${attempt}`);
});
const broken = testConsumer('broken', () => {
  throw new Error('still broken');
});
const refused = testConsumer('refused', () => {
  throw new ConflictError('this can never work');
});

const runtime = createConsumerRuntime({
  app,
  kafka: app.kafka,
  db: app.db,
  log: app.log,
  definitions: [flaky.definition, broken.definition, refused.definition],
  groupPrefix: `runtime-test-${randomBytes(3).toString('hex')}`,
  maxAttempts: MAX_ATTEMPTS,
  commitIntervalMs: app.settings.CONSUMER_COMMIT_INTERVAL_MS,
  concurrency: app.settings.CONSUMER_CONCURRENCY,
  retryBaseMs: RETRY_BASE_MS,
});
t.teardown(() => runtime.stop());
await runtime.start();
const dlq = await readTopics(t, app.kafka.brokers, [flaky, broken, refused].map((c) => `${c.topic}.dlq`));

t.test('a handler failing twice then succeeding: processed once after retries with exponential backoff', async (t) => {
  const product = await newProduct(10);
  const event = envelope('test.flaky.v1', { sku: product.sku, delta: 5 });
  await producer.sendEvent(flaky.topic, product.sku, event);

  await waitFor(() => runtime.stats().flaky?.processed === 1, 'the third attempt to succeed');
  t.equal(flaky.calls.at.length, 3, 'three attempts');
  t.same(runtime.stats().flaky, { processed: 1, duplicates: 0, failed: 2, dlq: 0 });
  t.equal(await stockOf(product.id), 15, '+5 once: the writes of the failed attempts were rolled back');
  const rows = await app.db
    .select()
    .from(processedEvents)
    .where(and(eq(processedEvents.consumer, 'flaky'), eq(processedEvents.eventId, event.id)));
  t.equal(rows.length, 1, 'marked processed once (the failed attempts\' marks were rolled back too)');

  // Backoff: from a failure to the next attempt, base then 2 x base (plus the rollback, a few ms).
  const [, second, third] = flaky.calls.at as [number, number, number];
  const [firstThrow, secondThrow] = flaky.calls.threw as [number, number];
  const waits = [second - firstThrow, third - secondThrow];
  t.ok(waits[0] as number >= RETRY_BASE_MS - 1, `first retry after ${RETRY_BASE_MS} ms (${waits[0]?.toFixed(0)} ms)`);
  t.ok(waits[1] as number >= 2 * RETRY_BASE_MS - 1, `second retry after ${2 * RETRY_BASE_MS} ms (${waits[1]?.toFixed(0)} ms)`);

  // Nothing went to the DLQ: a marker with the same key (same partition) is the first DLQ entry.
  await producer.send(flaky.topic, [{ key: product.sku, value: 'marker, not JSON' }]);
  const marker = await dlq.find((m) => m.value === 'marker, not JSON', 'the marker in the DLQ');
  t.same(dlq.messages.filter((m) => m.topic === marker.topic), [marker], 'the retried message is not in the DLQ');
  // The DLQ entry can be read before the runtime has its acknowledgement and counts it.
  await waitFor(() => runtime.stats().flaky?.dlq === 1, 'the marker to be counted');
  t.same(runtime.stats().flaky, { processed: 1, duplicates: 0, failed: 2, dlq: 1 });
});

t.test('a handler that keeps failing: DLQ after the last attempt, the consumer keeps going', async (t) => {
  const product = await newProduct(10);
  const event = envelope('test.broken.v1', { sku: product.sku, delta: 5 });
  const ack = await producer.sendEvent(broken.topic, product.sku, event);

  const dead = await dlq.find((m) => m.value === JSON.stringify(event), 'the failing message in the DLQ');
  t.equal(broken.calls.at.length, MAX_ATTEMPTS, `${MAX_ATTEMPTS} attempts`);
  await waitFor(() => runtime.stats().broken?.dlq === 1, 'the DLQ entry to be counted');
  t.same(runtime.stats().broken, { processed: 0, duplicates: 0, failed: MAX_ATTEMPTS, dlq: 1 });
  t.equal(dead.key, product.sku);
  t.match(dead.headers['x-error'], /still broken/, 'x-error carries the last error');
  t.equal(dead.headers['x-original-topic'], broken.topic);
  t.equal(dead.headers['x-original-partition'], String(ack.partition));
  t.equal(dead.headers['x-original-offset'], ack.offset ?? ack.baseOffset);
  t.equal(await stockOf(product.id), 10, 'no attempt left an effect');

  const next = envelope('test.broken.v1', { sku: product.sku, delta: 1 });
  await producer.sendEvent(broken.topic, product.sku, next);
  await dlq.find((m) => m.value === JSON.stringify(next), 'the next message to be handled (it fails too, so: DLQ)');
  t.equal(broken.calls.at.length, 2 * MAX_ATTEMPTS, 'the next message was handled after the dead one');
});

t.test('a 4xx error cannot pass by retrying: DLQ at once', async (t) => {
  const product = await newProduct(10);
  const event = envelope('test.refused.v1', { sku: product.sku, delta: 5 });
  await producer.sendEvent(refused.topic, product.sku, event);
  const dead = await dlq.find((m) => m.value === JSON.stringify(event), 'the refused message in the DLQ');
  t.equal(refused.calls.at.length, 1, 'one attempt');
  t.match(dead.headers['x-error'], /^CONFLICT: this can never work/);
  await waitFor(() => runtime.stats().refused?.dlq === 1, 'the DLQ entry to be counted');
  t.same(runtime.stats().refused, { processed: 0, duplicates: 0, failed: 1, dlq: 1 });
  t.equal(await stockOf(product.id), 10);
});

t.test('closing a worker while a handler is in flight: it finishes, its offset is committed, the group is left', async (t) => {
  const broker = await startEmbeddedBroker();
  t.teardown(() => broker.stop());
  const env = { KAFKA_BROKERS: broker.bootstrap };
  const first = await buildWorker(t, env);
  const ownProducer = await testProducer(t, broker.bootstrap);
  const topic = first.kafka.topic('inventory.adjusted.v1');
  const product = await newProduct(10);

  // Hold the product's row lock from a connection of the test's own: the handler's UPDATE waits for it.
  const sql = postgres(await testDatabaseUrl(), { max: 2, onnotice: () => {} });
  t.teardown(() => sql.end({ timeout: 1 }));
  const locker = await sql.reserve();
  t.teardown(() => locker.release());
  await locker`begin`;
  await locker`select id from products where id = ${product.id} for update`;
  const waitingOnLock = async () => {
    const [row] = await sql<{ n: number }[]>`
      select count(*)::int as n from pg_stat_activity
      where datname = current_database() and wait_event_type = 'Lock' and pid <> pg_backend_pid()`;
    return (row?.n ?? 0) > 0;
  };

  const event = envelope('inventory.adjusted.v1', { sku: product.sku, delta: 5 });
  await ownProducer.sendEvent(topic, product.sku, event);
  await waitFor(waitingOnLock, 'the handler to wait on the row lock');

  let closed = false;
  const closing = first.close().then(() => {
    closed = true;
  });
  // A negative check needs a window: a close that did not wait would be done well within it (a worker with nothing
  // in flight closes in tens of milliseconds).
  await Promise.race([closing, delay(1000)]);
  t.notOk(closed, 'close waits for the in-flight handler');
  t.ok(await waitingOnLock(), 'which is still waiting on the lock');

  await locker`commit`;
  await closing;
  t.equal(await stockOf(product.id), 15, 'the in-flight handler\'s effect is committed');
  t.same(first.consumers.stats()['inventory-adjusted'], { processed: 1, duplicates: 0, failed: 0, dlq: 0 });

  // A new worker in the same group starts after the committed offset: the marker (same key, same partition) comes
  // next, and the in-flight message is not delivered again.
  const second = await buildWorker(t, env);
  await ownProducer.sendEvent(topic, product.sku, envelope('inventory.adjusted.v1', { sku: product.sku, delta: 1 }));
  await waitFor(async () => (await stockOf(product.id)) === 16, 'the marker to be applied by the new worker');
  await waitFor(() => second.consumers.stats()['inventory-adjusted']?.processed === 1, 'the marker to count as processed');
  t.same(second.consumers.stats()['inventory-adjusted'], { processed: 1, duplicates: 0, failed: 0, dlq: 0 }, 'no redelivery');

  // The dedupe record lives in PostgreSQL: the same event again, to a new process, has no effect.
  await ownProducer.sendEvent(topic, product.sku, event);
  await waitFor(() => second.consumers.stats()['inventory-adjusted']?.duplicates === 1, 'the repeat to be recognised');
  t.equal(await stockOf(product.id), 16, 'no second +5');
  const started = performance.now();
  await second.close();
  t.comment(`a worker with nothing in flight closes in ${(performance.now() - started).toFixed(0)} ms`);
});
