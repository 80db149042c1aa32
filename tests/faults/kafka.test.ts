import { randomUUID } from 'node:crypto';
import { and, eq, inArray, isNull, sql } from 'drizzle-orm';
import t from 'tap';
import { processedEvents } from '../../app/core/service/consumers/model.js';
import { outbox } from '../../app/core/service/outbox/model.js';
import { orders } from '../../app/orders/model.js';
import type { Order } from '../../app/orders/schema.js';
import { build } from '../helpers/app.js';
import { startBrokerProcess } from '../helpers/broker-process.js';
import { createProduct, orderRequest } from '../helpers/catalog.js';
import { buildWorker, envelope, readTopics, testProducer } from '../helpers/kafka.js';
import { createAdmin, createUser } from '../helpers/users.js';
import { waitFor } from '../helpers/wait.js';

/*
 * The Kafka broker goes away (its process is frozen: connections stay open, nothing answers) while orders keep coming
 * and payments for them are produced: orders still succeed, the outbox backlog grows and /health/ready and /metrics
 * say so. When the broker is back every outbox event is delivered and the consumer applies each payment exactly once.
 */

const N = 12;

t.test('Kafka broker gone, then back', async (t) => {
  const broker = await startBrokerProcess(t);
  const env = { KAFKA_BROKERS: broker.bootstrap, KAFKA_SEND_TIMEOUT_MS: '2000', KAFKA_REQUEST_TIMEOUT_MS: '1000' };
  const app = await build(t, { env });
  const worker = await buildWorker(t, env);
  const admin = await createAdmin(app);
  const user = await createUser(app);
  const product = await createProduct(app, admin, { stock: 1000, priceCents: 250 });
  const producer = await testProducer(t, broker.bootstrap);
  const created = await readTopics(t, broker.bootstrap, [app.kafka.topic('orders.created.v1')]);
  const backlog = () => app.outbox.backlog();
  await waitFor(async () => (await backlog()) === 0, 20_000, 'the events of the set-up to be published');

  broker.freeze();
  const placed: Order[] = [];
  for (let i = 0; i < N; i += 1) {
    const response = await app.inject(orderRequest(user, [{ productId: product.id, quantity: 1 }]));
    t.equal(response.statusCode, 201, `order ${i + 1} is placed while the broker is gone`);
    placed.push(response.json<Order>());
  }
  const ids = placed.map((o) => o.id);
  t.ok((await backlog()) >= N, `the outbox backlog grows (${await backlog()})`);

  const ready = await app.inject({ method: 'GET', url: '/health/ready' });
  const readiness = ready.json<{ checks: Record<string, string>; outboxBacklog?: number }>();
  t.equal(ready.statusCode, 503, '/health/ready is 503');
  t.equal(readiness.checks.kafka, 'down', 'and says Kafka is down');
  t.ok((readiness.outboxBacklog ?? 0) >= N, `and reports the backlog (${readiness.outboxBacklog})`);
  const metrics = await app.inject({ method: 'GET', url: '/metrics' });
  const gauge = /^outbox_backlog(?:\{[^}]*\})? (\d+)$/m.exec(metrics.body);
  t.ok(gauge && Number(gauge[1]) >= N, `/metrics outbox_backlog shows it (${gauge?.[1]})`);

  // Payments for those orders, produced while the broker is gone (the producer queues them), each sent twice.
  const payments = placed.map((order) =>
    envelope('payments.completed.v1', { orderId: order.id, paymentId: `p-${randomUUID()}`, amountCents: order.totalCents }));
  const sends = payments.flatMap((event) => [
    producer.sendEvent(app.kafka.topic('payments.completed.v1'), event.data.orderId, event),
    producer.sendEvent(app.kafka.topic('payments.completed.v1'), event.data.orderId, event),
  ]);

  broker.thaw();
  await Promise.all(sends);
  await waitFor(async () => (await backlog()) === 0, 60_000, 'the outbox backlog to drain');
  await waitFor(async () => {
    const rows = await app.db.select({ id: orders.id }).from(orders).where(and(inArray(orders.id, ids), eq(orders.status, 'paid')));
    return rows.length === N;
  }, 60_000, `all ${N} orders to be paid`);

  // Every orders.created.v1 event reached Kafka (at least once; the relay may have sent some twice).
  await Promise.all(ids.map((id) => created.find((m) => m.key === id, `orders.created.v1 of ${id}`, 30_000)));
  t.pass(`all ${N} orders.created.v1 events were delivered`);

  // Exactly once: one processed_events row per payment, one paid transition per order.
  const processed = await app.db
    .select({ n: sql<number>`count(*)::int` })
    .from(processedEvents)
    .where(and(eq(processedEvents.consumer, 'payments-completed'), inArray(processedEvents.eventId, payments.map((p) => p.id))));
  t.equal(processed[0]?.n, N, `processed_events holds each of the ${N} payments once`);
  const transitions = await app.db
    .select({ key: outbox.key, n: sql<number>`count(*)::int` })
    .from(outbox)
    .where(and(eq(outbox.topic, 'orders.status-changed.v1'), inArray(outbox.key, ids), sql`${outbox.envelope}->'data'->>'to' = 'paid'`))
    .groupBy(outbox.key);
  t.equal(transitions.length, N, 'every order moved to paid');
  t.ok(transitions.every((row) => row.n === 1), 'each exactly once');
  const versions = await app.db.select({ version: orders.version }).from(orders).where(inArray(orders.id, ids));
  t.same([...new Set(versions.map((v) => v.version))], [2], 'each order was changed once (version 1 -> 2)');
  const stats = worker.consumers.stats()['payments-completed'];
  t.equal(stats?.processed, N, 'the worker processed each payment once');
  t.ok((stats?.duplicates ?? 0) >= N, `and recognised the repeated deliveries (${stats?.duplicates})`);
  t.equal(stats?.dlq, 0, 'nothing went to the DLQ');

  await waitFor(async () => (await app.inject({ method: 'GET', url: '/health/ready' })).statusCode === 200, 20_000, 'ready again');
  const pending = await app.db.select({ n: sql<number>`count(*)::int` }).from(outbox).where(isNull(outbox.sentAt));
  t.equal(pending[0]?.n, 0, 'nothing left unpublished');
});
