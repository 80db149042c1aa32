// `npm run dlq:replay -- <topic> [--limit n] [--dry-run]`: after the cause of the failures is fixed, re-publishes the
// messages of `<topic>.dlq` to the topic they came from. Commits each DLQ message only once the broker acknowledged its
// re-publication, with a consumer group of its own, so a second run replays only what came after (at least once: a
// crash between the two replays one message again, and the consumers' dedupe by envelope id absorbs it).
// Exit codes: 0 done, 64 bad arguments, 78 invalid settings or no KAFKA_BROKERS, 1 failure (one line on stderr).
import { parseArgs } from 'node:util';
import type { KafkaJS } from '@confluentinc/kafka-javascript';
import pino from 'pino';
import { createKafka, type KafkaAdapter } from './core/adapter/kafka.js';
import { loadSettingsOrExit } from './core/settings/index.js';
import { consumedTopics } from './schemas/events.js';

const known = Object.keys(consumedTopics);
const usage = `Usage: npm run dlq:replay -- <topic> [--limit n] [--dry-run]

Re-publishes the messages of <topic>.dlq to the topic each came from (header x-original-topic, else <topic>) with
the same key, value and headers, minus x-error and x-original-*, plus x-replayed-from and x-replay-count.
  <topic>      logical name, with or without .dlq; KAFKA_TOPIC_PREFIX is added. DLQs exist for:
               ${known.join(', ')}
  --limit n    replay at most n messages (the rest stay for the next run)
  --dry-run    list what would be replayed; publish and commit nothing

It reads with a consumer group of its own (<KAFKA_TOPIC_PREFIX><SERVICE_NAME>.dlq-replay) and commits a message
only after the broker acknowledged its re-publication, so running it again does not replay a message twice. It stops
at the end of the DLQ as it was when it started. Fix the cause first: a message that fails again goes back to the DLQ.
The consumers dedupe by envelope id: a replayed message that was processed already is ignored.
Needs KAFKA_BROKERS (for \`npm start\` with its embedded broker: the address it logs at start).
`;

/** No message for this long while some are still due: another replay holds the partitions, or the broker is gone. */
const IDLE_TIMEOUT_MS = 30_000;

function usageError(message: string): never {
  process.stderr.write(`dlq:replay: ${message}\n\n${usage}`);
  process.exit(64);
}

function parse() {
  try {
    return parseArgs({
      allowPositionals: true,
      options: { 'limit': { type: 'string' }, 'dry-run': { type: 'boolean' }, 'help': { type: 'boolean', short: 'h' } },
    });
  } catch (error) {
    return usageError((error as Error).message);
  }
}
const args = parse();
if (args.values.help) {
  process.stdout.write(usage);
  process.exit(0);
}
const [name, ...extra] = args.positionals;
if (!name || extra.length > 0) usageError(name ? `one topic only (got ${args.positionals.join(' ')})` : 'which topic?');
const base = name.replace(/\.dlq$/, '');
if (!known.includes(base)) usageError(`no DLQ for '${name}'`);
const limitText = args.values.limit;
if (limitText !== undefined && !/^[1-9]\d*$/.test(limitText)) usageError(`--limit must be a positive integer (got '${limitText}')`);
const limit = limitText === undefined ? Infinity : Number(limitText);
const dryRun = args.values['dry-run'] ?? false;

const settings = loadSettingsOrExit();
if (!settings.KAFKA_BROKERS) {
  process.stderr.write(
    'dlq:replay: KAFKA_BROKERS is not set (the embedded broker lives inside `npm start`: pass the address it logs)\n',
  );
  process.exit(78);
}
// Logs to stderr: stdout carries the result.
const log = pino({ level: settings.LOG_LEVEL }, pino.destination(2));

type Message = KafkaJS.KafkaMessage;
const first = (value: Buffer | string | (Buffer | string)[] | undefined) => (Array.isArray(value) ? value[0] : value);

/** The DLQ message's headers as they were on the original, and where it has been. */
function replayHeaders(message: Message, dlq: string): Record<string, string | Buffer> {
  const headers: Record<string, string | Buffer> = {};
  for (const [header, value] of Object.entries(message.headers ?? {})) {
    const one = first(value);
    if (one == null || header === 'x-error' || header.startsWith('x-original-')) continue;
    headers[header] = one;
  }
  const before = Number.parseInt(first(message.headers?.['x-replay-count'])?.toString() ?? '', 10);
  headers['x-replayed-from'] = dlq;
  headers['x-replay-count'] = String(Number.isInteger(before) && before > 0 ? before + 1 : 1);
  return headers;
}

