import { randomUUID } from 'node:crypto';
import { and, eq } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import t from 'tap';
import { startEmbeddedBroker } from '../../app/core/adapter/kafka.js';
import { processedEvents } from '../../app/core/service/consumers/model.js';
import type { ConsumerStats } from '../../app/core/service/consumers/runtime.js';
import { outbox } from '../../app/core/service/outbox/model.js';
import { orders } from '../../app/orders/model.js';
import type { Order } from '../../app/orders/schema.js';
import { products } from '../../app/products/model.js';
import type { Product } from '../../app/products/schema.js';
import { build } from '../helpers/app.js';
import { createProduct, orderRequest, uniqueSku } from '../helpers/catalog.js';
import { buildWorker, envelope, readTopics, testProducer, waitFor } from '../helpers/kafka.js';
import { createAdmin, createUser } from '../helpers/users.js';

/**
 * The three consumers of api.md, end to end: a separate producer client writes envelopes to the app's embedded broker
 * over TCP, the consumers running in the app handle them against PostgreSQL, and what they cannot handle is read back
 * from `<topic>.dlq` by a separate consumer.
 */

const PAID = 'payments.completed.v1';
const FAILED = 'payments.failed.v1';
const INVENTORY = 'inventory.adjusted.v1';

const app = await build(t, { env: { CONSUMERS_IN_API: 'true' } });
const admin = await createAdmin(app);
const user = await createUser(app, 'buyer');
const producer = await testProducer(t, app.kafka.brokers);
// The runtime created the DLQ topics at start; one reader for all three (a group's first join takes ~3 s).
const dlq = await readTopics(t, app.kafka.brokers, [PAID, FAILED, INVENTORY].map((name) => app.kafka.topic(`${name}.dlq`)));

const stats = (consumer: string) => app.consumers.stats()[consumer] as ConsumerStats;

/** Counter changes of one consumer since this call. */
function counting(consumer: string) {
  const before = stats(consumer);
  return (): ConsumerStats => {
    const now = stats(consumer);
    return {
      processed: now.processed - before.processed,
      duplicates: now.duplicates - before.duplicates,
      failed: now.failed - before.failed,
      dlq: now.dlq - before.dlq,
    };
  };
}

async function stockOf(id: string): Promise<number | undefined> {
  const [row] = await app.db.select({ stock: products.stock }).from(products).where(eq(products.id, id));
  return row?.stock;
}

async function statusOf(id: string): Promise<string | undefined> {
  const [row] = await app.db.select({ status: orders.status }).from(orders).where(eq(orders.id, id));
  return row?.status;
}

async function processedRows(consumer: string, eventId: string): Promise<number> {
  const rows = await app.db
    .select()
    .from(processedEvents)
    .where(and(eq(processedEvents.consumer, consumer), eq(processedEvents.eventId, eventId)));
  return rows.length;
}

async function statusChanges(orderId: string) {
  const rows = await app.db.select().from(outbox).where(and(eq(outbox.topic, 'orders.status-changed.v1'), eq(outbox.key, orderId)));
  return rows.map((row) => row.envelope as { correlationId?: string; data: { orderId: string; from: string; to: string } });
}

/** A product with `stock` (price 1250) and a pending order of `quantity` of it by `user`. */
async function pendingOrder(quantity: number, stock = 10): Promise<{ product: Product; order: Order }> {
  const product = await createProduct(app, admin, { stock, priceCents: 1250 });
  const response = await app.inject(orderRequest(user, [{ productId: product.id, quantity }]));
  if (response.statusCode !== 201) throw new Error(`order failed: ${response.statusCode} ${response.body}`);
  return { product, order: response.json() as Order };
}

const getProduct = async (id: string) => (await app.inject({ method: 'GET', url: `/v1/products/${id}` })).json() as Product;

const topic = (name: string) => app.kafka.topic(name);

