import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import t, { type Test } from 'tap';
import { serverOptions } from '../../app/app.js';
import {
  ConflictError,
  EmailTakenError,
  NotFoundError,
  ServiceUnavailableError,
  TooManyAttemptsError,
} from '../../app/core/base/errors.js';
import http, { correlationIdFrom, requestIdFrom, toErrorBody } from '../../app/core/http.js';
import { loadSettings } from '../../app/core/settings/index.js';
import settingsPlugin from '../../app/core/settings/plugin.js';
import { build } from '../helpers/app.js';
import { expectError } from '../helpers/http.js';

/** The http plugin alone on a bare instance (no database, no Redis), with extra routes that throw. */
async function bareApp(t: Test, env: Record<string, string> = {}): Promise<FastifyInstance> {
  const settings = loadSettings({ APP_ENV: 'test', ...env });
  const app = Fastify(serverOptions(settings));
  t.teardown(() => app.close());
  await app.register(settingsPlugin, { settings });
  await app.register(http);
  app.get('/boom', async () => {
    throw new Error('connection to db.internal failed: password=hunter2');
  });
  app.get('/boom-status', async () => {
    const error = new Error('upstream exploded with internals') as FastifyError;
    error.statusCode = 502;
    throw error;
  });
  app.get('/unavailable', async () => {
    throw new ServiceUnavailableError('Payments are down; retry later');
  });
  app.get('/conflict', async () => {
    throw new ConflictError('That thing already exists');
  });
  app.get('/ok', async () => ({ ok: true }));
  await app.ready();
  return app;
}

