import { randomBytes, randomUUID } from 'node:crypto';
import ConfluentKafka, { type RdKafka as RdK } from '@confluentinc/kafka-javascript';
import t from 'tap';
import { startEmbeddedBroker } from '../../app/core/adapter/kafka.js';
import { envelope, envelopeHeaders, readTopics, testProducer } from '../helpers/kafka.js';
import { runCli } from '../helpers/cli.js';

/**
 * `npm run dlq:replay` (app/dlq-replay.ts) as its own process against an embedded broker over TCP: DLQ messages
 * as the consumer runtime writes them go back to their original topic once, with their key, value and headers.
 */

const { RdKafka } = ConfluentKafka;

/** How many messages a topic holds: the sum over its partitions of high - low watermark, asked of the broker now. */
async function messagesIn(bootstrap: string, topic: string): Promise<number> {
  const client = new RdKafka.Producer({ 'bootstrap.servers': bootstrap } as RdK.ProducerGlobalConfig);
  const call = <T>(fn: (cb: (error: RdK.LibrdKafkaError | null, value: T) => void) => void) =>
    new Promise<T>((resolve, reject) => fn((error, value) => (error ? reject(new Error(error.message)) : resolve(value))));
  await call<RdK.Metadata>((cb) => client.connect({ allTopics: false, timeout: 5000 }, cb));
  try {
    const metadata = await call<RdK.Metadata>((cb) => client.getMetadata({ topic, allTopics: false, timeout: 5000 }, cb));
    let total = 0;
    for (const { id } of metadata.topics.find((m) => m.name === topic)?.partitions ?? []) {
      const offsets = await call<RdK.WatermarkOffsets>((cb) => client.queryWatermarkOffsets(topic, id, 5000, cb));
      total += offsets.highOffset - offsets.lowOffset;
    }
    return total;
  } finally {
    await new Promise<void>((resolve) => client.disconnect(2000, () => resolve()));
  }
}

