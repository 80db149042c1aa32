import { STATUS_CODES } from 'node:http';
import cors from '@fastify/cors';
import rateLimit from '@fastify/rate-limit';
import Ajv, { type ErrorObject } from 'ajv';
import addFormats from 'ajv-formats';
import {
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type FastifyServerOptions,
  LogController,
} from 'fastify';
import fp from 'fastify-plugin';
import type { ErrorBody } from '../schemas/common.js';
import {
  BadRequestError,
  DatabaseUnavailableError,
  isDatabaseUnavailable,
  NotFoundError,
  ServiceUnavailableError,
  UNAVAILABLE_CODES,
} from './base/errors.js';

/** Fastify's own errors that deserve a stable api.md code instead of FST_*. */
const FASTIFY_CODES: Record<string, string> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'BAD_REQUEST',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'INVALID_JSON',
  FST_ERR_CTP_INVALID_JSON_BODY: 'INVALID_JSON',
  FST_ERR_RATE_LIMITED: 'RATE_LIMITED',
  FST_ERR_BAD_URL: 'INVALID_URL',
  FST_ERR_MAX_PARAM_LENGTH: 'URI_TOO_LONG',
};

const reason = (status: number) => STATUS_CODES[status] ?? 'Error';
const snake = (text: string) => text.toUpperCase().replace(/[^A-Z0-9]+/g, '_');

/** Turns anything thrown during a request into the api.md error body. Exported for unit tests. */
export function toErrorBody(error: FastifyError, requestId: string): ErrorBody {
  if (error.validation) {
    const details = error.validation.map((e) => validationDetail(e as ErrorObject, error.validationContext));
    const first = details[0];
    return {
      statusCode: 400,
      code: 'VALIDATION_ERROR',
      error: reason(400),
      message: first ? `Invalid request: ${first.field} ${first.message}` : 'Invalid request',
      requestId,
      details,
    };
  }
  const status = Number(error.statusCode);
  if (Number.isInteger(status) && status >= 400 && status < 500) {
    const known = error.code && !error.code.startsWith('FST_') ? error.code : undefined;
    return {
      statusCode: status,
      code: known ?? FASTIFY_CODES[error.code] ?? snake(reason(status)),
      error: reason(status),
      message: error.message,
      requestId,
    };
  }
  const statusCode = Number.isInteger(status) && status >= 500 && status < 600 ? status : 500;
  // A 503 thrown on purpose (a dependency is down) says so; anything else stays opaque.
  const deliberate = statusCode === 503 && UNAVAILABLE_CODES.has(error.code);
  return {
    statusCode,
    code: deliberate ? error.code : 'INTERNAL_ERROR',
    error: reason(statusCode),
    message: deliberate ? error.message : 'Something went wrong; the request id identifies it in our logs',
    requestId,
  };
}

function validationDetail(e: ErrorObject, context?: string) {
  const path = e.instancePath.replace(/^\//, '').replace(/\//g, '.');
  const params = e.params as Record<string, unknown>;
  const leaf = (params.missingProperty ?? params.additionalProperty ?? '') as string;
  const field = [context, path, leaf].filter(Boolean).join('.') || (context ?? 'request');
  const message =
    e.keyword === 'additionalProperties'
      ? 'is not allowed'
      : e.keyword === 'required'
        ? 'is required'
        : e.keyword === 'enum'
          ? `must be one of ${(params.allowedValues as unknown[]).join(', ')}`
          : (e.message ?? 'is invalid');
  return { field, rule: e.keyword, message };
}

/**
 * Fastify's `frameworkErrors` (serverOptions): a URL the router cannot decode (invalid percent-encoding or UTF-8) or a
 * path parameter over maxParamLength is answered before any hook runs; this answers it in the api.md shape too.
 */
export function frameworkError(error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  const body = toErrorBody(error, request.id);
  return reply.code(body.statusCode).header('x-request-id', request.id).send(body);
}

/**
 * PostgreSQL text and jsonb cannot hold NUL characters, and no field of ours means one: a NUL in the URL or a JSON
 * string is refused with 400 before it can become a database error. So are numbers JSON can write but not hold
 * (1e999 parses to Infinity). The body is only walked when its text could contain either.
 */
const SUSPICIOUS_JSON = /\\u0000|\d[eE][+-]?\d{3}/;
function unholdable(value: unknown): string | undefined {
  if (typeof value === 'string') return value.includes('\u0000') ? 'a NUL character (\\u0000)' : undefined;
  if (typeof value === 'number') return Number.isFinite(value) ? undefined : 'a number out of range';
  if (value && typeof value === 'object') {
    for (const [key, inner] of Object.entries(value)) {
      const problem = unholdable(key) ?? unholdable(inner);
      if (problem) return problem;
    }
  }
  return undefined;
}

/**
 * The response headers helmet sets by default (its Content-Security-Policy aside, which only HTML needs), as one
 * constant set by the request hook. The same headers through @fastify/helmet's middleware chain cost ~30% of
 * the throughput of a trivial route in `npm run bench`.
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'origin-agent-cluster': '?1',
  'referrer-policy': 'no-referrer',
  'strict-transport-security': 'max-age=31536000; includeSubDomains',
  'x-content-type-options': 'nosniff',
  'x-dns-prefetch-control': 'off',
  'x-download-options': 'noopen',
  'x-frame-options': 'SAMEORIGIN',
  'x-permitted-cross-domain-policies': 'none',
  'x-xss-protection': '0',
});

/** One log line per request, written when the answer is sent (Fastify's default writes two). */
export class OneLineLogController extends LogController {
  constructor() {
    super({ requestIdLogLabel: 'requestId' });
  }

  override incomingRequest() {}
  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply) {
    const line = {
      method: request.method,
      url: request.url,
      statusCode: reply.statusCode,
      ms: Math.round(reply.elapsedTime * 10) / 10,
    };
    if (error) request.log.error({ ...line, err: error }, 'request errored');
    else request.log.info(line, 'request completed');
  }
}

