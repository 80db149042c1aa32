import t from 'tap';
import { build } from '../helpers/app.js';

t.test('GET /metrics: Prometheus text with requests by route pattern, event-loop lag and outbox backlog', async (t) => {
  const app = await build(t);
  const id = '00000000-0000-4000-8000-000000000000';
  await app.inject({ method: 'GET', url: `/v1/products/${id}` });
  await app.inject({ method: 'GET', url: '/health/live' });
  const response = await app.inject({ method: 'GET', url: '/metrics' });
  t.equal(response.statusCode, 200);
  t.match(response.headers['content-type'], /text\/plain/);
  const body = response.body;
  t.match(body, /http_requests_total\{method="GET",route="\/v1\/products\/:id",status="404",service="plinth"\} 1/);
  t.notMatch(body, new RegExp(id), 'raw ids never become labels');
  t.match(body, /http_request_duration_seconds_bucket\{le="0.001"/);
  t.match(body, /nodejs_eventloop_lag_seconds/);
  t.match(body, /outbox_backlog\{service="plinth"\} \d+/);
  t.match(body, /cache_operations\{kind="misses",service="plinth"\} \d+/);
});

t.test('GET /health/ready reports the outbox backlog beside the checks', async (t) => {
  const app = await build(t);
  const response = await app.inject({ method: 'GET', url: '/health/ready' });
  t.equal(response.statusCode, 200);
  const body = response.json();
  t.same(body.checks, { db: 'ok', redis: 'ok', kafka: 'ok' });
  t.type(body.outboxBacklog, 'number');
});
