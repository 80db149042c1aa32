import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eq } from 'drizzle-orm';
import Fastify, { type FastifyInstance } from 'fastify';
import { pino, type LoggerOptions } from 'pino';
import t, { type Test } from 'tap';
import plinth, { serverOptions } from '../../app/app.js';
import { outbox } from '../../app/core/service/outbox/model.js';
import { loadSettings } from '../../app/core/settings/index.js';
import { testSettings } from '../helpers/app.js';
import { uniqueSku } from '../helpers/catalog.js';
import { envelope, testProducer, waitFor } from '../helpers/kafka.js';
import { PASSWORD, uniqueEmail } from '../helpers/users.js';

/**
 * Logs: every line of a request carries its request id and correlation id, every line about a consumed message its
 * event id and correlation id, and the format is JSON except where pretty printing is asked for (local).
 */

type Line = Record<string, unknown>;

type Logged = { app: FastifyInstance; lines: Line[]; raw: string[] };

/** The whole app with the production server options, its JSON log lines captured (LOG_LEVEL=debug). */
async function buildLogged(t: Test, env: Record<string, string> = {}): Promise<Logged> {
  const settings = await testSettings({ env: { LOG_LEVEL: 'debug', ...env } });
  const options = serverOptions(settings);
  const lines: Line[] = [];
  const raw: string[] = [];
  const stream = {
    write: (line: string) => {
      raw.push(line);
      lines.push(JSON.parse(line) as Line);
    },
  };
  const app = Fastify({ ...options, logger: { ...(options.logger as LoggerOptions), stream } as never });
  t.teardown(() => app.close());
  await app.register(plinth, { settings });
  await app.ready();
  return { app, lines, raw };
}

t.test('requests: every line carries requestId and correlationId; an upstream x-correlation-id is honoured', async (t) => {
  const { app, lines } = await buildLogged(t);
  const linesOf = (requestId: string) => lines.filter((line) => line.requestId === requestId);
  const login = (headers: Record<string, string>) =>
    app.inject({ method: 'POST', url: '/v1/auth/login', headers, payload: { email: uniqueEmail('nobody'), password: PASSWORD } });

  t.test('a safe upstream id is every line\'s correlationId', async (t) => {
    const response = await login({ 'x-request-id': 'req-logs-1', 'x-correlation-id': 'corr.upstream_1-A' });
    t.equal(response.statusCode, 401);
    const mine = linesOf('req-logs-1');
    t.ok(mine.length >= 2, `the request logged ${mine.length} lines (rejection at debug, completion)`);
    t.ok(mine.some((line) => line.msg === 'request completed' && line.statusCode === 401), 'the one line per request');
    t.ok(mine.some((line) => line.msg === 'request rejected'), 'the error handler\'s line');
    t.ok(mine.every((line) => line.correlationId === 'corr.upstream_1-A'), 'every line carries the upstream correlation id');
    t.equal(lines.filter((line) => line.msg === 'request completed' && line.requestId === 'req-logs-1').length, 1, 'one completion line');
    t.notOk(lines.some((line) => line.msg === 'incoming request'), 'no second line per request');
  });

  t.test('an unsafe or missing x-correlation-id is replaced by the request id', async (t) => {
    for (const correlation of ['has spaces and ; semicolons', 'x'.repeat(129), undefined]) {
      const response = await login(correlation === undefined ? {} : { 'x-correlation-id': correlation });
      const requestId = response.headers['x-request-id'] as string;
      const mine = linesOf(requestId);
      t.ok(mine.length >= 2, `${mine.length} lines`);
      t.ok(mine.every((line) => line.correlationId === requestId), `correlationId = requestId for ${String(correlation).slice(0, 20)}`);
      if (correlation) t.notOk(JSON.stringify(lines).includes(correlation), 'the unsafe value is never logged');
    }
  });

  t.test('every line that names a request also names its correlation', async (t) => {
    const withRequest = lines.filter((line) => 'requestId' in line);
    t.ok(withRequest.length >= 8);
    t.ok(withRequest.every((line) => typeof line.correlationId === 'string' && line.correlationId !== ''));
  });

  t.test('the correlation id flows into the events the request emits', async (t) => {
    const register = async (headers: Record<string, string>) => {
      const response = await app.inject({
        method: 'POST',
        url: '/v1/auth/register',
        headers,
        payload: { email: uniqueEmail('corr'), password: PASSWORD, name: 'Corr' },
      });
      t.equal(response.statusCode, 201);
      const [row] = await app.db.select().from(outbox).where(eq(outbox.key, (response.json() as { id: string }).id));
      return { response, envelope: row?.envelope as { correlationId?: string } };
    };
    const upstream = await register({ 'x-correlation-id': 'checkout-7f3a' });
    t.equal(upstream.envelope.correlationId, 'checkout-7f3a', 'the caller\'s correlation id');
    const own = await register({ 'x-correlation-id': 'not safe!' });
    t.equal(own.envelope.correlationId, own.response.headers['x-request-id'], 'otherwise the request id');
  });
});

