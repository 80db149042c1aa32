import { randomBytes, randomUUID } from 'node:crypto';
import ConfluentKafka from '@confluentinc/kafka-javascript';
import { and, asc, eq, inArray, sql } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import t, { type Test } from 'tap';
import { Value } from 'typebox/value';
import { startEmbeddedBroker } from '../../../app/core/adapter/kafka.js';
import { outbox, type OutboxRow } from '../../../app/core/service/outbox/model.js';
import { createOutbox, type OutgoingMessage, type Publish } from '../../../app/core/service/outbox/service.js';
import { EnvelopeSchema, producedTopics, type Envelope, type ProducedTopic } from '../../../app/schemas/events.js';
import { build } from '../../helpers/app.js';
import { createProduct, orderRequest } from '../../helpers/catalog.js';
import { createAdmin, createUser, PASSWORD, uniqueEmail } from '../../helpers/users.js';

/*
 * The transactional outbox end to end: services write events in their transactions, the relay publishes them to the
 * app's embedded Kafka broker, and a plain KafkaJS consumer of this file's own (it only knows the bootstrap address)
 * reads what actually reached the broker. Real PostgreSQL (this file's own database).
 */

const { KafkaJS } = ConfluentKafka;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** Every wait of this file is bounded by this. */
const WAIT_MS = 30_000;

// The broker-down case waits for librdkafka's 30 s message timeout once; the file needs more than tap's default.
t.setTimeout(240_000);

interface Received {
  topic: string;
  partition: number;
  offset: number;
  key: string | undefined;
  value: string;
  envelope: Envelope<Record<string, unknown>>;
  headers: Record<string, string>;
}

type Check<T> = () => T | undefined;

/**
 * A plain KafkaJS consumer (own group, from the beginning) collecting every message of `topics` on `bootstrap`.
 * `until(check)` resolves as soon as `check` returns a value, re-checked on every message; rejects after `timeoutMs`.
 */