t.test('payments.completed.v1 from a separate producer: the pending order becomes paid', async (t) => {
  const { order } = await pendingOrder(2);
  t.equal(order.totalCents, 2500);
  const event = envelope(PAID, { orderId: order.id, paymentId: 'pay-1', amountCents: 2500 }, { correlationId: 'corr-paid-1' });
  await producer.sendEvent(topic(PAID), order.id, event);

  await waitFor(async () => (await statusOf(order.id)) === 'paid', 'the order to become paid');
  t.pass('the order is paid in PostgreSQL');
  t.equal(await processedRows('payments-completed', event.id), 1, 'the event id is recorded as processed');
  const changes = await statusChanges(order.id);
  t.same(changes.map((c) => c.data), [{ orderId: order.id, from: 'pending', to: 'paid' }], 'the status change goes through the outbox');
  t.equal(changes[0]?.correlationId, 'corr-paid-1', 'with the consumed event\'s correlation id');
});

t.test('payments.failed.v1: the pending order is cancelled and its stock restored', async (t) => {
  const { product, order } = await pendingOrder(3, 10);
  t.equal(await stockOf(product.id), 7, 'the order took 3');
  await producer.sendEvent(topic(FAILED), order.id, envelope(FAILED, { orderId: order.id, paymentId: 'pay-2', reason: 'card declined' }));

  await waitFor(async () => (await statusOf(order.id)) === 'cancelled', 'the order to be cancelled');
  t.equal(await stockOf(product.id), 10, 'the 3 items are back in stock');
  t.same((await statusChanges(order.id)).map((c) => c.data.to), ['cancelled']);
});

t.test('inventory.adjusted.v1: stock += delta, never below 0, and the cached product shows it', async (t) => {
  const product = await createProduct(app, admin, { stock: 10 });
  t.equal((await getProduct(product.id)).stock, 10, 'GET caches the product');
  // Behind the service's back: a cached read keeps answering 10, which proves the cache entry exists.
  await app.db.update(products).set({ stock: 11 }).where(eq(products.id, product.id));
  t.equal((await getProduct(product.id)).stock, 10, 'served from the cache');

  const counter = counting('inventory-adjusted');
  await producer.sendEvent(topic(INVENTORY), product.sku, envelope(INVENTORY, { sku: product.sku, delta: 5 }));
  await waitFor(async () => (await stockOf(product.id)) === 16, 'stock 11 + 5 in PostgreSQL');
  // The cache entry is dropped after the commit, before the message counts as processed.
  await waitFor(() => counter().processed === 1, 'the message to be processed');
  t.equal((await getProduct(product.id)).stock, 16, 'GET /v1/products/:id shows the new stock, not the cached one');

  await producer.sendEvent(topic(INVENTORY), product.sku, envelope(INVENTORY, { sku: product.sku, delta: -100 }));
  await waitFor(() => counter().processed === 2, 'the second message to be processed');
  t.equal(await stockOf(product.id), 0, 'a delta below the stock stops at 0');
  t.equal((await getProduct(product.id)).stock, 0);

  await producer.sendEvent(topic(INVENTORY), product.sku, envelope(INVENTORY, { sku: product.sku, delta: 4 }));
  await waitFor(async () => (await stockOf(product.id)) === 4, 'stock 0 + 4');
  await waitFor(() => counter().processed === 3, 'the third message to count as processed');
  t.same(counter(), { processed: 3, duplicates: 0, failed: 0, dlq: 0 });
});