async function replay(kafka: KafkaAdapter): Promise<number> {
  const dlq = kafka.topic(`${base}.dlq`);
  const fallback = kafka.topic(base);
  const partitions = await kafka.partitions(dlq);
  if (partitions.length === 0) {
    process.stdout.write(`dlq:replay: ${dlq} does not exist: nothing to replay\n`);
    return 0;
  }
  const consumer = kafka.createConsumer({ groupId: `${settings.SERVICE_NAME}.dlq-replay`, autoCommit: false });
  await consumer.connect();

  // What is due: from the group's committed offset (or the start) up to the end as it is now, per partition.
  const committed = await consumer.committed(partitions.map((partition) => ({ topic: dlq, partition })));
  const due = new Map<number, { next: number; end: number }>();
  for (const partition of partitions) {
    const { low, high } = await kafka.watermarks(dlq, partition);
    const offset = Number(committed.find((c) => c.partition === partition)?.offset ?? -1);
    const next = Math.max(low, offset);
    if (next < high) due.set(partition, { next, end: high });
  }
  const waiting = [...due.values()].reduce((sum, { next, end }) => sum + end - next, 0);
  if (waiting === 0) {
    process.stdout.write(`dlq:replay: ${dlq} has nothing to replay\n`);
    return 0;
  }
  const target = Math.min(limit, waiting);
  process.stdout.write(`dlq:replay: ${dlq}: ${waiting} message(s) to replay${target < waiting ? `, this run ${target}` : ''}\n`);

  const perTopic = new Map<string, number>();
  let replayed = 0;
  let failure: Error | undefined;
  let finish: () => void = () => {};
  const finished = new Promise<void>((resolve) => {
    finish = resolve;
  });
  let idle: NodeJS.Timeout | undefined;
  const watch = () => {
    clearTimeout(idle);
    idle = setTimeout(() => {
      failure = new Error(
        `no message arrived for ${IDLE_TIMEOUT_MS / 1000} s with ${target - replayed} still due ` +
        '(is another dlq:replay running, or the broker unreachable?)',
      );
      finish();
    }, IDLE_TIMEOUT_MS);
  };
  watch();

  await consumer.subscribe({ topics: [dlq] });
  await consumer.run({
    eachMessage: async ({ topic, partition, message }) => {
      const range = due.get(partition);
      const offset = Number(message.offset);
      // Past the end as it was at start, or past the limit: left for the next run, uncommitted.
      if (failure || replayed >= target || !range || offset >= range.end) return;
      watch();
      const to = first(message.headers?.['x-original-topic'])?.toString() || fallback;
      try {
        if (dryRun) {
          const error = first(message.headers?.['x-error'])?.toString() ?? '';
          process.stdout.write(`  would replay ${topic}[${partition}]@${offset} -> ${to} key=${message.key?.toString() ?? ''}: ${error}\n`);
        } else {
          const headers = replayHeaders(message, dlq);
          await kafka.send(to, [{ key: message.key ?? null, value: message.value ?? null, headers }]);
          await consumer.commitOffsets([{ topic, partition, offset: String(offset + 1) }]);
        }
      } catch (error) {
        failure = error as Error;
        finish();
        return;
      }
      perTopic.set(to, (perTopic.get(to) ?? 0) + 1);
      replayed += 1;
      if (offset + 1 >= range.end) due.delete(partition);
      if (replayed >= target || due.size === 0) finish();
    },
  });
  await finished;
  clearTimeout(idle);
  await consumer.disconnect();

  const verb = dryRun ? 'would replay' : 'replayed';
  process.stdout.write(`dlq:replay: ${verb} ${replayed} of ${waiting} from ${dlq}\n`);
  for (const [topic, count] of [...perTopic].sort()) process.stdout.write(`  ${topic}: ${count}\n`);
  if (failure) throw failure;
  return replayed;
}

let code = 0;
try {
  const kafka = await createKafka({ settings, log });
  try {
    await replay(kafka);
  } finally {
    await kafka.close();
  }
} catch (error) {
  process.stderr.write(`dlq:replay: failed: ${(error as Error).message.split('\n')[0]}\n`);
  code = 1;
}
process.exit(code);
