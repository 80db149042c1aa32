import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import fp from 'fastify-plugin';
import Type from 'typebox';

export type CheckResult = 'ok' | 'down';
type Check = () => Promise<unknown>;

const CHECK_TIMEOUT_MS = 1000;

/**
 * Liveness and readiness. Adapters register their own readiness check (`app.health.add('db', ping)`)
 * so this file never needs to know which dependencies exist.
 */
export function createHealth() {
  const checks = new Map<string, Check>();
  const gauges = new Map<string, () => Promise<number>>();
  return {
    add(name: string, check: Check) {
      if (checks.has(name)) throw new Error(`readiness check '${name}' is already registered`);
      checks.set(name, check);
    },
    /** A number reported beside the checks (e.g. the outbox backlog); it never makes the service unready. */
    addGauge(name: string, read: () => Promise<number>) {
      gauges.set(name, read);
    },
    async run(): Promise<{ ready: boolean; checks: Record<string, CheckResult>; gauges: Record<string, number> }> {
      const [entries, values] = await Promise.all([
        Promise.all([...checks].map(async ([name, check]) => [name, await runWithTimeout(check)] as const)),
        Promise.all([...gauges].map(async ([name, read]) => [name, await read().catch(() => -1)] as const)),
      ]);
      return {
        ready: entries.every(([, r]) => r === 'ok'),
        checks: Object.fromEntries(entries),
        gauges: Object.fromEntries(values),
      };
    },
  };
}

async function runWithTimeout(check: Check): Promise<CheckResult> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<CheckResult>((resolve) => {
    timer = setTimeout(() => resolve('down'), CHECK_TIMEOUT_MS);
  });
  try {
    return await Promise.race([check().then(() => 'ok' as const, () => 'down' as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    health: ReturnType<typeof createHealth>;
  }
}

const ReadySchema = Type.Object({
  status: Type.Enum(['ok', 'degraded']),
  checks: Type.Record(Type.String(), Type.Enum(['ok', 'down'])),
  outboxBacklog: Type.Optional(Type.Integer({ description: 'events written but not yet published' })),
});

const plugin: FastifyPluginAsyncTypebox = async (app) => {
  app.decorate('health', createHealth());

  app.get(
    '/health/live',
    {
      schema: {
        tags: ['health'],
        summary: 'The process is running',
        response: { 200: Type.Object({ status: Type.Literal('ok') }) },
      },
      config: { rateLimit: false },
    },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/health/ready',
    {
      schema: {
        tags: ['health'],
        summary: 'Every dependency answers',
        response: { 200: ReadySchema, 503: ReadySchema },
      },
      config: { rateLimit: false },
    },
    async (_request, reply) => {
      const { ready, checks, gauges } = await app.health.run();
      return reply.code(ready ? 200 : 503).send({ status: ready ? 'ok' : 'degraded', checks, ...gauges });
    },
  );
};

export default fp(plugin, { name: 'health', fastify: '5.x' });