t.test('on the whole app', async (t) => {
  const app = await build(t);

  t.test('an unknown route is a 404 in the error shape', async (t) => {
    const response = await app.inject({ method: 'GET', url: '/no/such/route?token=abc' });
    const body = expectError(t, response, 404, 'NOT_FOUND');
    t.equal(body.error, 'Not Found');
    t.match(body.message, 'GET /no/such/route');
    t.notMatch(body.message, 'token=abc', 'the query string is not echoed');
    t.same(Object.keys(body).sort(), ['code', 'error', 'message', 'requestId', 'statusCode']);
  });

  t.test('unknown routes under /v1 and other methods too', async (t) => {
    expectError(t, await app.inject({ method: 'DELETE', url: '/v1/nothing-here' }), 404, 'NOT_FOUND');
    expectError(t, await app.inject({ method: 'POST', url: '/health/live' }), 404, 'NOT_FOUND');
  });

  t.test('x-request-id: a valid one is echoed', async (t) => {
    for (const id of ['a', 'abc-123_DEF.xyz', 'x'.repeat(128), '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0']) {
      const response = await app.inject({ method: 'GET', url: '/nope', headers: { 'x-request-id': id } });
      t.equal(response.headers['x-request-id'], id, `${id.slice(0, 20)}… echoed in the header`);
      t.equal(response.json().requestId, id, 'and in the body');
    }
    const ok = await app.inject({ method: 'GET', url: '/health/live', headers: { 'x-request-id': 'my-id.1' } });
    t.equal(ok.statusCode, 200);
    t.equal(ok.headers['x-request-id'], 'my-id.1', 'successful responses carry it too');
  });

  t.test('x-request-id: an invalid one is replaced by a generated one', async (t) => {
    const invalid = ['x'.repeat(129), 'has space', 'semi;colon', 'slash/id', 'ünïcode', 'new\\nline', 'a,b'];
    const seen = new Set<string>();
    for (const id of invalid) {
      const response = await app.inject({ method: 'GET', url: '/nope', headers: { 'x-request-id': id } });
      const header = response.headers['x-request-id'] as string;
      t.not(header, id, `${JSON.stringify(id.slice(0, 20))} is not echoed`);
      t.match(header, /^[A-Za-z0-9._-]{1,128}$/, 'the generated id is itself valid');
      t.equal(response.json().requestId, header);
      seen.add(header);
    }
    t.equal(seen.size, invalid.length, 'each request gets a fresh id');
  });

  t.test('x-request-id: generated when absent, unique per request', async (t) => {
    const a = await app.inject({ method: 'GET', url: '/health/live' });
    const b = await app.inject({ method: 'GET', url: '/health/live' });
    t.match(a.headers['x-request-id'], /^[A-Za-z0-9._-]{1,128}$/);
    t.not(a.headers['x-request-id'], b.headers['x-request-id']);
  });

  t.test('invalid JSON is a 400 INVALID_JSON', async (t) => {
    const response = await app.inject({
      method: 'POST',
      url: '/v1/auth/login',
      headers: { 'content-type': 'application/json' },
      payload: '{"email": "a@example.com", ',
    });
    const body = expectError(t, response, 400, 'INVALID_JSON');
    t.equal(body.error, 'Bad Request');
  });

  t.test('an empty JSON body is a 400 INVALID_JSON', async (t) => {
    const response = await app.inject({
      method: 'POST',
      url: '/v1/auth/login',
      headers: { 'content-type': 'application/json' },
      payload: '',
    });
    t.equal(response.statusCode, 400);
    t.equal(response.json().code, 'INVALID_JSON');
  });

  t.test('a wrong content type is a 415', async (t) => {
    const response = await app.inject({
      method: 'POST',
      url: '/v1/auth/login',
      headers: { 'content-type': 'text/xml' },
      payload: '<login/>',
    });
    const body = expectError(t, response, 415, 'UNSUPPORTED_MEDIA_TYPE');
    t.equal(body.error, 'Unsupported Media Type');
  });

  t.test('a body over the default limit (1 MiB) is a 413', async (t) => {
    const response = await app.inject({
      method: 'POST',
      url: '/v1/auth/login',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify({ email: 'a@example.com', password: 'x'.repeat(1_048_576) }),
    });
    expectError(t, response, 413, 'PAYLOAD_TOO_LARGE');
  });

  t.test('schema validation errors carry details', async (t) => {
    const response = await app.inject({
      method: 'POST',
      url: '/v1/auth/register',
      payload: { email: 'not-an-email', password: 'correct-horse-battery', name: 'N', admin: true },
    });
    const body = expectError(t, response, 400, 'VALIDATION_ERROR');
    const details = body.details as { field: string; rule: string; message: string }[];
    t.ok(Array.isArray(details) && details.length >= 2, 'every problem is listed');
    t.ok(
      details.some((d) => d.field === 'body.admin' && d.rule === 'additionalProperties' && d.message === 'is not allowed'),
      'the unknown field is rejected',
    );
    t.ok(details.some((d) => d.field === 'body.email' && d.rule === 'format'), 'the bad email is named');
  });

  t.test('helmet headers are present', async (t) => {
    const response = await app.inject({ method: 'GET', url: '/health/live' });
    t.equal(response.headers['x-content-type-options'], 'nosniff');
    t.ok(response.headers['x-frame-options'], 'x-frame-options');
    t.ok(response.headers['strict-transport-security'], 'strict-transport-security');
    t.notOk(response.headers['x-powered-by']);
    const error = await app.inject({ method: 'GET', url: '/nope' });
    t.equal(error.headers['x-content-type-options'], 'nosniff', 'on errors too');
  });

  t.test('no CORS headers when CORS_ORIGINS is empty (test default)', async (t) => {
    const response = await app.inject({
      method: 'OPTIONS',
      url: '/v1/auth/login',
      headers: { 'origin': 'https://a.example', 'access-control-request-method': 'POST' },
    });
    t.notOk(response.headers['access-control-allow-origin']);
  });

  t.test('rate limiting is off when RATE_LIMIT_MAX=0', async (t) => {
    for (let i = 0; i < 5; i++) {
      const response = await app.inject({ method: 'GET', url: '/v1/users/me' });
      t.equal(response.statusCode, 401);
    }
  });
});

t.test('BODY_LIMIT is configurable', async (t) => {
  const app = await build(t, { env: { BODY_LIMIT: '1024' } });
  const small = await app.inject({
    method: 'POST',
    url: '/v1/auth/login',
    payload: { email: 'nobody@example.com', password: 'x'.repeat(128) },
  });
  t.equal(small.statusCode, 401, 'a body under the limit is processed');
  const large = await app.inject({
    method: 'POST',
    url: '/v1/auth/login',
    payload: { email: 'nobody@example.com', password: 'x'.repeat(2000) },
  });
  const body = expectError(t, large, 413, 'PAYLOAD_TOO_LARGE');
  t.equal(body.error, 'Payload Too Large');
});