t.test('dlq:replay', async (t) => {
  const broker = await startEmbeddedBroker();
  t.teardown(() => broker.stop());
  const prefix = `t${process.pid}${randomBytes(3).toString('hex')}.`;
  const original = `${prefix}payments.failed.v1`;
  const dlq = `${original}.dlq`;
  const elsewhere = `${prefix}legacy.payments.v1`;
  const env = { APP_ENV: 'test', KAFKA_BROKERS: broker.bootstrap, KAFKA_TOPIC_PREFIX: prefix };
  const replay = (...args: string[]) => runCli('dlq-replay', args, { env });
  const replayedSoFar = async () =>
    (await messagesIn(broker.bootstrap, original)) + (await messagesIn(broker.bootstrap, elsewhere));

  const failed = (reason: string) => envelope('payments.failed.v1', { orderId: randomUUID(), paymentId: 'p-1', reason });
  const [e1, e2, e3, e4, e5] = [failed('one'), failed('two'), failed('three'), failed('four'), failed('five')];
  /** The headers the consumer runtime adds when it gives up on a message. */
  const dlqHeaders = (offset: number, topic: string | undefined = original) => ({
    'x-error': 'NOT_FOUND: No order has id ...',
    ...(topic ? { 'x-original-topic': topic } : {}),
    'x-original-partition': '2',
    'x-original-offset': String(offset),
  });
  const producer = await testProducer(t, broker.bootstrap);
  await producer.send(dlq, [
    { key: e1.data.orderId, value: JSON.stringify(e1), headers: { ...envelopeHeaders(e1), ...dlqHeaders(10) } },
    // Replayed once before and failed again.
    {
      key: e2.data.orderId,
      value: JSON.stringify(e2),
      headers: { ...envelopeHeaders(e2), ...dlqHeaders(11), 'x-replay-count': '1' },
    },
    // No x-original-topic: back to the topic the DLQ belongs to.
    { key: e3.data.orderId, value: JSON.stringify(e3), headers: { ...envelopeHeaders(e3), ...dlqHeaders(12, '') } },
    // Came from another topic than the DLQ's: the header wins.
    { key: e4.data.orderId, value: JSON.stringify(e4), headers: { ...envelopeHeaders(e4), ...dlqHeaders(13, elsewhere) } },
    // Not even JSON, no key: kept byte for byte.
    { key: null, value: 'not json {', headers: { 'x-event-id': e5.id, ...dlqHeaders(14) } },
  ]);

  t.test('refuses without KAFKA_BROKERS (78) or with a topic that has no DLQ (64)', async (t) => {
    const noBrokers = await runCli('dlq-replay', ['payments.failed.v1'], { env: { APP_ENV: 'test' } });
    t.equal(noBrokers.code, 78);
    t.match(noBrokers.stderr, 'KAFKA_BROKERS is not set');
    const unknown = await replay('payments.nope.v1');
    t.equal(unknown.code, 64);
    t.match(unknown.stderr, /^dlq:replay: no DLQ for 'payments.nope.v1'\n/);
    t.match(unknown.stderr, 'Usage: npm run dlq:replay -- <topic> [--limit n] [--dry-run]');
    t.match(unknown.stderr, 'The consumers dedupe by envelope id: a replayed message that was processed already is ignored');
    const badLimit = await replay('payments.failed.v1', '--limit', '0');
    t.equal(badLimit.code, 64);
  });

  t.test('--dry-run lists every message and publishes nothing', async (t) => {
    const result = await replay('payments.failed.v1', '--dry-run');
    t.equal(result.code, 0, result.stderr);
    // Per original topic, in name order.
    t.match(result.stdout, `dlq:replay: would replay 5 of 5 from ${dlq}\n  ${elsewhere}: 1\n  ${original}: 4\n`);
    t.equal(result.stdout.match(/^ {2}would replay /gm)?.length, 5, 'one line per message');
    t.equal(await replayedSoFar(), 0, 'nothing published');
  });

  t.test('--limit replays that many, the next run the rest, and a third run nothing', async (t) => {
    const limited = await replay('payments.failed.v1.dlq', '--limit', '2');
    t.equal(limited.code, 0, limited.stderr);
    t.match(limited.stdout, `${dlq}: 5 message(s) to replay, this run 2\n`);
    t.match(limited.stdout, `dlq:replay: replayed 2 of 5 from ${dlq}\n`);
    t.equal(await replayedSoFar(), 2, 'two published');

    const rest = await replay('payments.failed.v1');
    t.equal(rest.code, 0, rest.stderr);
    t.match(rest.stdout, `dlq:replay: replayed 3 of 3 from ${dlq}\n`);
    t.equal(await messagesIn(broker.bootstrap, original), 4, 'four back on the original topic');
    t.equal(await messagesIn(broker.bootstrap, elsewhere), 1, 'one on the topic its header named');

    const none = await replay('payments.failed.v1');
    t.equal(none.code, 0, none.stderr);
    t.equal(none.stdout, `dlq:replay: ${dlq} has nothing to replay\n`);
    t.equal(await replayedSoFar(), 5, 'nothing replayed twice');
    t.equal(await messagesIn(broker.bootstrap, dlq), 5, 'the DLQ keeps its messages (for the record)');
  });

  t.test('the replayed messages: same key and value, original headers, where they came from', async (t) => {
    const reader = await readTopics(t, broker.bootstrap, [original, elsewhere]);
    const byEvent = (id: string) => reader.find((m) => m.headers['x-event-id'] === id, `the replay of ${id}`);
    const replayed = { 'x-replayed-from': dlq, 'x-replay-count': '1' };

    const m1 = await byEvent(e1.id);
    t.match(m1, { topic: original, key: e1.data.orderId, value: JSON.stringify(e1) });
    t.same(m1.headers, { ...envelopeHeaders(e1), ...replayed }, 'x-error and x-original-* dropped');
    const m2 = await byEvent(e2.id);
    t.same(m2.headers, { ...envelopeHeaders(e2), ...replayed, 'x-replay-count': '2' }, 'the replay count goes up');
    t.match(await byEvent(e3.id), { topic: original, key: e3.data.orderId, value: JSON.stringify(e3) });
    t.match(await byEvent(e4.id), { topic: elsewhere, key: e4.data.orderId, value: JSON.stringify(e4) });
    const m5 = await byEvent(e5.id);
    t.match(m5, { topic: original, key: undefined, value: 'not json {' });
    t.same(m5.headers, { 'x-event-id': e5.id, ...replayed });
  });

  t.test('a message that reaches the DLQ later is replayed by the next run, alone', async (t) => {
    const late = failed('late');
    const headers = { ...envelopeHeaders(late), ...dlqHeaders(15) };
    await producer.send(dlq, [{ key: late.data.orderId, value: JSON.stringify(late), headers }]);
    const result = await replay('payments.failed.v1');
    t.equal(result.code, 0, result.stderr);
    t.match(result.stdout, `dlq:replay: replayed 1 of 1 from ${dlq}\n  ${original}: 1\n`);
    t.equal(await replayedSoFar(), 6);
  });
});
