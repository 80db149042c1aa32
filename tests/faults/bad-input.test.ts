import { createHmac, randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance, type InjectOptions, type LightMyRequestResponse, type RouteOptions } from 'fastify';
import { sql } from 'drizzle-orm';
import t from 'tap';
import plinth, { serverOptions } from '../../app/app.js';
import { testSettings } from '../helpers/app.js';
import { createProduct, orderRequest } from '../helpers/catalog.js';
import { rowsOf } from '../helpers/db.js';
import { errorShapeProblems } from '../helpers/error-shape.js';
import { createAdmin, createUser, type TestUser } from '../helpers/users.js';
import { waitFor } from '../helpers/wait.js';

/*
 * A generated corpus of bad requests against every route the app registers (found with an onRoute hook, so a new
 * route is covered without touching this file): wrong types, missing and extra fields, huge and negative numbers,
 * 1 MB strings, invalid UTF-8, NUL bytes, SQL and path-traversal strings as ids, malformed JSON, wrong content types,
 * forged / expired / alg:none tokens. Every answer must be below 500 and every error answer in the api.md shape; the
 * requests that must be rejected must leave every table exactly as it was. Deterministic: a seeded generator.
 */

type Schema = {
  type?: string | string[];
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  anyOf?: Schema[];
  enum?: unknown[];
  const?: unknown;
  format?: string;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  maxItems?: number;
  minProperties?: number;
  default?: unknown;
};

interface Route {
  method: string;
  url: string;
  protected: boolean;
  body?: Schema;
  params?: Schema;
  querystring?: Schema;
  headers?: Schema;
}

interface Case {
  route: Route;
  what: string;
  request: InjectOptions;
  /** Must be refused: if it were accepted it could change data. */
  rejected: boolean;
}

/** mulberry32: a small seeded generator, so every run sends the same corpus. */
function seeded(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4_294_967_296;
  };
  return {
    next,
    pick: <T>(list: readonly T[]): T => list[Math.floor(next() * list.length)] as T,
    uuid: () => {
      const hex = Array.from({ length: 32 }, () => Math.floor(next() * 16).toString(16)).join('');
      return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
    },
  };
}
const random = seeded(20_260_101);

const MB = 'x'.repeat(1_000_000);
const SQL_IDS = ['\' OR 1=1--', '1; DROP TABLE users; --', '\' UNION SELECT password_hash FROM users--', '1\' AND pg_sleep(5)--'];
const TRAVERSAL = ['../../etc/passwd', '..%2f..%2f..%2fetc%2fpasswd', '%2e%2e%2f%2e%2e%2fpackage.json', '....//....//etc/passwd', '..\\..\\windows'];
const WEIRD_IDS = [
  ...SQL_IDS.map(encodeURIComponent),
  ...TRAVERSAL,
  '%00',
  'abc%00def',
  '%FF%FE',
  '%C3%28',
  '%E0%80%80',
  '-1',
  '0',
  '99999999999999999999999999',
  '1e309',
  'null',
  'undefined',
  'NaN',
  'true',
  '%7B%7D',
  '%5B%5D',
  'x'.repeat(5000),
  '00000000-0000-0000-0000-00000000000G',
  '00000000000000000000000000000000',
  '{00000000-0000-0000-0000-000000000000}',
  '%F0%9F%92%A9',
  '%20',
];
const NUMBERS = [-1, -2_147_483_649, 2_147_483_648, 2 ** 53 + 2, 1e308, -1e308, 1.5, 0.1, -0];
const WRONG_TYPES: unknown[] = [null, true, false, 0, 1, -1, 'string', [], [1, 2], {}, { a: 1 }];