t.test('the same event delivered 3 times has one effect', async (t) => {
  await t.test('inventory +5 three times: +5 once', async (t) => {
    const product = await createProduct(app, admin, { stock: 10 });
    const counter = counting('inventory-adjusted');
    const event = envelope(INVENTORY, { sku: product.sku, delta: 5 });
    const message = { key: product.sku, value: JSON.stringify(event) };
    await producer.send(topic(INVENTORY), [message, message]);
    await producer.send(topic(INVENTORY), [message]);

    await waitFor(() => counter().processed + counter().duplicates === 3, 'the 3 deliveries to be handled');
    t.equal(await stockOf(product.id), 15, '+5 once');
    t.same(counter(), { processed: 1, duplicates: 2, failed: 0, dlq: 0 }, 'two duplicates recognised by the envelope id');
    t.equal(await processedRows('inventory-adjusted', event.id), 1);
  });

  await t.test('a payment three times: paid once, the repeats are neither errors nor DLQ entries', async (t) => {
    const { order } = await pendingOrder(1);
    const counter = counting('payments-completed');
    const event = envelope(PAID, { orderId: order.id, paymentId: 'pay-3', amountCents: order.totalCents });
    for (let i = 0; i < 3; i++) await producer.sendEvent(topic(PAID), order.id, event);

    await waitFor(() => counter().processed + counter().duplicates === 3, 'the 3 deliveries to be handled');
    t.equal(await statusOf(order.id), 'paid');
    t.same(counter(), { processed: 1, duplicates: 2, failed: 0, dlq: 0 });
    t.equal((await statusChanges(order.id)).length, 1, 'one status change');
  });
});

t.test('a non-JSON and a schema-failing message go to the DLQ unchanged; the next good message is processed', async (t) => {
  const product = await createProduct(app, admin, { stock: 10 });
  const counter = counting('inventory-adjusted');
  const notJson = { key: product.sku, value: '{"id": not json', headers: { 'x-trace': 'trace-1' } };
  const badData = { key: product.sku, value: JSON.stringify(envelope(INVENTORY, { sku: product.sku, delta: 'five' })) };
  const wrongType = { key: product.sku, value: JSON.stringify(envelope(PAID, { sku: product.sku, delta: 1 })) };
  const good = envelope(INVENTORY, { sku: product.sku, delta: 2 });
  // One key, one partition: the good message comes after the bad ones.
  const goodMessage = { key: product.sku, value: JSON.stringify(good) };
  const acks = await producer.send(topic(INVENTORY), [notJson, badData, wrongType, goodMessage]);

  await waitFor(async () => (await stockOf(product.id)) === 12, 'the good message after the bad ones (stock 10 + 2)');
  t.pass('the consumer kept going');

  const sent = [notJson, badData, wrongType];
  const dead = await Promise.all(
    sent.map((message) =>
      dlq.find((m) => m.topic === topic(`${INVENTORY}.dlq`) && m.value === message.value, `DLQ entry for ${message.value}`),
    ),
  );
  const partitions = new Set(acks.map((ack) => ack.partition));
  t.equal(partitions.size, 1, 'the producer put the four messages in one partition');
  const offsets = acks.map((ack) => ack.offset ?? ack.baseOffset);
  const firstOffset = BigInt(offsets[0] ?? -1);
  for (const [i, entry] of dead.entries()) {
    t.equal(entry.key, product.sku, 'the original key');
    t.equal(entry.value, sent[i]?.value, 'the original value, byte for byte');
    t.equal(entry.headers['x-original-topic'], topic(INVENTORY));
    t.equal(entry.headers['x-original-partition'], String(acks[0]?.partition));
    // librdkafka acknowledges a batch with its base offset; the messages follow it one by one.
    t.equal(entry.headers['x-original-offset'], String(firstOffset + BigInt(i)));
  }
  t.match(dead[0]?.headers['x-error'], /JSON/i, 'x-error says why: not JSON');
  t.match(dead[1]?.headers['x-error'], /schema.*\/data\/delta/, 'x-error names the failing field');
  t.match(dead[2]?.headers['x-error'], /schema.*\/type/, 'x-error: the envelope type is not this topic');
  t.notOk(dlq.messages.some((m) => m.value === JSON.stringify(good)), 'the good message is not in the DLQ');
  await waitFor(() => counter().processed === 1, 'the good message to count as processed');
  t.same(counter(), { processed: 1, duplicates: 0, failed: 0, dlq: 3 }, 'DLQ at once, no retries');
});

