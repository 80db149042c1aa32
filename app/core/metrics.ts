import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Registry;
  }
}

/** Bound on each scrape-time source (database, broker), well inside a Prometheus scrape timeout. */
const SOURCE_TIMEOUT_MS = 3000;

/**
 * GET /metrics (Prometheus text): requests by route and status with latency, process metrics (heap,
 * event-loop lag, GC), and the service's own series, read when scraped: outbox backlog, database pool,
 * cache and consumer counters, consumer lag per topic and partition. Each app has its own registry,
 * so several apps in one process (tests) do not collide.
 */
export default fp(
  async (app: FastifyInstance) => {
    const registry = new Registry();
    registry.setDefaultLabels({ service: app.settings.SERVICE_NAME });
    collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 20 });

    const labelNames = ['method', 'route', 'status'] as const;
    const requests = new Counter({ name: 'http_requests_total', help: 'HTTP requests', labelNames, registers: [registry] });
    const duration = new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request duration',
      labelNames,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    });
    // One pair of label-bound children per (method, route, status), looked up by a string key: prom-client's
    // inc(labels) / observe(labels) validate and hash the label object on every call, which cost ~13% of the
    // throughput of a trivial route in `npm run bench`.
    const series = new Map<string, { count: () => void; observe: (seconds: number) => void }>();
    app.addHook('onResponse', (request, reply, done) => {
      // The route pattern, never the raw URL: ids in paths must not explode the label set.
      const route = request.routeOptions.url ?? 'unmatched';
      const key = `${request.method} ${reply.statusCode} ${route}`;
      let child = series.get(key);
      if (!child) {
        const labels = { method: request.method, route, status: reply.statusCode };
        const counter = requests.labels(labels);
        const histogram = duration.labels(labels);
        child = { count: () => counter.inc(), observe: (seconds) => histogram.observe(seconds) };
        series.set(key, child);
      }
      child.count();
      child.observe(reply.elapsedTime / 1000);
      done();
    });

    // Read at scrape time from the decorators that own the numbers. A source that fails or hangs (database or
    // broker down) leaves its series out instead of failing the whole scrape.
    const read = async <T>(what: string, source: () => Promise<T>): Promise<T | undefined> => {
      let timer: NodeJS.Timeout | undefined;
      try {
        return await Promise.race([
          source(),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error(`no answer within ${SOURCE_TIMEOUT_MS} ms`)), SOURCE_TIMEOUT_MS);
          }),
        ]);
      } catch (error) {
        app.log.debug({ err: error, metric: what }, 'metric source unavailable');
        return undefined;
      } finally {
        clearTimeout(timer);
      }
    };

    new Gauge({
      name: 'outbox_backlog',
      help: 'Events written to the outbox and not yet published (-1: cannot be counted)',
      registers: [registry],
      async collect() {
        if (app.hasDecorator('outbox')) this.set((await read('outbox_backlog', () => app.outbox.backlog())) ?? -1);
      },
    });

    // Only where there is a pool (postgres.js; PGlite has none), known once the database plugin has run.
    app.addHook('onReady', async () => {
      const pool = app.hasDecorator('dbPool') ? app.dbPool : null;
      if (!pool) return;
      new Gauge({
        name: 'db_pool_max',
        help: 'Most connections the PostgreSQL pool opens (DATABASE_POOL_MAX)',
        registers: [registry],
      }).set(pool.max);
      new Gauge({
        name: 'db_pool_connections',
        help: 'Open connections of the PostgreSQL pool by state: in_use (running a query or holding a transaction) or idle',
        labelNames: ['state'],
        registers: [registry],
        async collect() {
          this.reset();
          const connections = await read('db_pool_connections', () => pool.connections());
          if (!connections) return;
          this.set({ state: 'in_use' }, connections.inUse);
          this.set({ state: 'idle' }, connections.idle);
        },
      });
    });

    // Counts since start kept by their owners; exposed as counters (reset + inc each scrape gives the running total).
    new Counter({
      name: 'cache_operations_total',
      help: 'Cache operations since start by kind (hits, misses, errors, outages)',
      labelNames: ['kind'],
      registers: [registry],
      collect() {
        if (!app.hasDecorator('cache')) return;
        this.reset();
        for (const [kind, value] of Object.entries(app.cache.stats())) this.inc({ kind }, value);
      },
    });
    new Counter({
      name: 'consumer_messages_total',
      help: 'Consumed messages since start by consumer and outcome (processed, duplicates, failed handler attempts, dlq)',
      labelNames: ['consumer', 'outcome'],
      registers: [registry],
      collect() {
        if (!app.hasDecorator('consumers')) return;
        this.reset();
        for (const [consumer, stats] of Object.entries(app.consumers.stats())) {
          for (const [outcome, value] of Object.entries(stats)) this.inc({ consumer, outcome }, value);
        }
      },
    });
    new Gauge({
      name: 'kafka_consumer_lag',
      help: 'Messages not yet committed by a consumer on a partition assigned to this process (high watermark - committed offset)',
      labelNames: ['consumer', 'topic', 'partition'],
      registers: [registry],
      async collect() {
        this.reset();
        if (!app.hasDecorator('consumers')) return;
        for (const { consumer, topic, partition, lag } of (await read('kafka_consumer_lag', () => app.consumers.lag())) ?? []) {
          this.set({ consumer, topic, partition }, lag);
        }
      },
    });

    app.decorate('metrics', registry);
    app.get('/metrics', { schema: { hide: true }, config: { rateLimit: false } }, async (_request, reply) =>
      reply.type(registry.contentType).send(await registry.metrics()),
    );
  },
  { name: 'metrics', dependencies: ['settings'], fastify: '5.x' },
);