async function collector(t: Test, bootstrap: string, topics: string[]) {
  const client = new KafkaJS.Kafka({
    kafkaJS: { brokers: bootstrap.split(','), clientId: 'outbox-test-reader', logLevel: KafkaJS.logLevel.NOTHING },
  });
  const consumer = client.consumer({
    'fetch.wait.max.ms': 10,
    'topic.metadata.refresh.interval.ms': 1000,
    'kafkaJS': {
      groupId: `outbox-test-${randomBytes(4).toString('hex')}`,
      fromBeginning: true,
      sessionTimeout: 3000,
      heartbeatInterval: 500,
    },
  });
  await consumer.connect();
  t.teardown(() => consumer.disconnect());
  await consumer.subscribe({ topics });

  const messages: Received[] = [];
  const listeners = new Set<() => void>();
  void consumer.run({
    eachMessage: async ({ topic, partition, message }) => {
      const value = message.value?.toString() ?? '';
      const headers: Record<string, string> = {};
      for (const [name, header] of Object.entries(message.headers ?? {})) headers[name] = String(header?.toString());
      messages.push({
        topic,
        partition,
        offset: Number(message.offset),
        key: message.key?.toString(),
        value,
        envelope: JSON.parse(value) as Envelope<Record<string, unknown>>,
        headers,
      });
      for (const listener of listeners) listener();
    },
  });

  function until<T>(check: Check<T>, what: string, timeoutMs = WAIT_MS): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        listeners.delete(attempt);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${messages.length} messages consumed)`));
      }, timeoutMs);
      function attempt() {
        const value = check();
        if (value === undefined) return;
        clearTimeout(timer);
        listeners.delete(attempt);
        resolve(value);
      }
      listeners.add(attempt);
      attempt();
    });
  }

  /** The messages of `topic` (by envelope type, so topic prefixes do not matter) whose key is in `keys`. */
  const of = (topic: ProducedTopic, keys: Set<string> | string) =>
    messages.filter((m) => m.envelope.type === topic && m.key !== undefined && (typeof keys === 'string' ? m.key === keys : keys.has(m.key)));

  /** Waits until `count` messages of `topic` with these keys arrived; returns them. */
  const expect = (topic: ProducedTopic, keys: Set<string> | string, count: number, what: string, timeoutMs = WAIT_MS) =>
    until(() => {
      const found = of(topic, keys);
      return found.length >= count ? found : undefined;
    }, what, timeoutMs);

  return { messages, until, of, expect };
}

/** Polls `check` until it returns a value; throws after `timeoutMs`. */
async function eventually<T>(check: () => Promise<T | undefined>, what: string, timeoutMs = WAIT_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const rowsById = (app: FastifyInstance, ids: string[]) =>
  app.db.select().from(outbox).where(inArray(outbox.id, ids)).orderBy(asc(outbox.seq));
const rowsByKey = (app: FastifyInstance, keys: string[]) =>
  app.db.select().from(outbox).where(inArray(outbox.key, keys)).orderBy(asc(outbox.seq));

/** How many of these rows nobody holds a lock on (a relay claims the rows it publishes with FOR UPDATE). */
async function unlockedCount(app: FastifyInstance, ids: string[]): Promise<number> {
  return app.db.transaction(async (tx) => {
    const free = await tx.select({ seq: outbox.seq }).from(outbox).where(inArray(outbox.id, ids)).for('update', { skipLocked: true });
    return free.length;
  });
}

/** The app's own publishing, as app/core/service/outbox/index.ts wires it: one producer send per topic. */
function publishWith(app: FastifyInstance): Publish {
  return async (messages) => {
    const byTopic = new Map<string, OutgoingMessage[]>();
    for (const message of messages) byTopic.set(message.topic, [...(byTopic.get(message.topic) ?? []), message]);
    await Promise.all(
      [...byTopic].map(([topic, batch]) =>
        app.kafka.send(app.kafka.topic(topic), batch.map(({ key, value, headers }) => ({ key, value, headers }))),
      ),
    );
  };
}

async function registerMany(app: FastifyInstance, tag: string, count: number, parallel = 50): Promise<string[]> {
  const ids: string[] = [];
  for (let first = 0; first < count; first += parallel) {
    const batch = Array.from({ length: Math.min(parallel, count - first) }, (_, i) =>
      app.users.register({ email: `${tag}-${first + i}@example.com`, password: PASSWORD, name: 'Outbox test' }),
    );
    ids.push(...(await Promise.all(batch)).map((user) => user.id));
  }
  return ids;
}

function duplicates(values: string[]): string[] {
  const seen = new Set<string>();
  return values.filter((value) => (seen.has(value) ? true : (seen.add(value), false)));
}

/** Stops the app's own relay for a test (so only the relays the test makes publish), and restarts it afterwards. */
async function withoutAppRelay(t: Test, app: FastifyInstance): Promise<void> {
  await app.outbox.stop();
  t.teardown(() => app.outbox.start());
}

const app = await build(t);
const topics = Object.keys(producedTopics) as ProducedTopic[];
// The app created its produced topics at start; the reader subscribes to their real (prefixed) names.
const main = await collector(t, app.kafka.brokers, topics.map((name) => app.kafka.topic(name)));

t.test('registration publishes users.registered.v1 keyed by the user id, with the envelope and headers of api.md', async (t) => {
  const requestId = `outbox-reg-${randomBytes(6).toString('hex')}`;
  const email = uniqueEmail('reg');
  const before = Date.now();
  const response = await app.inject({
    method: 'POST',
    url: '/v1/auth/register',
    headers: { 'x-request-id': requestId },
    payload: { email, password: PASSWORD, name: 'Outbox' },
  });
  t.equal(response.statusCode, 201);
  t.equal(response.headers['x-request-id'], requestId);
  const user = response.json() as { id: string; email: string };

  const [message] = await main.expect('users.registered.v1', user.id, 1, 'the users.registered.v1 message of the new user');
  if (!message) throw new Error('unreachable');
  t.equal(message.key, user.id, 'key = the user id');
  t.equal(message.topic, app.kafka.topic('users.registered.v1'));
  const { envelope } = message;
  t.same(Object.keys(envelope).sort(), ['correlationId', 'data', 'id', 'occurredAt', 'type', 'version']);
  t.match(envelope.id, UUID);
  t.equal(envelope.type, 'users.registered.v1');
  t.equal(envelope.version, 1);
  t.equal(envelope.correlationId, requestId, 'correlationId = the request\'s x-request-id');
  t.same(envelope.data, { userId: user.id, email: user.email });
  t.equal(new Date(envelope.occurredAt).toISOString(), envelope.occurredAt, 'occurredAt is an ISO-8601 UTC timestamp');
  const occurred = Date.parse(envelope.occurredAt);
  t.ok(occurred >= before - 1000 && occurred <= Date.now(), 'occurredAt is the time of the registration');
  t.ok(Value.Check(EnvelopeSchema('users.registered.v1', producedTopics['users.registered.v1']), envelope), 'matches the TypeBox schema');
  t.same(message.headers, { 'x-event-id': envelope.id, 'x-event-type': 'users.registered.v1', 'x-correlation-id': requestId });

  const rows = await eventually(async () => {
    const found = await rowsByKey(app, [user.id]);
    return found.every((row) => row.sentAt !== null) ? found : undefined;
  }, 'the outbox row marked sent');
  t.equal(rows.length, 1, 'one event for one registration');
  t.match(rows[0], { id: envelope.id, topic: 'users.registered.v1', key: user.id, attempts: 1, lastError: null });
  t.same(rows[0]?.envelope, envelope, 'the message value is the stored envelope');
});

t.test('orders: created and status-changed are keyed by the order id and published in seq order', async (t) => {
  const admin = await createAdmin(app);
  const buyer = await createUser(app, 'outbox-buyer');
  const product = await createProduct(app, admin, { priceCents: 700, stock: 5 });

  // Both events are pending together when the relay runs, so it is the relay that must put them in order.
  await app.outbox.stop();
  t.teardown(() => app.outbox.start());

  const createId = `outbox-create-${randomBytes(6).toString('hex')}`;
  const request = orderRequest(buyer, [{ productId: product.id, quantity: 2 }]);
  const created = await app.inject({ ...request, headers: { ...request.headers, 'x-request-id': createId } });
  t.equal(created.statusCode, 201, created.body);
  const order = created.json() as { id: string; totalCents: number };
  t.equal(order.totalCents, 1400);

  const cancelId = `outbox-cancel-${randomBytes(6).toString('hex')}`;
  const cancelled = await app.inject({
    method: 'POST',
    url: `/v1/orders/${order.id}/cancel`,
    headers: { ...buyer.auth, 'x-request-id': cancelId },
  });
  t.equal(cancelled.statusCode, 200, cancelled.body);

  const pending = await rowsByKey(app, [order.id]);
  t.same(pending.map((row) => row.topic), ['orders.created.v1', 'orders.status-changed.v1'], 'created has the lower seq');
  t.ok((pending[0]?.seq ?? Infinity) < (pending[1]?.seq ?? -Infinity));
  t.ok(pending.every((row) => row.sentAt === null), 'both pending while the relay is stopped');

  app.outbox.start();
  await main.expect('orders.created.v1', order.id, 1, 'orders.created.v1');
  await main.expect('orders.status-changed.v1', order.id, 1, 'orders.status-changed.v1');
  const [createdMessage] = main.of('orders.created.v1', order.id);
  const [changedMessage] = main.of('orders.status-changed.v1', order.id);
  if (!createdMessage || !changedMessage) throw new Error('unreachable');

  t.equal(createdMessage.key, order.id);
  t.match(createdMessage.envelope, { type: 'orders.created.v1', version: 1, correlationId: createId });
  t.same(createdMessage.envelope.data, {
    orderId: order.id,
    userId: buyer.id,
    items: [{ productId: product.id, quantity: 2, unitPriceCents: 700 }],
    totalCents: 1400,
  });
  t.ok(Value.Check(EnvelopeSchema('orders.created.v1', producedTopics['orders.created.v1']), createdMessage.envelope));
  t.same(createdMessage.headers, {
    'x-event-id': createdMessage.envelope.id,
    'x-event-type': 'orders.created.v1',
    'x-correlation-id': createId,
  });

  t.equal(changedMessage.key, order.id);
  t.match(changedMessage.envelope, { type: 'orders.status-changed.v1', version: 1, correlationId: cancelId });
  t.same(changedMessage.envelope.data, { orderId: order.id, from: 'pending', to: 'cancelled' });
  t.ok(Value.Check(EnvelopeSchema('orders.status-changed.v1', producedTopics['orders.status-changed.v1']), changedMessage.envelope));
  t.same(changedMessage.headers, {
    'x-event-id': changedMessage.envelope.id,
    'x-event-type': 'orders.status-changed.v1',
    'x-correlation-id': cancelId,
  });

  const sent = await eventually(async () => {
    const rows = await rowsByKey(app, [order.id]);
    return rows.every((row) => row.sentAt !== null) ? rows : undefined;
  }, 'both rows marked sent');
  t.same(sent.map((row) => row.id), [createdMessage.envelope.id, changedMessage.envelope.id], 'the messages are these rows');
  const [first, second] = sent as [OutboxRow, OutboxRow];
  t.ok((first.sentAt as Date) <= (second.sentAt as Date), 'the status change went out only after the creation was sent');
});

t.test('a rolled-back write publishes nothing', async (t) => {
  t.test('outbox.add in a transaction that rolls back leaves no row', async (t) => {
    const key = randomUUID();
    let id: string | undefined;
    await t.rejects(
      app.db.transaction(async (tx) => {
        id = await app.outbox.add(tx, { topic: 'users.registered.v1', key, data: { userId: key, email: 'x@example.com' } });
        t.equal((await tx.select().from(outbox).where(eq(outbox.key, key))).length, 1, 'written inside the transaction');
        throw new Error('roll back');
      }),
      /roll back/,
    );
    t.match(id, UUID);
    t.same(await rowsByKey(app, [key]), [], 'no row after the rollback');
  });

  t.test('a duplicate registration (409) leaves no second row and no second message, also when concurrent', async (t) => {
    const payload = (email: string) => ({ email, password: PASSWORD, name: 'Dup' });
    const email = uniqueEmail('dup');
    const first = await app.inject({ method: 'POST', url: '/v1/auth/register', payload: payload(email) });
    t.equal(first.statusCode, 201);
    const again = await app.inject({ method: 'POST', url: '/v1/auth/register', payload: payload(email.toUpperCase()) });
    t.equal(again.statusCode, 409);
    t.equal(again.json().code, 'EMAIL_TAKEN');

    // Simultaneous registrations pass the pre-check together; all but one then fail on the unique index inside the
    // transaction that writes the event: the rollback must take the event away too.
    const racing = uniqueEmail('race');
    const responses = await Promise.all(
      Array.from({ length: 8 }, () => app.inject({ method: 'POST', url: '/v1/auth/register', payload: payload(racing) })),
    );
    const codes = responses.map((r) => r.statusCode).sort();
    t.same(codes, [201, 409, 409, 409, 409, 409, 409, 409]);
    const winner = (responses.find((r) => r.statusCode === 201)?.json() as { id: string }).id;

    const emails = [email, racing];
    const rows = await app.db
      .select()
      .from(outbox)
      .where(and(eq(outbox.topic, 'users.registered.v1'), inArray(sql`${outbox.envelope}->'data'->>'email'`, emails)));
    t.equal(rows.length, 2, 'one row per created user, none for the rejected ones');
    t.ok(rows.some((row) => row.key === winner));

    // The winner's message arriving means the relay went past these rows; nothing else names these emails.
    await main.expect('users.registered.v1', winner, 1, 'the winner\'s message');
    await main.expect('users.registered.v1', (first.json() as { id: string }).id, 1, 'the first user\'s message');
    const named = main.messages.filter((m) => m.envelope.type === 'users.registered.v1' && emails.includes(String(m.envelope.data.email)));
    t.equal(named.length, 2);
  });

  t.test('an order failing with INSUFFICIENT_STOCK leaves no row and no message', async (t) => {
    const admin = await createAdmin(app);
    const buyer = await createUser(app, 'short');
    const plenty = await createProduct(app, admin, { stock: 10 });
    const scarce = await createProduct(app, admin, { stock: 1 });
    const byUser = sql`${outbox.envelope}->'data'->>'userId'`;

    const failed = await app.inject(orderRequest(buyer, [
      { productId: plenty.id, quantity: 1 },
      { productId: scarce.id, quantity: 2 },
    ]));
    t.equal(failed.statusCode, 409);
    t.equal(failed.json().code, 'INSUFFICIENT_STOCK');
    t.same(
      await app.db.select().from(outbox).where(and(eq(outbox.topic, 'orders.created.v1'), eq(byUser, buyer.id))),
      [],
      'no orders.created.v1 row for the buyer',
    );

    // A later successful order is published; it is the only orders.created.v1 of this buyer.
    const ok = await app.inject(orderRequest(buyer, [{ productId: plenty.id, quantity: 1 }]));
    t.equal(ok.statusCode, 201);
    const order = ok.json() as { id: string };
    await main.expect('orders.created.v1', order.id, 1, 'the successful order\'s message');
    const rows = await app.db.select().from(outbox).where(and(eq(outbox.topic, 'orders.created.v1'), eq(byUser, buyer.id)));
    t.same(rows.map((row) => row.key), [order.id]);
    t.same(
      main.messages.filter((m) => m.envelope.type === 'orders.created.v1' && m.envelope.data.userId === buyer.id).map((m) => m.key),
      [order.id],
    );
  });
});

t.test('1,000 registrations -> exactly 1,000 users.registered.v1 messages, none missing, none duplicated', async (t) => {
  const tag = `bulk-${randomBytes(4).toString('hex')}`;
  const started = performance.now();
  const ids = await registerMany(app, tag, 1000);
  const registered = performance.now();
  const wanted = new Set(ids);
  t.equal(wanted.size, 1000);

  await main.expect('users.registered.v1', wanted, 1000, '1,000 users.registered.v1 messages');
  const delivered = performance.now();
  await eventually(async () => ((await app.outbox.backlog()) === 0 ? true : undefined), 'an empty backlog');
  t.comment(
    `1,000 registrations in ${(registered - started).toFixed(0)} ms; all 1,000 messages consumed ` +
    `${(delivered - registered).toFixed(0)} ms later (${(delivered - started).toFixed(0)} ms end to end)`,
  );

  // A later event through the same relay and broker: whatever the relay would resend of the 1,000 came before it.
  const [barrier] = await registerMany(app, `${tag}-barrier`, 1);
  await main.expect('users.registered.v1', barrier as string, 1, 'the barrier message');

  const messages = main.of('users.registered.v1', wanted);
  t.equal(messages.length, 1000, 'exactly 1,000 messages');
  const eventIds = messages.map((m) => m.envelope.id);
  t.same(duplicates(eventIds), [], 'no event id twice');
  t.equal(new Set(eventIds).size, 1000, '1,000 distinct event ids');
  t.same(duplicates(messages.map((m) => m.key as string)), [], 'no user twice');
  t.same(new Set(messages.map((m) => m.key)), wanted, 'every registered user, none missing');
  t.ok(messages.every((m) => m.envelope.data.userId === m.key && m.headers['x-event-id'] === m.envelope.id), 'keys and headers match');
  t.equal(
    main.messages.filter((m) => m.envelope.type === 'users.registered.v1' && String(m.envelope.data.email).startsWith(`${tag}-`)).length,
    1001,
    'no other message names these users',
  );

  const rows = await rowsByKey(app, ids);
  t.equal(rows.length, 1000, 'one row per registration');
  t.same(new Set(rows.map((row) => row.id)), new Set(eventIds), 'the messages are these rows');
  t.ok(rows.every((row) => row.sentAt !== null), 'every row has sent_at');
  t.ok(rows.every((row) => row.attempts === 1), 'every row was published by one successful attempt');
  t.equal(await app.outbox.backlog(), 0);
});

t.test('broker unreachable: the app\'s relay keeps rows pending and loses nothing', async (t) => {
  // Only the relay of the app under test may touch the outbox, not the main app's (it would publish to its own broker).
  await withoutAppRelay(t, app);
  const broker = await startEmbeddedBroker();
  t.teardown(() => broker.stop());
  const other = await build(t, { env: { KAFKA_BROKERS: broker.bootstrap } });
  t.equal(other.kafka.brokers, broker.bootstrap);
  t.equal(other.kafka.embedded, true, 'recognised as an embedded broker');
  const reader = await collector(t, broker.bootstrap, [other.kafka.topic('users.registered.v1')]);

  // While the broker is up, this app's relay delivers to it.
  const [up] = await registerMany(other, `up-${randomBytes(4).toString('hex')}`, 1);
  await reader.expect('users.registered.v1', up as string, 1, 'a message while the broker is up');

  await broker.stop();
  const ids = await registerMany(other, `down-${randomBytes(4).toString('hex')}`, 20, 20);
  const rows = await rowsByKey(other, ids);
  const eventIds = rows.map((row) => row.id);
  t.equal(rows.length, 20, 'the registrations committed their events');

  // The relay claims the rows (FOR UPDATE) and tries to publish them to the dead broker.
  const claimedAfter = performance.now();
  await eventually(async () => ((await unlockedCount(other, eventIds)) < 20 ? true : undefined), 'the relay to claim the rows');
  t.comment(`relay claimed rows ${(performance.now() - claimedAfter).toFixed(0)} ms after the registrations`);
  t.ok((await other.outbox.backlog()) >= 20, 'backlog counts them');
  let pending = await rowsById(other, eventIds);
  t.ok(pending.every((row) => row.sentAt === null), 'sent_at stays null');
  t.ok(pending.every((row) => row.attempts === 0), 'no attempt counted while the first batch is in flight');

  // Closing waits for the batch in flight: it fails (librdkafka's message timeout) and its transaction rolls back.
  const closing = performance.now();
  await other.close();
  t.comment(`the app with the dead broker closed in ${(performance.now() - closing).toFixed(0)} ms`);
  pending = await rowsById(app, eventIds); // the same database; `other` is closed
  t.equal(pending.length, 20, 'nothing lost');
  t.ok(pending.every((row) => row.sentAt === null), 'still pending after the failed publish');
  // The batch that was in flight records its failed attempt (rows written after it was claimed have none yet).
  t.ok(pending.some((row) => row.attempts >= 1 && typeof row.lastError === 'string'), 'the failed attempt is recorded');
  t.equal(reader.of('users.registered.v1', new Set(ids)).length, 0, 'nothing reached a broker');

  // Recovery: a relay that can reach a broker (the main app's) delivers every pending row, once.
  app.outbox.start();
  const started = performance.now();
  const wanted = new Set(ids);
  await main.expect('users.registered.v1', wanted, 20, 'the 20 pending events after recovery');
  t.comment(`20 pending events delivered ${(performance.now() - started).toFixed(0)} ms after recovery`);
  await eventually(async () => ((await app.outbox.backlog()) === 0 ? true : undefined), 'an empty backlog');
  const delivered = main.of('users.registered.v1', wanted);
  t.equal(delivered.length, 20);
  t.same(new Set(delivered.map((m) => m.envelope.id)), new Set(eventIds), 'each pending event, once');
  const sent = await rowsById(app, eventIds);
  t.ok(sent.every((row) => row.sentAt !== null && row.attempts >= 1 && row.lastError === null), 'sent; the failure is cleared');
});

t.test('a relay whose publish fails keeps rows pending, backs off, and delivers each exactly once after recovery', async (t) => {
  await withoutAppRelay(t, app);
  const ids = await registerMany(app, `flaky-${randomBytes(4).toString('hex')}`, 20, 20);
  const rows = await rowsByKey(app, ids);
  const eventIds = rows.map((row) => row.id);
  t.equal(await app.outbox.backlog(), 20);

  let brokerDown = true;
  const failedCalls: { at: number; ids: string[] }[] = [];
  const deliveredIds: string[] = [];
  const real = publishWith(app);
  const relay = createOutbox({
    db: app.db,
    log: app.log.child({ test: 'flaky-relay' }),
    publish: async (messages) => {
      if (brokerDown) {
        failedCalls.push({ at: performance.now(), ids: messages.map((m) => m.headers['x-event-id'] as string) });
        throw new Error('broker unreachable');
      }
      await real(messages);
      deliveredIds.push(...messages.map((m) => m.headers['x-event-id'] as string));
    },
    pollMs: 10,
    batchSize: 50,
  });
  t.teardown(() => relay.stop());
  relay.start();

  await eventually(async () => (failedCalls.length >= 5 ? true : undefined), '5 failed publish attempts');
  const gaps = failedCalls.slice(1, 5).map((call, i) => call.at - (failedCalls[i] as { at: number }).at);
  t.comment(`gaps between failed attempts: ${gaps.map((gap) => gap.toFixed(0)).join(', ')} ms`);
  t.ok((gaps[3] as number) > (gaps[0] as number) * 2, 'the relay backs off between failed attempts');
  t.ok(failedCalls.every((call) => new Set(call.ids).size === 20 && call.ids.every((id) => eventIds.includes(id))), 'each attempt retries the 20 rows');
  t.equal(await app.outbox.backlog(), 20, 'rows stay pending while publishing fails');
  const pending = await rowsById(app, eventIds);
  t.ok(pending.every((row) => row.sentAt === null && row.attempts >= 4), 'sent_at null, every failed attempt counted');
  t.ok(pending.every((row) => typeof row.lastError === 'string' && row.lastError.length > 0), 'the last error is recorded');
  t.equal(main.of('users.registered.v1', new Set(ids)).length, 0, 'nothing published');

  brokerDown = false;
  const recovered = performance.now();
  await main.expect('users.registered.v1', new Set(ids), 20, 'the 20 events after recovery');
  t.comment(`delivered ${(performance.now() - recovered).toFixed(0)} ms after recovery (after ${failedCalls.length} failed attempts)`);
  await eventually(async () => ((await app.outbox.backlog()) === 0 ? true : undefined), 'an empty backlog');
  await relay.stop();

  t.same(deliveredIds.toSorted(), eventIds.toSorted(), 'the relay published each event exactly once');
  const messages = main.of('users.registered.v1', new Set(ids));
  t.equal(messages.length, 20);
  t.same(new Set(messages.map((m) => m.envelope.id)), new Set(eventIds));
  const sent = await rowsById(app, eventIds);
  t.ok(sent.every((row) => row.sentAt !== null && row.attempts > 4 && row.lastError === null), 'all marked sent, failure cleared');
});

t.test('two relays on one database publish each key\'s events once and in seq order', async (t) => {
  await withoutAppRelay(t, app);
  const keys = Array.from({ length: 5 }, () => randomUUID());
  const perKey = 20;
  // Interleaved across keys, one transaction per event: seq orders the events of each key.
  for (let n = 0; n < perKey; n++) {
    for (const key of keys) {
      await app.db.transaction((tx) =>
        app.outbox.add(tx, {
          topic: 'orders.status-changed.v1',
          key,
          data: { orderId: key, from: n % 2 ? 'paid' : 'pending', to: n % 2 ? 'shipped' : 'paid' },
        }),
      );
    }
  }
  const rows = await rowsByKey(app, keys);
  t.equal(rows.length, keys.length * perKey);
  const seqOf = new Map(rows.map((row) => [row.id, row.seq]));

  const published: { relay: string; key: string; seq: number }[] = [];
  const real = publishWith(app);
  const relays = ['A', 'B'].map((name) =>
    createOutbox({
      db: app.db,
      log: app.log.child({ test: `relay-${name}` }),
      publish: async (messages) => {
        // A little latency of its own, so the two relays overlap.
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 5));
        await real(messages);
        for (const m of messages) published.push({ relay: name, key: m.key, seq: seqOf.get(m.headers['x-event-id'] as string) as number });
      },
      pollMs: 10,
      batchSize: 3,
    }),
  );
  t.teardown(() => Promise.all(relays.map((relay) => relay.stop())));
  const started = performance.now();
  for (const relay of relays) relay.start();

  const wanted = new Set(keys);
  await main.expect('orders.status-changed.v1', wanted, rows.length, `${rows.length} messages`);
  t.comment(`${rows.length} events through two relays in ${(performance.now() - started).toFixed(0)} ms`);
  await eventually(async () => ((await app.outbox.backlog()) === 0 ? true : undefined), 'an empty backlog');
  await Promise.all(relays.map((relay) => relay.stop()));

  t.ok(published.some((p) => p.relay === 'A') && published.some((p) => p.relay === 'B'), 'both relays published');
  t.equal(published.length, rows.length, 'each event published once');
  const messages = main.of('orders.status-changed.v1', wanted);
  t.equal(messages.length, rows.length, 'each event on the broker once');
  t.same(duplicates(messages.map((m) => m.envelope.id)), []);
  for (const key of keys) {
    const expected = rows.filter((row) => row.key === key).map((row) => row.seq);
    t.same(published.filter((p) => p.key === key).map((p) => p.seq), expected, `key ${key.slice(0, 8)}: published in seq order`);
    const onBroker = messages.filter((m) => m.key === key);
    t.equal(new Set(onBroker.map((m) => m.partition)).size, 1, 'one partition per key');
    const inOffsetOrder = onBroker.toSorted((a, b) => a.offset - b.offset).map((m) => seqOf.get(m.envelope.id));
    t.same(inOffsetOrder, expected, `key ${key.slice(0, 8)}: in seq order in its partition`);
  }
});