t.test('consumed messages: every line carries the event id and the correlation id', async (t) => {
  const { app, lines, raw } = await buildLogged(t, { CONSUMERS_IN_API: 'true' });
  const producer = await testProducer(t, app.kafka.brokers);
  const topic = app.kafka.topic('inventory.adjusted.v1');
  const product = await app.products.create({ sku: uniqueSku('logs'), name: 'Logs', priceCents: 100, stock: 1 });
  /** The lines about the message at `offset` of `partition` (each carries topic, partition and offset). */
  const linesOf = (partition: number, offset: string) =>
    lines.filter((line) => line.topic === topic && line.partition === partition && line.offset === offset);
  const logged = (partition: number, offset: string, msg: string) =>
    waitFor(() => linesOf(partition, offset).some((line) => line.msg === msg) || undefined, `a '${msg}' line`);

  t.test('handled: the envelope\'s correlation id', async (t) => {
    const event = envelope('inventory.adjusted.v1', { sku: product.sku, delta: 1 }, { correlationId: 'corr-restock-9' });
    const ack = await producer.sendEvent(topic, product.sku, event);
    await logged(ack.partition, ack.baseOffset as string, 'message handled');
    const mine = linesOf(ack.partition, ack.baseOffset as string);
    t.ok(mine.length >= 1);
    t.ok(mine.every((line) => line.eventId === event.id && line.correlationId === 'corr-restock-9' && line.consumer === 'inventory-adjusted'));
    t.ok(mine.every((line) => line.component === 'consumers'), 'the part of the service that wrote it');
  });

  t.test('no line repeats a key (the service name and the component are two keys)', async (t) => {
    const repeated = raw.filter((line) => (line.match(/"service":/g) ?? []).length > 1);
    t.ok(raw.length > 0);
    t.same(repeated, []);
  });

  t.test('failed and sent to the DLQ: without a correlation id in the envelope it is the event id', async (t) => {
    const event = envelope('inventory.adjusted.v1', { sku: uniqueSku('missing'), delta: 1 });
    const ack = await producer.sendEvent(topic, 'missing', event);
    await logged(ack.partition, ack.baseOffset as string, 'message sent to the DLQ');
    const mine = linesOf(ack.partition, ack.baseOffset as string);
    t.ok(mine.every((line) => line.eventId === event.id && line.correlationId === event.id));
  });

  t.test('not even JSON: the ids come from the headers', async (t) => {
    const [ack] = await producer.send(topic, [
      { key: 'bad', value: '{not json', headers: { 'x-event-id': 'evt-from-header', 'x-correlation-id': 'corr-from-header' } },
    ]);
    const { partition, baseOffset } = ack as { partition: number; baseOffset: string };
    await logged(partition, baseOffset, 'message sent to the DLQ');
    const mine = linesOf(partition, baseOffset);
    t.ok(mine.every((line) => line.eventId === 'evt-from-header' && line.correlationId === 'corr-from-header'));
  });
});

t.test('format: pretty (pino-pretty transport) in local, JSON elsewhere, LOG_FORMAT decides', async (t) => {
  const deployed = {
    DATABASE_URL: 'postgres://u@db:5432/app',
    REDIS_URL: 'redis://redis:6379',
    KAFKA_BROKERS: 'kafka:9092',
    JWT_SECRET: 'a-production-secret-of-at-least-32-characters',
  };
  const loggerOf = (env: Record<string, string>) => serverOptions(loadSettings(env)).logger as LoggerOptions;
  const target = (env: Record<string, string>) => (loggerOf(env).transport as { target?: string } | undefined)?.target;

  t.equal(target({ APP_ENV: 'local' }), 'pino-pretty', 'local: pretty');
  t.equal(target({}), 'pino-pretty', 'no APP_ENV means local');
  t.equal(target({ APP_ENV: 'test' }), undefined, 'test: JSON');
  t.equal(target({ APP_ENV: 'staging', ...deployed }), undefined, 'staging: JSON');
  t.equal(target({ APP_ENV: 'production', ...deployed }), undefined, 'production: JSON');
  t.equal(target({ APP_ENV: 'local', LOG_FORMAT: 'json' }), undefined, 'LOG_FORMAT=json in local');
  t.equal(target({ APP_ENV: 'staging', ...deployed, LOG_FORMAT: 'pretty' }), 'pino-pretty', 'LOG_FORMAT=pretty anywhere');
  t.equal(loggerOf({ APP_ENV: 'production', ...deployed }).level, 'info');
  t.throws(() => loadSettings({ LOG_FORMAT: 'xml' }), { message: /LOG_FORMAT: must be one of json, pretty/ });

  // The local transport options really load pino-pretty and print lines that are not JSON.
  const dir = await mkdtemp(join(tmpdir(), 'plinth-pretty-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'out.log');
  const transport = loggerOf({ APP_ENV: 'local' }).transport as { target: string; options: Record<string, unknown> };
  const options = { ...transport.options, destination: file, colorize: false };
  const logger = pino({ transport: { target: transport.target, options } });
  logger.info({ requestId: 'r-1' }, 'pretty hello');
  const text = await waitFor(async () => {
    const content = await readFile(file, 'utf8').catch(() => '');
    return content.includes('pretty hello') && content;
  }, 'pino-pretty to write the line');
  t.match(text, /INFO.*pretty hello/);
  t.match(text, /requestId: "r-1"/);
  t.notOk(text.trimStart().startsWith('{'), 'not JSON');
});
