/**
 * The baselines of `npm run bench`, each the bare stack doing the same work as one Plinth route, run as
 * its own process on the same Node: `tsx scripts/bench/baseline.ts <kind>` with PORT, DATABASE_URL,
 * REDIS_URL (and for `consumer`: KAFKA_BROKERS, BENCH_TOPIC) in the environment. Prints `ready` when it
 * serves (or consumes). Written plainly on purpose: no logger, no hooks, no validation beyond Fastify's own.
 */
import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import postgres from 'postgres';
import { createKafka } from '../../app/core/adapter/kafka.js';
import { loadSettings } from '../../app/core/settings/index.js';

const kind = process.argv[2];
const env = (name: string) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
};

async function serve(register: (app: FastifyInstance) => void, close: () => Promise<unknown> = async () => {}) {
  const app = Fastify();
  register(app);
  app.addHook('onClose', close);
  await app.listen({ host: '127.0.0.1', port: Number(env('PORT')) });
  process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
  process.stdout.write('ready\n');
}

switch (kind) {
  case 'bare':
    // Bare Fastify returning the JSON of GET /health/live, with a response schema like Plinth's.
    await serve((app) =>
      app.get(
        '/health/live',
        { schema: { response: { 200: { type: 'object', properties: { status: { type: 'string' } } } } } },
        async () => ({ status: 'ok' }),
      ),
    );
    break;

  case 'redis': {
    // Fastify + one ioredis GET of the cached product JSON (the bench stores it under this key).
    const redis = new Redis(env('REDIS_URL'));
    await serve(
      (app) =>
        app.get<{ Params: { id: string } }>('/v1/products/:id', async (request, reply) => {
          const cached = await redis.get(`bench-baseline:products:${request.params.id}`);
          if (cached === null) return reply.code(404).send({ statusCode: 404 });
          return reply.type('application/json').send(cached);
        }),
      () => redis.quit(),
    );
    break;
  }

  case 'postgres': {
    // Fastify + postgres.js running the queries of GET /v1/products?limit=20 (one page + the total).
    const sql = postgres(env('DATABASE_URL'), { max: Number(process.env.DATABASE_POOL_MAX ?? 10) });
    await serve(
      (app) =>
        app.get<{ Querystring: { limit?: string; offset?: string } }>('/v1/products', async (request) => {
          const limit = Number(request.query.limit ?? 20);
          const offset = Number(request.query.offset ?? 0);
          const items = await sql`select id, sku, name, description, price_cents, stock, version, created_at, updated_at
            from products where deleted_at is null order by created_at desc, id asc limit ${limit} offset ${offset}`;
          const [counted] = await sql`select count(*)::int as total from products where deleted_at is null`;
          return { items, total: counted?.total ?? 0, limit, offset };
        }),
      () => sql.end(),
    );
    break;
  }

  case 'orders': {
    // Fastify + postgres.js doing the order transaction bare: idempotency lookup, conditional stock
    // update, order + items rows and the outbox row, in one transaction.
    const sql = postgres(env('DATABASE_URL'), { max: Number(process.env.DATABASE_POOL_MAX ?? 10) });
    const userId = env('BENCH_USER_ID');
    await serve(
      (app) =>
        app.post<{ Body: { items: { productId: string; quantity: number }[] } }>('/v1/orders', async (request, reply) => {
          const key = String(request.headers['idempotency-key']);
          const [existing] = await sql`select id from orders where user_id = ${userId} and idempotency_key = ${key}`;
          if (existing) return reply.code(200).send(existing);
          const lines = [...request.body.items].sort((a, b) => a.productId.localeCompare(b.productId));
          const order = await sql.begin(async (tx) => {
            let total = 0;
            const items: { productId: string; quantity: number; unitPriceCents: number }[] = [];
            for (const line of lines) {
              const [product] = await tx`update products set stock = stock - ${line.quantity}, updated_at = now()
                where id = ${line.productId} and deleted_at is null and stock >= ${line.quantity} returning price_cents`;
              if (!product) throw new Error('insufficient stock');
              total += product.price_cents * line.quantity;
              items.push({ ...line, unitPriceCents: product.price_cents });
            }
            const [row] = await tx`insert into orders (user_id, total_cents, idempotency_key)
              values (${userId}, ${total}, ${key}) returning *`;
            for (const item of items) {
              await tx`insert into order_items (order_id, product_id, quantity, unit_price_cents)
                values (${row!.id}, ${item.productId}, ${item.quantity}, ${item.unitPriceCents})`;
            }
            const envelope = { id: randomUUID(), type: 'orders.created.v1', occurredAt: new Date().toISOString(), version: 1,
              data: { orderId: row!.id, userId, items, totalCents: total } };
            await tx`insert into outbox (id, topic, key, envelope) values (${envelope.id}, 'bench-baseline.orders.created.v1',
              ${row!.id}, ${tx.json(envelope)})`;
            return { ...row, items };
          });
          return reply.code(201).send(order);
        }),
      () => sql.end(),
    );
    break;
  }

  case 'consumer': {
    // A consumer of the same client library (tuned like Plinth's for this broker) doing the same UPDATE
    // per message as the payments.completed.v1 handler, without validation, dedupe, retries or outbox.
    const sql = postgres(env('DATABASE_URL'), { max: 4 });
    const settings = loadSettings({ ...process.env, APP_ENV: 'production', JWT_SECRET: 'x'.repeat(32) });
    const kafka = await createKafka({ settings, log: pino({ level: 'warn' }) as never });
    const consumer = kafka.createConsumer({ groupId: `bench-baseline-${randomUUID()}` });
    await consumer.connect();
    await consumer.subscribe({ topics: [env('BENCH_TOPIC')] });
    await consumer.run({
      eachMessage: async ({ message }) => {
        const event = JSON.parse(String(message.value)) as { data: { orderId: string; amountCents: number } };
        await sql`update orders set status = 'paid', version = version + 1, updated_at = now()
          where id = ${event.data.orderId} and status = 'pending' and total_cents = ${event.data.amountCents}`;
      },
    });
    process.on('SIGTERM', () => void consumer.disconnect().then(() => kafka.close()).then(() => sql.end()).then(() => process.exit(0)));
    process.stdout.write('ready\n');
    break;
  }

  default:
    process.stderr.write(`unknown baseline '${kind}': bare | redis | postgres | orders | consumer\n`);
    process.exit(2);
}