/** Ids a caller may hand us (request and correlation ids): short and plain, safe in logs and headers. */
const SAFE_ID = /^[A-Za-z0-9._-]{1,128}$/;
const safeId = (value: unknown): value is string => typeof value === 'string' && SAFE_ID.test(value);

/** Accepts a caller's request id only when it is short and plain; otherwise makes one. */
export function requestIdFrom(request: { headers: Record<string, unknown> }): string {
  const header = request.headers['x-request-id'];
  return safeId(header) ? header : crypto.randomUUID();
}

/**
 * The id that ties together everything one action caused, across services: the caller's `x-correlation-id`
 * when it is safe (the request id rule), otherwise this request's id. It goes into every log line of the
 * request and into the events the request emits.
 */
export function correlationIdFrom(headers: Record<string, unknown>, requestId: string): string {
  const header = headers['x-correlation-id'];
  return safeId(header) ? header : requestId;
}

const CORRELATION_ID = Symbol('plinth.correlationId');
type RawWithCorrelation = { headers: Record<string, unknown>; [CORRELATION_ID]?: string };

declare module 'fastify' {
  interface FastifyRequest {
    /** See correlationIdFrom(); pass it as `correlationId` to service writes. */
    readonly correlationId: string;
  }
}

/**
 * Fastify's childLoggerFactory: the request's logger carries the request id and the correlation id, made as
 * one pino child (a second child per request would cost a second bindings serialisation). The id is kept on
 * the raw request for `request.correlationId`.
 */
export const requestChildLogger: NonNullable<FastifyServerOptions['childLoggerFactory']> = function (logger, bindings, options, raw) {
  const requestId = String((bindings as Record<string, unknown>).requestId);
  const correlationId = correlationIdFrom(raw.headers, requestId);
  (raw as unknown as RawWithCorrelation)[CORRELATION_ID] = correlationId;
  return logger.child({ ...bindings, correlationId }, options);
};

/**
 * Two Ajv instances: bodies are validated strictly (no type coercion, unknown fields rejected),
 * while querystring, params and headers arrive as strings and are coerced to the declared types.
 */
export function createValidatorCompiler() {
  const common = { allErrors: true, removeAdditional: false, useDefaults: true, strict: false } as const;
  const strictAjv = addFormats.default(new Ajv.default({ ...common, coerceTypes: false }));
  const coercingAjv = addFormats.default(new Ajv.default({ ...common, coerceTypes: 'array' }));
  return ({ schema, httpPart }: { schema: object; httpPart?: string }) =>
    (httpPart === 'body' ? strictAjv : coercingAjv).compile(schema);
}