/** A value that satisfies `schema` (for the shapes our schemas use), so that one mutation makes it invalid. */
function valid(schema: Schema | undefined, key = ''): unknown {
  if (!schema) return undefined;
  if (schema.const !== undefined) return schema.const;
  if (schema.enum) return schema.enum[0];
  if (schema.anyOf) return valid(schema.anyOf.find((s) => s.type !== 'null') ?? schema.anyOf[0], key);
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  switch (type) {
    case 'object': {
      const out: Record<string, unknown> = {};
      const required = new Set(schema.required ?? []);
      for (const [name, property] of Object.entries(schema.properties ?? {})) {
        const wanted = required.has(name) || (schema.minProperties && Object.keys(out).length < schema.minProperties);
        if (wanted) out[name] = valid(property, name);
      }
      return out;
    }
    case 'array':
      return Array.from({ length: Math.max(1, schema.minItems ?? 0) }, () => valid(schema.items));
    case 'integer':
    case 'number':
      return Math.max(schema.minimum ?? 1, 1);
    case 'boolean':
      return true;
    case 'null':
      return null;
    default:
      if (schema.format === 'uuid') return random.uuid();
      if (schema.format === 'email') return `bad-input-${Math.floor(random.next() * 1e9)}@example.com`;
      if (schema.format === 'date-time') return new Date().toISOString();
      if (/password/i.test(key)) return 'a-long-enough-password';
      return 'abc-123'.padEnd(Math.max(schema.minLength ?? 0, 7), 'x').slice(0, schema.maxLength ?? 64);
  }
}

/** Values that break `schema` for sure. */
function invalidValues(schema: Schema): unknown[] {
  if (schema.anyOf) {
    return WRONG_TYPES.filter((v) => !schema.anyOf?.some((s) => accepts(s, v)));
  }
  const out: unknown[] = WRONG_TYPES.filter((v) => !accepts(schema, v));
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  if (schema.enum) out.push('not-one-of-them', 'ADMIN', `${String(schema.enum[0])} `);
  if (type === 'string') {
    if (schema.maxLength !== undefined) out.push('y'.repeat(schema.maxLength + 1), MB);
    if (schema.minLength) out.push('');
    if (schema.format === 'uuid') out.push(...SQL_IDS, ...TRAVERSAL, 'a\u0000b', '00000000-0000-0000-0000-00000000000G', '\u0000');
    if (schema.format === 'email') out.push('not-an-email', '@example.com', 'a\'--@', 'a@b@c', '\u0000@example.com');
    if (schema.pattern) out.push(...['\u0000', ' leading-space', 'UPPER/slash', ...SQL_IDS, ...TRAVERSAL].filter((v) => !new RegExp(schema.pattern as string).test(v)));
  }
  if (type === 'integer' || type === 'number') {
    out.push(...NUMBERS.filter((n) => !accepts(schema, n)), '1', 'NaN', 'Infinity');
  }
  if (type === 'array') {
    out.push(Array.from({ length: (schema.maxItems ?? 1000) + 1 }, () => valid(schema.items)), [null], ['x'], [{}]);
    if (schema.minItems) out.push([]);
  }
  if (type === 'object') out.push({ extra: 1 }, JSON.parse('{"__proto__": {"role": "admin"}}'));
  return out.filter((v) => !accepts(schema, v));
}

/** Whether `value` satisfies `schema` (enough of JSON Schema for ours). */
function accepts(schema: Schema, value: unknown): boolean {
  if (schema.anyOf) return schema.anyOf.some((s) => accepts(s, value));
  if (schema.const !== undefined) return value === schema.const;
  if (schema.enum) return schema.enum.includes(value);
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  switch (type) {
    case 'null':
      return value === null;
    case 'boolean':
      return typeof value === 'boolean';
    case 'integer':
    case 'number':
      return typeof value === 'number' && (type === 'number' || Number.isInteger(value)) &&
        (schema.minimum === undefined || value >= schema.minimum) && (schema.maximum === undefined || value <= schema.maximum);
    case 'string':
      return typeof value === 'string' && value.length >= (schema.minLength ?? 0) && value.length <= (schema.maxLength ?? Infinity) &&
        (!schema.pattern || new RegExp(schema.pattern).test(value)) &&
        (schema.format !== 'uuid' || /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value)) &&
        (schema.format !== 'email' || /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(value));
    case 'array':
      return Array.isArray(value) && value.length >= (schema.minItems ?? 0) && value.length <= (schema.maxItems ?? Infinity) &&
        value.every((v) => !schema.items || accepts(schema.items, v));
    case 'object':
      return typeof value === 'object' && value !== null && !Array.isArray(value);
    default:
      return true;
  }
}