t.test('an unknown order or sku goes to the DLQ; the consumer keeps going', async (t) => {
  const counter = counting('payments-completed');
  const unknown = randomUUID();
  const event = envelope(PAID, { orderId: unknown, paymentId: 'pay-4', amountCents: 100 });
  const ack = await producer.sendEvent(topic(PAID), unknown, event);
  const dead = await dlq.find((m) => m.topic === topic(`${PAID}.dlq`) && m.key === unknown, 'the unknown order in the DLQ');
  t.equal(dead.value, JSON.stringify(event));
  t.match(dead.headers['x-error'], /NOT_FOUND/);
  t.equal(dead.headers['x-original-topic'], topic(PAID));
  t.equal(dead.headers['x-original-partition'], String(ack.partition));
  t.equal(dead.headers['x-original-offset'], ack.offset ?? ack.baseOffset);
  t.equal(dead.headers['x-event-id'], event.id, 'the original headers travel along');
  // The DLQ entry can be read before the runtime has its acknowledgement and counts it.
  await waitFor(() => counter().dlq === 1, 'the DLQ entry to be counted');
  t.same(counter(), { processed: 0, duplicates: 0, failed: 1, dlq: 1 }, 'a 4xx is not retried');
  t.equal(await processedRows('payments-completed', event.id), 0, 'not marked processed');

  const failedUnknown = randomUUID();
  await producer.sendEvent(topic(FAILED), failedUnknown, envelope(FAILED, { orderId: failedUnknown, paymentId: 'p', reason: 'x' }));
  t.match((await dlq.find((m) => m.key === failedUnknown, 'payments.failed for an unknown order in the DLQ')).headers['x-error'], /NOT_FOUND/);

  const sku = uniqueSku('ghost');
  await producer.sendEvent(topic(INVENTORY), sku, envelope(INVENTORY, { sku, delta: 1 }));
  t.match((await dlq.find((m) => m.key === sku, 'the unknown sku in the DLQ')).headers['x-error'], /NOT_FOUND/);

  const { order } = await pendingOrder(1);
  await producer.sendEvent(topic(PAID), order.id, envelope(PAID, { orderId: order.id, paymentId: 'pay-5', amountCents: order.totalCents }));
  await waitFor(async () => (await statusOf(order.id)) === 'paid', 'the next payment to be handled');
  t.pass('the next good message is processed');
});

t.test('payments.completed with an amount other than the total: DLQ, the order stays pending', async (t) => {
  const { product, order } = await pendingOrder(2, 10);
  const counter = counting('payments-completed');
  const wrong = envelope(PAID, { orderId: order.id, paymentId: 'pay-6', amountCents: order.totalCents - 1 });
  await producer.sendEvent(topic(PAID), order.id, wrong);
  const dead = await dlq.find((m) => m.key === order.id, 'the wrong amount in the DLQ');
  t.equal(dead.value, JSON.stringify(wrong));
  t.match(dead.headers['x-error'], /AMOUNT_MISMATCH/);
  t.equal(await statusOf(order.id), 'pending', 'the order stays pending');
  t.equal(await stockOf(product.id), 8, 'its stock stays taken');
  t.same(await statusChanges(order.id), [], 'no status change was written');
  t.equal(await processedRows('payments-completed', wrong.id), 0, 'the rolled-back event is not marked processed');
  await waitFor(() => counter().dlq === 1, 'the DLQ entry to be counted');
  t.same(counter(), { processed: 0, duplicates: 0, failed: 1, dlq: 1 });

  // The right amount afterwards still pays it.
  await producer.sendEvent(topic(PAID), order.id, envelope(PAID, { orderId: order.id, paymentId: 'pay-6', amountCents: order.totalCents }));
  await waitFor(async () => (await statusOf(order.id)) === 'paid', 'the correct payment');
  t.pass('paid by the correct amount');
});