export default fp(
  async (app: FastifyInstance) => {
    const { settings } = app;
    app.setValidatorCompiler(createValidatorCompiler());
    // A getter, so requests that never ask pay nothing; an app built without requestChildLogger still gets an id.
    app.decorateRequest('correlationId', {
      getter(this: FastifyRequest) {
        const raw = this.raw as unknown as RawWithCorrelation;
        return raw[CORRELATION_ID] ?? correlationIdFrom(raw.headers, this.id);
      },
    });

    // Once close() began (SIGTERM), requests still arriving on open keep-alive connections are turned away with a
    // 503 in the api.md shape (Fastify adds Connection: close), so the load balancer retries them elsewhere while
    // the requests in flight finish. serverOptions() turns Fastify's own, differently shaped 503 off.
    let closing = false;
    app.addHook('preClose', async () => {
      closing = true;
    });
    app.addHook('onRequest', async (request, reply) => {
      reply.headers(SECURITY_HEADERS).header('x-request-id', request.id);
      if (closing) throw new ServiceUnavailableError('The service is shutting down; retry the request');
      if (request.url.includes('%00')) throw new BadRequestError('The URL contains a NUL character (%00)');
    });
    const parseJson = app.getDefaultJsonParser('error', 'error');
    app.removeContentTypeParser('application/json');
    app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, text, done) => {
      parseJson(request, text as string, (error: Error | null, value?: unknown) => {
        if (error) return done(error);
        const problem = SUSPICIOUS_JSON.test(text as string) ? unholdable(value) : undefined;
        if (problem) return done(new BadRequestError(`The JSON body contains ${problem}`));
        done(null, value);
      });
    });
    app.setErrorHandler((thrown: FastifyError, request: FastifyRequest, reply) => {
      // PostgreSQL down, restarting, out of connections or too slow: a 503 the client may retry, not a 500.
      const error = isDatabaseUnavailable(thrown) ? Object.assign(new DatabaseUnavailableError(), { cause: thrown }) : thrown;
      const body = toErrorBody(error, request.id);
      // e.g. Retry-After on TOO_MANY_ATTEMPTS; only client errors may carry headers to the caller.
      const headers = (error as { headers?: Record<string, string> }).headers;
      if (headers && body.statusCode < 500) void reply.headers(headers);
      if (body.statusCode === 503 && body.code !== 'INTERNAL_ERROR') void reply.header('retry-after', '1');
      // A dependency being down is an operational state (readiness reports it), logged once per request as a warning;
      // any other 5xx is a bug.
      if (body.statusCode >= 500 && UNAVAILABLE_CODES.has(body.code)) request.log.warn({ err: error }, 'request failed: dependency unavailable');
      else if (body.statusCode >= 500) request.log.error({ err: error }, 'request failed');
      else request.log.debug({ code: body.code, message: body.message }, 'request rejected');
      return reply.code(body.statusCode).send(body);
    });
    app.setNotFoundHandler((request) => {
      throw new NotFoundError(`Route ${request.method} ${request.url.split('?')[0]} not found`);
    });

    const origins = settings.CORS_ORIGINS.split(',')
      .map((o) => o.trim())
      .filter(Boolean);
    // No origins configured (the default outside local): no cross-origin access, so no CORS hook on every request.
    if (origins.length > 0) {
      await app.register(cors, {
        origin: origins.includes('*') ? true : origins,
        exposedHeaders: ['x-request-id', 'retry-after', 'x-ratelimit-limit', 'x-ratelimit-remaining'],
      });
    }
    await app.register(rateLimit, {
      // Per instance, in memory: a shared store would add a network round trip to every request.
      // Credential guessing is limited across instances by the login guard (core/security).
      global: false,
      errorResponseBuilder: (_request, context) => {
        const error = new Error(`Rate limit exceeded; retry in ${context.after}`) as FastifyError;
        error.statusCode = 429;
        error.code = 'RATE_LIMITED';
        return error;
      },
    });
    if (settings.RATE_LIMIT_MAX > 0) {
      // An instance-level hook runs before every route's own onRequest hooks (authenticate), so
      // rejected requests are counted too. Routes with their own limit (login) or none (health) opt out.
      const limit = app.rateLimit({ max: settings.RATE_LIMIT_MAX, timeWindow: settings.RATE_LIMIT_WINDOW_MS });
      app.addHook('onRequest', async (request, reply) => {
        const own = (request.routeOptions.config as { rateLimit?: unknown }).rateLimit;
        if (own === undefined) await limit.call(app, request, reply);
      });
    }
  },
  { name: 'http', dependencies: ['settings'], fastify: '5.x' },
);