/** One step into a generated body: a field, or the first item of an array field. */
function descend(target: Record<string, unknown>, step: string): Record<string, unknown> {
  const next = target[step];
  return (Array.isArray(next) ? next[0] : next) as Record<string, unknown>;
}

/** HS256 JWT signed with `secret` (or unsigned for alg none), to forge what a client could send. */
function jwt(header: object, claims: object, secret: string | null): string {
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const head = `${b64(header)}.${b64(claims)}`;
  if (secret === null) return `${head}.`;
  return `${head}.${createHmac('sha256', secret).update(head).digest('base64url')}`;
}

function fill(url: string, id: string): string {
  return url.replace(/:[A-Za-z]+/g, id).replace(/\*$/, id);
}

t.test('the bad-input corpus', async (t) => {
  const routes: Route[] = [];
  const settings = await testSettings({ env: { BODY_LIMIT: '1048576' } });
  const app: FastifyInstance = Fastify(serverOptions(settings));
  t.teardown(() => app.close());
  app.addHook('onRoute', (route: RouteOptions) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const schema = (route.schema ?? {}) as Record<string, Schema | undefined>;
    for (const method of methods) {
      if (method === 'HEAD' || method === 'OPTIONS') continue;
      routes.push({
        method,
        url: route.url,
        protected: route.onRequest !== undefined && (!Array.isArray(route.onRequest) || route.onRequest.length > 0),
        body: schema.body,
        params: schema.params,
        querystring: schema.querystring,
        headers: schema.headers,
      });
    }
  });
  await app.register(plinth, { settings });
  await app.ready();

  const admin = await createAdmin(app);
  const user = await createUser(app);
  const other = await createUser(app, 'other');
  const product = await createProduct(app, admin, { stock: 10 });
  // Some data in every table the corpus could damage.
  await app.inject(orderRequest(user, [{ productId: product.id, quantity: 1 }]));
  const secret = settings.JWT_SECRET as string;
  const now = Math.floor(Date.now() / 1000);
  const claims = { sub: user.id, sid: randomUUID(), role: 'admin', iss: settings.JWT_ISSUER, iat: now, exp: now + 600 };
  const badTokens: Record<string, string> = {
    'forged signature': jwt({ alg: 'HS256', typ: 'JWT' }, claims, 'not-the-secret-not-the-secret-not-the-secret'),
    'alg none': jwt({ alg: 'none', typ: 'JWT' }, claims, null),
    'alg None': jwt({ alg: 'None', typ: 'JWT' }, claims, null),
    'expired': jwt({ alg: 'HS256', typ: 'JWT' }, { ...claims, role: 'user', iat: now - 7200, exp: now - 3600 }, secret),
    'other issuer': jwt({ alg: 'HS256', typ: 'JWT' }, { ...claims, iss: 'someone-else' }, secret),
    'no session': jwt({ alg: 'HS256', typ: 'JWT' }, { sub: user.id, role: 'admin', iss: settings.JWT_ISSUER, exp: now + 600 }, secret),
    'RS256 header': jwt({ alg: 'RS256', typ: 'JWT' }, claims, secret),
    'tampered payload': `${user.accessToken.split('.')[0]}.${Buffer.from(JSON.stringify({ ...claims, sub: other.id })).toString('base64url')}.${user.accessToken.split('.')[2]}`,
    'garbage': 'a.b.c',
    'empty': '',
    'huge': 'x'.repeat(20_000),
    'not base64': '%%%.%%%.%%%',
  };
  const authHeaders: Record<string, string>[] = [
    {},
    ...Object.values(badTokens).map((token) => ({ authorization: `Bearer ${token}` })),
    { authorization: `Basic ${Buffer.from('admin:admin').toString('base64')}` },
    { authorization: user.accessToken },
    { authorization: `Bearer  ${user.accessToken}` },
  ];

  const cases: Case[] = [];
  const add = (route: Route, what: string, request: InjectOptions, rejected: boolean) => {
    cases.push({ route, what, request, rejected });
  };
  const mutating = (route: Route) => !['GET', 'HEAD'].includes(route.method);

  for (const route of routes) {
    const baseBody = valid(route.body);
    const baseQuery = (valid(route.querystring) ?? {}) as Record<string, unknown>;
    const baseHeaders = (valid(route.headers) ?? {}) as Record<string, string>;
    const hasParams = /:|\*/.test(route.url);
    const url = fill(route.url, route.url.includes('feature-flags') ? 'orders.checkout' : hasParams ? random.uuid() : '');
    const auths = route.protected ? [admin, user] : [undefined];
    const base = (who: TestUser | undefined, extra: { headers?: Record<string, string> } = {}): InjectOptions => ({
      method: route.method as InjectOptions['method'],
      url,
      headers: { ...baseHeaders, ...(baseBody === undefined ? {} : { 'content-type': 'application/json' }), ...who?.auth, ...extra.headers },
      ...(baseBody === undefined ? {} : { payload: JSON.stringify(baseBody) }),
    });

    // Bad credentials on an otherwise valid request: protected routes refuse, public ones ignore the header.
    for (const headers of authHeaders) {
      add(route, `auth ${JSON.stringify(headers).slice(0, 40)}`, base(undefined, { headers }), route.protected || !mutating(route));
      // Valid credentials of a user on a route with a real id of someone else's: covered by security.test.ts.
    }

    // Path ids: SQL, traversal, NUL, invalid UTF-8, huge, not-a-uuid.
    if (hasParams) {
      const param = Object.values(route.params?.properties ?? {})[0];
      const acceptable = (id: string) => {
        try {
          return param !== undefined && accepts(param, decodeURIComponent(id));
        } catch {
          return false;
        }
      };
      for (const id of WEIRD_IDS.filter((x) => !acceptable(x))) {
        for (const who of auths) add(route, `id ${id.slice(0, 30)}`, { ...base(who), url: fill(route.url, id) }, true);
      }
    }

    // Query strings: each field broken, unknown fields, repeated fields, NUL and invalid escapes.
    const queryFields = Object.entries(route.querystring?.properties ?? {});
    const queryOf = (q: Record<string, unknown>) => `${url}?${Object.entries(q).map(([k, v]) => `${encodeURIComponent(k)}=${typeof v === 'string' ? encodeURIComponent(v) : encodeURIComponent(JSON.stringify(v))}`).join('&')}`;
    for (const [name, schema] of queryFields) {
      for (const bad of invalidValues(schema)) {
        if (typeof bad === 'string' && bad.length > 10_000) continue;
        for (const who of auths) add(route, `query ${name}=${String(JSON.stringify(bad)).slice(0, 30)}`, { ...base(who), url: queryOf({ ...baseQuery, [name]: bad }) }, true);
      }
    }
    for (const raw of route.querystring ? ['limit=1&limit=2', 'offset=1e2', 'limit=0x10', 'unknown=1', 'q=%00', 'q=%ZZ', 'q=%', 'sort=-', 'sort=id;drop', `q=${'%F0'.repeat(50)}`, 'limit[]=1', 'limit[a]=1', '__proto__[x]=1', `${'a'.repeat(3000)}=1`] : []) {
      for (const who of auths) add(route, `raw query ${raw.slice(0, 30)}`, { ...base(who), url: `${url}?${raw}` }, true);
    }

    // Headers declared by the route (Idempotency-Key): missing, empty, too long.
    for (const [name, schema] of Object.entries(route.headers?.properties ?? {})) {
      for (const bad of [undefined, '', 'k'.repeat((schema.maxLength ?? 128) + 1)]) {
        for (const who of auths) {
          const request = base(who);
          const headers = { ...(request.headers as Record<string, string>) };
          if (bad === undefined) delete headers[name];
          else headers[name] = bad;
          add(route, `header ${name}=${String(bad).slice(0, 20)}`, { ...request, headers }, true);
        }
      }
    }

    if (!route.body) continue;

    // Body fields: each one wrong (type, range, length, format), missing, and extra fields.
    const walk = (schema: Schema, path: string[]) => {
      for (const [name, property] of Object.entries(schema.properties ?? {})) {
        for (const bad of invalidValues(property)) {
          const body = structuredClone(baseBody) as Record<string, unknown>;
          let target = body;
          for (const step of path) target = descend(target, step);
          if (target && typeof target === 'object') target[name] = bad;
          for (const who of auths) add(route, `body ${[...path, name].join('.')}=${String(JSON.stringify(bad)).slice(0, 30)}`, { ...base(who), payload: JSON.stringify(body) }, true);
        }
        if (schema.required?.includes(name)) {
          const body = structuredClone(baseBody) as Record<string, unknown>;
          let target = body;
          for (const step of path) target = descend(target, step);
          delete target[name];
          for (const who of auths) add(route, `body missing ${[...path, name].join('.')}`, { ...base(who), payload: JSON.stringify(body) }, true);
        }
        const inner = property.type === 'array' ? property.items : property;
        if (inner?.type === 'object') walk(inner, [...path, name]);
      }
    };
    if (route.body.properties) walk(route.body, []);
    for (const extra of [{ extra: 1 }, { role: 'admin' }, { id: random.uuid() }, { userId: other.id }, { version: 99 }, { isAdmin: true }]) {
      const body = { ...(baseBody as object), ...extra };
      if (accepts(route.body, body) && Object.keys(extra).every((k) => k in (route.body?.properties ?? {}))) continue;
      for (const who of auths) add(route, `body extra ${Object.keys(extra)[0]}`, { ...base(who), payload: JSON.stringify(body) }, true);
    }
    for (const whole of WRONG_TYPES.filter((v) => !accepts(route.body as Schema, v))) {
      for (const who of auths) add(route, `body is ${JSON.stringify(whole)}`, { ...base(who), payload: JSON.stringify(whole) }, true);
    }

    // Raw bodies: malformed JSON, invalid UTF-8, NUL bytes, deep nesting, prototype pollution, too large.
    const rawBodies: (string | Buffer)[] = [
      '{',
      '{"a":',
      '}',
      '[',
      'nul',
      '{"a":1,}',
      '{\'a\':1}',
      '{"a":1}{"b":2}',
      '{"a" 1}',
      '\u0000',
      '{"a":"\u0000"}',
      '{"__proto__":{"admin":true}}',
      '{"constructor":{"prototype":{"admin":true}}}',
      '[1e999999]',
      '1e999999',
      '{"a":18446744073709551616}',
      '['.repeat(100_000),
      `{"a":"${'x'.repeat(2_000_000)}"}`,
      Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0xc3, 0x28, 0x22, 0x7d]),
      Buffer.from([0xef, 0xbb, 0xbf, 0x7b, 0x7d]),
      Buffer.from([0xfe, 0xff, 0x00, 0x7b, 0x00, 0x7d]),
      Buffer.concat([Buffer.from('{"name":"'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}')]),
      ' ',
      '',
    ];
    for (const payload of rawBodies) {
      for (const who of auths) add(route, `raw body ${String(payload).slice(0, 20)}`, { ...base(who), payload }, true);
    }
    const contentTypes = ['text/plain', 'application/xml', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json-patch+json',
      'application/json; charset=utf-16', 'application/jsonx', 'json', '', 'application/json, text/plain', '*/*'];
    for (const type of contentTypes) {
      for (const who of auths) {
        const request = base(who);
        add(route, `content-type ${type}`, { ...request, headers: { ...(request.headers as Record<string, string>), 'content-type': type }, payload: 'a=1&b=2' }, true);
      }
    }
  }

  // More of the same, mixed: each bad request again with another caller's credentials (a bad request stays bad
  // whoever sends it; only the status that refuses it changes).
  const callers = [admin.auth, user.auth, other.auth, ...authHeaders];
  for (const c of cases.filter((x) => x.rejected && x.route.body && !x.what.startsWith('auth'))) {
    if (random.next() > 0.8) continue;
    const headers = { ...(c.request.headers as Record<string, string>) };
    delete headers.authorization;
    add(c.route, `${c.what} (as another caller)`, { ...c.request, headers: { ...headers, ...random.pick(callers) } }, true);
  }

  // Unknown routes and methods.
  for (const path of ['/v2/orders', '/v1', '/v1/', '/v1/orders/', '/v1//orders', '/v1/orders/%2e%2e/users', '/../etc/passwd', '/v1/products/../users', '/%00', '/docs/static/..%2f..%2fpackage.json', '/docs/static/%2e%2e/%2e%2e/package.json']) {
    for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const) {
      add({ method, url: path, protected: false }, 'unknown route', { method, url: path, headers: { 'content-type': 'application/json' }, payload: '{}' }, true);
    }
  }

  const byRoute = new Map<string, number>();
  for (const c of cases) byRoute.set(`${c.route.method} ${c.route.url}`, (byRoute.get(`${c.route.method} ${c.route.url}`) ?? 0) + 1);
  t.ok(routes.length >= 20, `routes found: ${routes.length}`);
  t.ok(cases.length >= 5000, `corpus size ${cases.length}`);
  t.same(routes.filter((r) => (byRoute.get(`${r.method} ${r.url}`) ?? 0) < 10).map((r) => `${r.method} ${r.url}`), [], 'every route gets at least 10 requests');

  // Every table, as it is before the corpus (after the relay has published the set-up's events).
  await waitFor(async () => (await app.outbox.backlog()) === 0, 20_000, 'the outbox to be idle');
  const tables = (await rowsOf<{ name: string }>(app.db, sql`select tablename as name from pg_tables where schemaname = 'public' order by 1`)).map((r) => r.name);
  const checksum = async () => {
    const out: Record<string, string> = {};
    for (const table of tables) {
      const [row] = await rowsOf<{ n: number; md5: string }>(
        app.db,
        sql.raw(`select count(*)::int as n, md5(coalesce(string_agg(t::text, '|' order by t::text), '')) as md5 from "${table}" t`),
      );
      out[table] = `${row?.n}:${row?.md5}`;
    }
    return out;
  };
  const before = await checksum();

  const serverErrors: string[] = [];
  const malformed: string[] = [];
  const accepted: string[] = [];
  const send = async (c: Case): Promise<LightMyRequestResponse> => app.inject(c.request);
  const rejected = cases.filter((c) => c.rejected);
  const chunk = 16;
  for (let i = 0; i < rejected.length; i += chunk) {
    const batch = rejected.slice(i, i + chunk);
    const responses = await Promise.all(batch.map(send));
    responses.forEach((response, j) => {
      const c = batch[j] as Case;
      const label = `${c.request.method} ${String(c.request.url).slice(0, 80)} [${c.what}] -> ${response.statusCode}`;
      if (response.statusCode >= 500) serverErrors.push(`${label}: ${response.body.slice(0, 200)}`);
      if (response.statusCode >= 400) {
        const problems = errorShapeProblems(response);
        if (problems.length > 0) malformed.push(`${label}: ${problems.join('; ')}`);
      } else if (mutating(c.route)) {
        accepted.push(label);
      }
    });
  }
  t.same(serverErrors.slice(0, 20), [], `no 5xx (${serverErrors.length} of ${rejected.length})`);
  t.same(malformed.slice(0, 20), [], `every error answer in the api.md shape (${malformed.length} malformed)`);
  t.same(accepted.slice(0, 20), [], 'no bad request to a mutating route was accepted');
  const after = await checksum();
  t.same(after, before, `no table changed (${tables.join(', ')})`);

  // Requests that may legitimately succeed (public routes with a stray Authorization header): only no 5xx.
  for (const c of cases.filter((x) => !x.rejected)) {
    const response = await send(c);
    if (response.statusCode >= 500) serverErrors.push(`${c.request.method} ${c.request.url} [${c.what}] -> ${response.statusCode}`);
    if (response.statusCode >= 400 && errorShapeProblems(response).length > 0) malformed.push(`${c.request.method} ${c.request.url} [${c.what}]`);
  }
  t.same(serverErrors, [], 'no 5xx from the rest either');
  t.same(malformed, [], 'and well-formed errors');
  t.comment(`${cases.length} requests over ${routes.length} routes`);
});

