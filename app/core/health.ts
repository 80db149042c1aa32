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
  const gauges = new Map<string, { read: () => Promise<number>; limit?: GaugeLimit | undefined }>();
  const taken = (name: string) => checks.has(name) || [...gauges.values()].some((g) => g.limit?.check === name);
  return {
    add(name: string, check: Check) {
      if (taken(name)) throw new Error(`readiness check '${name}' is already registered`);
      checks.set(name, check);
    },
    /**
     * A number reported beside the checks (e.g. the outbox backlog; -1 when it cannot be read). With a `limit`
     * (`max` > 0) it also feeds the check `limit.check`: down while the number is above `max` or unreadable.
     */
    addGauge(name: string, read: () => Promise<number>, limit?: GaugeLimit) {
      if (gauges.has(name)) throw new Error(`readiness gauge '${name}' is already registered`);
      const limited = limit && limit.max > 0 ? limit : undefined;
      if (limited && taken(limited.check)) throw new Error(`readiness check '${limited.check}' is already registered`);
      gauges.set(name, { read, limit: limited });
    },
    async run(): Promise<{ ready: boolean; checks: Record<string, CheckResult>; gauges: Record<string, number> }> {
      const [entries, values] = await Promise.all([
        Promise.all([...checks].map(async ([name, check]) => [name, await bounded(passes(check), 'down')] as const)),
        Promise.all([...gauges].map(async ([name, { read }]) => [name, await bounded(read, -1)] as const)),
      ]);
      const results: Record<string, CheckResult> = Object.fromEntries(entries);
      values.forEach(([name, value]) => {
        const limit = gauges.get(name)?.limit;
        if (limit) results[limit.check] = value >= 0 && value <= limit.max ? 'ok' : 'down';
      });
      return {
        ready: Object.values(results).every((r) => r === 'ok'),
        checks: results,
        gauges: Object.fromEntries(values),
      };
    },
  };
}

/** Makes a gauge a readiness check too: `check` is down while the gauge is above `max` (0 = never). */
export interface GaugeLimit {
  check: string;
  max: number;
}

const passes = (check: Check) => async (): Promise<CheckResult> => {
  await check();
  return 'ok';
};

/** What `work` resolves to within CHECK_TIMEOUT_MS, or `fallback` when it fails or takes longer: readiness never hangs. */
async function bounded<T>(work: () => Promise<T>, fallback: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<T>((resolve) => {
    timer = setTimeout(() => resolve(fallback), CHECK_TIMEOUT_MS);
  });
  try {
    return await Promise.race([Promise.resolve().then(work).catch(() => fallback), timeout]);
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
  checks: Type.Record(Type.String(), Type.Enum(['ok', 'down']), {
    description:
      'db, redis, kafka: the dependency answers; outbox: the backlog is at most OUTBOX_BACKLOG_DEGRADED (absent when that is 0)',
  }),
  outboxBacklog: Type.Optional(Type.Integer({ description: 'events written but not yet published (-1: cannot be counted)' })),
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