t.test('errors thrown by routes', async (t) => {
  const app = await bareApp(t);

  t.test('a plain Error is an opaque 500', async (t) => {
    const response = await app.inject({ method: 'GET', url: '/boom', headers: { 'x-request-id': 'trace-500' } });
    const body = expectError(t, response, 500, 'INTERNAL_ERROR');
    t.equal(body.error, 'Internal Server Error');
    t.equal(body.requestId, 'trace-500');
    t.notMatch(response.body, 'hunter2', 'the thrown message does not leak');
    t.notMatch(response.body, 'db.internal');
    t.notOk('stack' in body);
  });

  t.test('another 5xx keeps its status but not its message', async (t) => {
    const response = await app.inject({ method: 'GET', url: '/boom-status' });
    const body = expectError(t, response, 502, 'INTERNAL_ERROR');
    t.equal(body.error, 'Bad Gateway');
    t.notMatch(body.message, 'internals');
  });

  t.test('a deliberate 503 SERVICE_UNAVAILABLE says so', async (t) => {
    const response = await app.inject({ method: 'GET', url: '/unavailable' });
    const body = expectError(t, response, 503, 'SERVICE_UNAVAILABLE');
    t.equal(body.message, 'Payments are down; retry later');
  });

  t.test('a coded 4xx passes through', async (t) => {
    const response = await app.inject({ method: 'GET', url: '/conflict' });
    const body = expectError(t, response, 409, 'CONFLICT');
    t.equal(body.message, 'That thing already exists');
    t.equal(body.error, 'Conflict');
  });

  t.test('the bare app answers normally', async (t) => {
    const response = await app.inject({ method: 'GET', url: '/ok' });
    t.equal(response.statusCode, 200);
    t.same(response.json(), { ok: true });
    t.ok(response.headers['x-request-id']);
  });
});

t.test('toErrorBody', async (t) => {
  const asFastify = (error: Error, extra: Partial<FastifyError> = {}) => Object.assign(error, extra) as FastifyError;

  t.test('validation errors become VALIDATION_ERROR with field/rule/message details', async (t) => {
    const error = asFastify(new Error('body/email must match format "email"'), {
      statusCode: 400,
      code: 'FST_ERR_VALIDATION',
      validationContext: 'body',
      validation: [
        { keyword: 'format', instancePath: '/email', schemaPath: '#/properties/email/format', params: { format: 'email' }, message: 'must match format "email"' },
        { keyword: 'required', instancePath: '', schemaPath: '#/required', params: { missingProperty: 'password' }, message: 'must have required property \'password\'' },
        { keyword: 'additionalProperties', instancePath: '', schemaPath: '#/additionalProperties', params: { additionalProperty: 'admin' }, message: 'must NOT have additional properties' },
        { keyword: 'enum', instancePath: '/role', schemaPath: '#/properties/role/enum', params: { allowedValues: ['user', 'admin'] }, message: 'must be equal to one of the allowed values' },
        { keyword: 'minimum', instancePath: '/items/0/quantity', schemaPath: '#/x', params: { limit: 1 }, message: 'must be >= 1' },
      ],
    });
    const body = toErrorBody(error, 'req-1');
    t.equal(body.statusCode, 400);
    t.equal(body.code, 'VALIDATION_ERROR');
    t.equal(body.error, 'Bad Request');
    t.equal(body.requestId, 'req-1');
    t.same(body.details, [
      { field: 'body.email', rule: 'format', message: 'must match format "email"' },
      { field: 'body.password', rule: 'required', message: 'is required' },
      { field: 'body.admin', rule: 'additionalProperties', message: 'is not allowed' },
      { field: 'body.role', rule: 'enum', message: 'must be one of user, admin' },
      { field: 'body.items.0.quantity', rule: 'minimum', message: 'must be >= 1' },
    ]);
    t.equal(body.message, 'Invalid request: body.email must match format "email"');
  });

  t.test('a querystring validation error names the query field', async (t) => {
    const body = toErrorBody(
      asFastify(new Error('querystring/limit must be <= 100'), {
        statusCode: 400,
        validationContext: 'querystring',
        validation: [{ keyword: 'maximum', instancePath: '/limit', schemaPath: '#/x', params: { limit: 100 }, message: 'must be <= 100' }],
      }),
      'r',
    );
    t.same(body.details, [{ field: 'querystring.limit', rule: 'maximum', message: 'must be <= 100' }]);
  });

  t.test('coded 4xx errors pass through with their code and message', async (t) => {
    t.same(toErrorBody(new EmailTakenError() as FastifyError, 'r1'), {
      statusCode: 409,
      code: 'EMAIL_TAKEN',
      error: 'Conflict',
      message: 'Email is already registered',
      requestId: 'r1',
    });
    const notFound = toErrorBody(new NotFoundError('User 42 not found') as FastifyError, 'r2');
    t.match(notFound, { statusCode: 404, code: 'NOT_FOUND', error: 'Not Found', message: 'User 42 not found' });
    const tooMany = toErrorBody(new TooManyAttemptsError(60) as FastifyError, 'r3');
    t.match(tooMany, { statusCode: 429, code: 'TOO_MANY_ATTEMPTS', error: 'Too Many Requests' });
    t.match(tooMany.message, '60');
  });

  t.test('Fastify FST_ codes map to stable codes', async (t) => {
    const cases: [string, number, string][] = [
      ['FST_ERR_CTP_BODY_TOO_LARGE', 413, 'PAYLOAD_TOO_LARGE'],
      ['FST_ERR_CTP_INVALID_MEDIA_TYPE', 415, 'UNSUPPORTED_MEDIA_TYPE'],
      ['FST_ERR_CTP_INVALID_JSON_BODY', 400, 'INVALID_JSON'],
      ['FST_ERR_CTP_EMPTY_JSON_BODY', 400, 'INVALID_JSON'],
      ['FST_ERR_CTP_INVALID_CONTENT_LENGTH', 400, 'BAD_REQUEST'],
      ['FST_ERR_RATE_LIMITED', 429, 'RATE_LIMITED'],
      // An unmapped Fastify code never leaks: the status reason in UPPER_SNAKE instead.
      ['FST_ERR_SOMETHING_NEW', 400, 'BAD_REQUEST'],
      ['FST_ERR_SOMETHING_ELSE', 405, 'METHOD_NOT_ALLOWED'],
    ];
    for (const [code, statusCode, expected] of cases) {
      const body = toErrorBody(asFastify(new Error('fastify says no'), { code, statusCode }), 'r');
      t.equal(body.code, expected, `${code} -> ${expected}`);
      t.equal(body.statusCode, statusCode);
      t.notMatch(body.code, /^FST_/);
    }
  });

  t.test('a 4xx without a code gets one from its status', async (t) => {
    const body = toErrorBody(asFastify(new Error('nope'), { statusCode: 403 }), 'r');
    t.match(body, { statusCode: 403, code: 'FORBIDDEN', error: 'Forbidden', message: 'nope' });
  });

  t.test('anything else is an opaque 500', async (t) => {
    for (const error of [
      new Error('SELECT * FROM users failed at 10.0.0.3'),
      asFastify(new Error('SELECT * FROM users failed at 10.0.0.3'), { statusCode: 200 }),
      asFastify(new Error('SELECT * FROM users failed at 10.0.0.3'), { statusCode: 'abc' as unknown as number }),
      asFastify(new Error('SELECT * FROM users failed at 10.0.0.3'), { code: 'ECONNREFUSED' }),
    ]) {
      const body = toErrorBody(error as FastifyError, 'r9');
      t.match(body, { statusCode: 500, code: 'INTERNAL_ERROR', error: 'Internal Server Error', requestId: 'r9' });
      t.notMatch(body.message, 'SELECT');
    }
    const fake503 = toErrorBody(asFastify(new Error('pool exhausted: 10.0.0.3'), { statusCode: 503, code: 'EPOOL' }), 'r');
    t.match(fake503, { statusCode: 503, code: 'INTERNAL_ERROR' });
    t.notMatch(fake503.message, '10.0.0.3', 'only SERVICE_UNAVAILABLE may speak on a 503');
  });
});