t.test('valid shapes with hostile content (NUL bytes, SQL, invalid UTF-8) are refused or stored, never a 5xx', async (t) => {
  const app = await (async () => {
    const settings = await testSettings();
    const instance = Fastify(serverOptions(settings));
    t.teardown(() => instance.close());
    await instance.register(plinth, { settings });
    await instance.ready();
    return instance;
  })();
  const admin = await createAdmin(app);
  const user = await createUser(app);
  const product = await createProduct(app, admin);
  const hostile = ['a\u0000b', '\u0000', 'Robert\'); DROP TABLE products;--', '\ud800', '\u202egnp.exe', '%00', '😀'.repeat(50), 'x\r\ny', '\\u0000'];
  const answers: LightMyRequestResponse[] = [];
  // A lone surrogate cannot be percent-encoded; it goes as the raw (invalid) UTF-8 of its code unit.
  const query = (text: string) => {
    try {
      return encodeURIComponent(text);
    } catch {
      return '%ED%A0%80';
    }
  };
  for (const text of hostile) {
    answers.push(
      await app.inject({ method: 'POST', url: '/v1/products', headers: admin.auth, payload: { sku: `sku-${random.uuid().slice(0, 8)}`, name: text, priceCents: 1, stock: 1, description: text } }),
      await app.inject({ method: 'PATCH', url: `/v1/products/${product.id}`, headers: admin.auth, payload: { version: 1, name: text } }),
      await app.inject({ method: 'POST', url: '/v1/auth/register', payload: { email: `h-${random.uuid().slice(0, 8)}@example.com`, password: `pass-${text}-word`, name: text } }),
      await app.inject({ method: 'POST', url: '/v1/auth/login', payload: { email: `${text}@example.com`, password: text || 'x' } }),
      await app.inject({ method: 'PATCH', url: `/v1/users/${user.id}`, headers: user.auth, payload: { name: text } }),
      await app.inject({ method: 'GET', url: `/v1/products?q=${query(text)}` }),
      await app.inject({ method: 'GET', url: `/v1/users?q=${query(text)}`, headers: admin.auth }),
      await app.inject({ method: 'POST', url: '/v1/auth/refresh', payload: { refreshToken: text || 'x' } }),
      await app.inject({ method: 'PUT', url: '/v1/feature-flags/bad-input.flag', headers: admin.auth, payload: { enabled: false, rolloutPercent: 0, description: text } }),
    );
    const key = text.replace(/[^\x21-\x7e]/g, '') || 'k';
    answers.push(await app.inject({ ...orderRequest(user, [{ productId: product.id, quantity: 1 }], key) }));
  }
  const fiveHundreds = answers.filter((a) => a.statusCode >= 500).map((a) => `${a.statusCode} ${a.body.slice(0, 200)}`);
  t.same(fiveHundreds, [], 'no 5xx');
  const malformed = answers
    .filter((a) => a.statusCode >= 400 && errorShapeProblems(a).length > 0)
    .map((a) => a.body.slice(0, 200));
  t.same(malformed, [], 'every refusal in the api.md shape');
  const stored = await app.inject({ method: 'GET', url: `/v1/products/${product.id}` });
  t.equal(stored.statusCode, 200, 'the catalog still reads fine');
});
