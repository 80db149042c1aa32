import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Registry;
  }
}

/**
 * GET /metrics (Prometheus text): requests by route and status with latency, process and event-loop
 * metrics, and the service's own gauges (outbox backlog, cache and consumer counters), read when
 * scraped. Each app has its own registry, so several apps in one process (tests) do not collide.
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
    app.addHook('onResponse', async (request, reply) => {
      // The route pattern, never the raw URL: ids in paths must not explode the label set.
      const labels = { method: request.method, route: request.routeOptions.url ?? 'unmatched', status: reply.statusCode };
      requests.inc(labels);
      duration.observe(labels, reply.elapsedTime / 1000);
    });

    new Gauge({
      name: 'outbox_backlog',
      help: 'Events written to the outbox and not yet published',
      registers: [registry],
      async collect() {
        if (app.hasDecorator('outbox')) this.set(await app.outbox.backlog());
      },
    });
    new Gauge({
      name: 'cache_operations',
      help: 'Cache counters since start (hits, misses, errors, outages)',
      labelNames: ['kind'],
      registers: [registry],
      collect() {
        if (!app.hasDecorator('cache')) return;
        for (const [kind, value] of Object.entries(app.cache.stats())) this.set({ kind }, value);
      },
    });
    new Gauge({
      name: 'consumer_messages',
      help: 'Consumed messages since start by consumer and outcome (processed, duplicates, failed, dlq)',
      labelNames: ['consumer', 'outcome'],
      registers: [registry],
      collect() {
        if (!app.hasDecorator('consumers')) return;
        for (const [consumer, stats] of Object.entries(app.consumers.stats())) {
          for (const [outcome, value] of Object.entries(stats)) this.set({ consumer, outcome }, value);
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