t.test('requestIdFrom', async (t) => {
  t.equal(requestIdFrom({ headers: { 'x-request-id': 'abc' } }), 'abc');
  t.equal(requestIdFrom({ headers: { 'x-request-id': 'y'.repeat(128) } }), 'y'.repeat(128));
  t.not(requestIdFrom({ headers: { 'x-request-id': 'y'.repeat(129) } }), 'y'.repeat(129));
  t.not(requestIdFrom({ headers: { 'x-request-id': '' } }), '');
  t.match(requestIdFrom({ headers: { 'x-request-id': ['a', 'b'] } }), /^[0-9a-f-]{36}$/, 'a repeated header is not trusted');
  t.match(requestIdFrom({ headers: {} }), /^[0-9a-f-]{36}$/);
});

t.test('correlationIdFrom: a safe x-correlation-id, otherwise the request id', async (t) => {
  t.equal(correlationIdFrom({ 'x-correlation-id': 'order-flow.42_A' }, 'req-1'), 'order-flow.42_A');
  t.equal(correlationIdFrom({ 'x-correlation-id': 'c'.repeat(128) }, 'req-1'), 'c'.repeat(128));
  t.equal(correlationIdFrom({ 'x-correlation-id': 'c'.repeat(129) }, 'req-1'), 'req-1');
  t.equal(correlationIdFrom({ 'x-correlation-id': 'a b' }, 'req-1'), 'req-1');
  t.equal(correlationIdFrom({ 'x-correlation-id': '' }, 'req-1'), 'req-1');
  t.equal(correlationIdFrom({ 'x-correlation-id': ['a', 'b'] }, 'req-1'), 'req-1', 'a repeated header is not trusted');
  t.equal(correlationIdFrom({}, 'req-1'), 'req-1');
});