t.test('two workers in one group share the partitions; stopping one hands its partitions over, nothing is lost', async (t) => {
  const broker = await startEmbeddedBroker();
  t.teardown(() => broker.stop());
  const env = { KAFKA_BROKERS: broker.bootstrap };
  const [a, b] = await Promise.all([buildWorker(t, env), buildWorker(t, env)]);
  t.equal(a.kafka.embedded, true, 'the embedded broker is recognised behind KAFKA_BROKERS');
  t.equal(a.kafka.brokers, broker.bootstrap);
  const shared = await testProducer(t, broker.bootstrap);
  const workerTopic = a.kafka.topic(INVENTORY);

  // N skus keyed over the topic's partitions; every event adds 1.
  const N = 24;
  const made: Product[] = [];
  for (let i = 0; i < N; i++) made.push(await a.products.create({ sku: uniqueSku('w'), name: `Worker ${i}`, priceCents: 100, stock: 0 }));
  const expected = new Map(made.map((p) => [p.id, 0]));
  const sent: string[] = [];
  const partitions = new Set<number>();
  const produceRound = async () => {
    const events = made.map((p) => envelope(INVENTORY, { sku: p.sku, delta: 1 }));
    const acks = await shared.send(workerTopic, made.map((p, i) => ({ key: p.sku, value: JSON.stringify(events[i]) })));
    for (const ack of acks) partitions.add(ack.partition);
    for (const p of made) expected.set(p.id, (expected.get(p.id) ?? 0) + 1);
    sent.push(...events.map((e) => e.id));
  };
  const stocks = async () => {
    const rows = await app.db.select({ id: products.id, stock: products.stock }).from(products);
    return new Map(rows.filter((r) => expected.has(r.id)).map((r) => [r.id, r.stock]));
  };
  const allApplied = async () => {
    const now = await stocks();
    return [...expected].every(([id, n]) => now.get(id) === n);
  };
  const handled = (w: FastifyInstance) => w.consumers.stats()['inventory-adjusted'] as ConsumerStats;

  // Both join the group; rounds until each has handled messages (the partitions are shared).
  for (let round = 0; round < 20 && !(handled(a).processed > 0 && handled(b).processed > 0); round++) {
    await produceRound();
    await waitFor(allApplied, `round ${round} to be applied`);
  }
  t.ok(handled(a).processed > 0 && handled(b).processed > 0, `both handle messages (a ${handled(a).processed}, b ${handled(b).processed})`);

  t.equal(partitions.size, 4, 'the skus cover all 4 partitions of the topic');

  // Stop `a` while a batch is on its way, then keep producing: `b` alone must now handle every partition, `a`'s too.
  await produceRound();
  await a.close();
  const beforeHandOver = handled(b).processed;
  await produceRound();
  await produceRound();
  await waitFor(allApplied, 'every event to be applied after the hand-over', 30_000);
  // A message counts as processed just after its commit (and cache invalidation).
  const total = () => handled(a).processed + handled(b).processed;
  await waitFor(() => total() >= sent.length, 'every message to count as processed');
  t.ok(handled(b).processed - beforeHandOver >= 2 * N, 'b handled the events of all partitions after a left');

  const now = await stocks();
  t.same([...now].filter(([id, n]) => expected.get(id) !== n), [], `every sku has exactly its ${sent.length / N} increments`);
  const rows = await app.db
    .select({ id: processedEvents.eventId })
    .from(processedEvents)
    .where(eq(processedEvents.consumer, 'inventory-adjusted'));
  const ids = new Set(rows.map((r) => r.id));
  t.equal(sent.filter((id) => ids.has(id)).length, sent.length, 'every event id is recorded as processed');
  t.equal(total(), sent.length, `processed exactly once across the two workers (a ${handled(a).processed}, b ${handled(b).processed})`);
  t.equal(handled(a).dlq + handled(b).dlq, 0);
  t.equal(handled(a).failed + handled(b).failed, 0);
});