t.test('request.correlationId, with and without the server options\' child logger factory', async (t) => {
  for (const withOptions of [true, false]) {
    const settings = loadSettings({ APP_ENV: 'test' });
    const app = Fastify(withOptions ? serverOptions(settings) : {});
    t.teardown(() => app.close());
    await app.register(settingsPlugin, { settings });
    await app.register(http);
    app.get('/correlation', async (request) => ({ correlationId: request.correlationId, requestId: request.id }));
    const upstream = await app.inject({ method: 'GET', url: '/correlation', headers: { 'x-correlation-id': 'upstream-1' } });
    t.same(upstream.json().correlationId, 'upstream-1');
    const own = await app.inject({ method: 'GET', url: '/correlation', headers: { 'x-correlation-id': 'no good' } });
    t.equal(own.json().correlationId, own.json().requestId);
  }
});

t.test('CORS with CORS_ORIGINS=https://a.example', async (t) => {
  const app = await build(t, { env: { CORS_ORIGINS: 'https://a.example' } });
  const preflight = (origin: string) =>
    app.inject({
      method: 'OPTIONS',
      url: '/v1/auth/login',
      headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
    });

  const allowed = await preflight('https://a.example');
  t.ok(allowed.statusCode < 300, 'the preflight succeeds');
  t.equal(allowed.headers['access-control-allow-origin'], 'https://a.example');
  t.match(allowed.headers['access-control-allow-methods'], /POST/);

  const refused = await preflight('https://evil.example');
  t.notOk(refused.headers['access-control-allow-origin'], 'another origin is not allowed');

  const simple = await app.inject({ method: 'GET', url: '/health/live', headers: { origin: 'https://a.example' } });
  t.equal(simple.headers['access-control-allow-origin'], 'https://a.example');
  t.match(simple.headers['access-control-expose-headers'], /x-request-id/, 'browsers may read the request id');
});

t.test('CORS_ORIGINS=* allows any origin', async (t) => {
  const app = await bareApp(t, { CORS_ORIGINS: '*' });
  const response = await app.inject({
    method: 'OPTIONS',
    url: '/ok',
    headers: { 'origin': 'https://anything.example', 'access-control-request-method': 'GET' },
  });
  t.equal(response.headers['access-control-allow-origin'], 'https://anything.example');
});

t.test('global rate limit with RATE_LIMIT_MAX=3', async (t) => {
  const app = await build(t, { env: { RATE_LIMIT_MAX: '3' } });

  t.test('counts requests that fail authentication (GET /v1/users/me without a token)', async (t) => {
    // Unauthenticated calls are exactly what a limiter must count: token guessing, scraping.
    const from = { remoteAddress: '10.0.0.1' };
    for (let i = 1; i <= 3; i++) {
      const response = await app.inject({ method: 'GET', url: '/v1/users/me', ...from });
      t.equal(response.statusCode, 401, `request ${i} is served (401 without a token)`);
    }
    const limited = await app.inject({ method: 'GET', url: '/v1/users/me', ...from });
    const body = expectError(t, limited, 429, 'RATE_LIMITED');
    t.equal(body.error, 'Too Many Requests');
  });

  t.test('limits a public route and answers 429 RATE_LIMITED', async (t) => {
    const from = { remoteAddress: '10.0.0.2' };
    const refresh = () =>
      app.inject({ method: 'POST', url: '/v1/auth/refresh', payload: { refreshToken: 'not-a-token' }, ...from });
    for (let i = 1; i <= 3; i++) {
      const response = await refresh();
      t.equal(response.statusCode, 401, `request ${i} is served`);
      t.equal(response.headers['x-ratelimit-limit'], '3');
      t.equal(response.headers['x-ratelimit-remaining'], String(3 - i));
    }
    const limited = await refresh();
    const body = expectError(t, limited, 429, 'RATE_LIMITED');
    t.equal(body.error, 'Too Many Requests');
    t.match(body.message, /retry/i);
    t.ok(limited.headers['retry-after'], 'retry-after header');

    const live = await app.inject({ method: 'GET', url: '/health/live', ...from });
    t.equal(live.statusCode, 200, 'health routes are not rate limited');
    const ready = await app.inject({ method: 'GET', url: '/health/ready', ...from });
    t.equal(ready.statusCode, 200);

    const elsewhere = await app.inject({
      method: 'POST',
      url: '/v1/auth/refresh',
      payload: { refreshToken: 'not-a-token' },
      remoteAddress: '10.0.0.3',
    });
    t.equal(elsewhere.statusCode, 401, 'the limit is per client address');
  });
});
