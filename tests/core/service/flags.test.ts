import { randomBytes, randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import pino from 'pino';
import t, { type Test } from 'tap';
import plinth, { serverOptions } from '../../../app/app.js';
import { createMemoryPubSub } from '../../../app/core/adapter/pubsub.js';
import type { Db } from '../../../app/core/adapter/postgres.js';
import { type featureFlags } from '../../../app/core/service/flags/model.js';
import { bucket, createFlags, evaluate } from '../../../app/core/service/flags/service.js';
import type { Settings } from '../../../app/core/settings/index.js';
import { build, type BuildOptions, testSettings } from '../../helpers/app.js';
import { createAdmin, createUser, type TestUser } from '../../helpers/users.js';
import { waitFor } from '../../helpers/wait.js';

/**
 * Feature flags: the evaluation rules (api.md) as units, then the service, the admin routes and
 * requireFlag on a real app (PostgreSQL + Redis) and on the embedded one, and a change made through
 * one instance seen by a second instance within 1 s.
 */

const flagKey = (name: string) => `${name}-${randomBytes(4).toString('hex')}`;

type FlagLike = Parameters<typeof evaluate>[0];
const flag = (over: Partial<FlagLike> = {}): FlagLike => ({
  key: 'checkout.v2',
  enabled: true,
  rolloutPercent: 0,
  allowUserIds: [],
  ...over,
});

const users = Array.from({ length: 10_000 }, () => randomUUID());

t.test('evaluate: the rules of api.md', async (t) => {
  const listed = randomUUID();
  const other = randomUUID();

  t.equal(evaluate(flag({ enabled: false, rolloutPercent: 100, allowUserIds: [listed] }), { userId: listed }), false, 'disabled → off, even for an allow-listed user at 100%');
  t.equal(evaluate(flag({ enabled: false, rolloutPercent: 100 }), { userId: other }), false, 'disabled → off at 100%');

  t.equal(evaluate(flag({ rolloutPercent: 0, allowUserIds: [listed] }), { userId: listed }), true, 'the allow-list wins at rollout 0');
  t.equal(evaluate(flag({ rolloutPercent: 0, allowUserIds: [listed] }), { userId: other }), false, 'others stay off');

  const sample = users.slice(0, 500);
  t.ok(sample.every((userId) => evaluate(flag({ rolloutPercent: 100 }), { userId })), 'rollout 100 → on for everyone');
  t.ok(sample.every((userId) => !evaluate(flag({ rolloutPercent: 0 }), { userId })), 'rollout 0 → off for everyone');
  t.equal(evaluate(flag({ rolloutPercent: 0 }), {}), false, 'rollout 0 → off without a user');
});

t.test('bucket: stable per (flag, user), within 0..100, depends on the flag', async (t) => {
  const sample = users.slice(0, 1000);
  for (const userId of sample.slice(0, 20)) {
    t.equal(bucket('checkout.v2', userId), bucket('checkout.v2', userId), 'same input, same bucket');
  }
  t.ok(sample.every((userId) => bucket('checkout.v2', userId) >= 0 && bucket('checkout.v2', userId) < 100), 'in [0, 100)');
  const differs = sample.filter((userId) => bucket('checkout.v2', userId) !== bucket('search.beta', userId)).length;
  t.ok(differs > 990, `the flag key is part of the hash (${differs}/1000 users differ)`);
});

t.test('rollout 30% over 10,000 users: 27–33%, stable, and raising it keeps everyone in', async (t) => {
  const at30 = flag({ key: 'rollout.test', rolloutPercent: 30 });
  const inAt30 = users.filter((userId) => evaluate(at30, { userId }));
  const share = inAt30.length / users.length;
  t.ok(share >= 0.27 && share <= 0.33, `${(share * 100).toFixed(2)}% of users are in`);

  for (let round = 0; round < 3; round += 1) {
    const again = users.filter((userId) => evaluate({ ...at30 }, { userId }));
    t.same(again, inAt30, `round ${round + 1}: every user gets the same answer`);
  }

  const at60 = flag({ key: 'rollout.test', rolloutPercent: 60 });
  const inAt60 = new Set(users.filter((userId) => evaluate(at60, { userId })));
  const dropped = inAt30.filter((userId) => !inAt60.has(userId));
  t.same(dropped, [], 'raising 30 → 60 keeps every user who was in');
  const share60 = inAt60.size / users.length;
  t.ok(share60 >= 0.57 && share60 <= 0.63, `${(share60 * 100).toFixed(2)}% in at 60`);

  // Another flag at 30% picks an independent ~30%, not the same users.
  const otherFlag = flag({ key: 'other.flag', rolloutPercent: 30 });
  const both = inAt30.filter((userId) => evaluate(otherFlag, { userId })).length / users.length;
  t.ok(both > 0.06 && both < 0.12, `overlap with another flag is about 9% (${(both * 100).toFixed(2)}%)`);
});

interface Err {
  statusCode: number;
  code: string;
}

/** Calls the requireFlag hook the way Fastify would, with a request carrying only the actor. */
function runHook(app: FastifyInstance, key: string, userId: string | undefined): Promise<unknown> {
  const hook = app.requireFlag(key) as unknown as (request: FastifyRequest) => Promise<unknown>;
  return hook({ actor: userId ? { id: userId, role: 'user' } : null } as unknown as FastifyRequest);
}

async function hookRejection(app: FastifyInstance, key: string, userId: string | undefined): Promise<Err | undefined> {
  try {
    await runHook(app, key, userId);
    return undefined;
  } catch (error) {
    return error as Err;
  }
}

function integration(name: string, options: BuildOptions) {
  t.test(`flags on ${name}`, async (t) => {
    const app = await build(t, options);
    const admin = await createAdmin(app);
    const user = await createUser(app);
    // `who`: the caller; null for no token at all.
    const put = (key: string, payload: unknown, who: TestUser | null = admin) =>
      app.inject({ method: 'PUT', url: `/v1/feature-flags/${key}`, payload: payload as object, headers: who?.auth ?? {} });

    t.test('an unknown flag is off', async (t) => {
      const key = flagKey('unknown');
      t.equal(app.flags.isEnabled(key, { userId: user.id }), false);
      t.equal(app.flags.isEnabled(key), false, 'also without a user');
      t.notOk(key in app.flags.evaluateAll({ userId: user.id }));
    });

    t.test('put, then isEnabled answers from the new value', async (t) => {
      const key = flagKey('svc');
      const saved = await app.flags.put(key, { enabled: true, rolloutPercent: 100 });
      t.match(saved, { key, enabled: true, rolloutPercent: 100, allowUserIds: [], description: null, version: 1 });
      t.equal(app.flags.isEnabled(key, { userId: user.id }), true, 'on at 100%');

      await app.flags.put(key, { enabled: false, rolloutPercent: 100 });
      t.equal(app.flags.isEnabled(key, { userId: user.id }), false, 'off once disabled');

      await app.flags.put(key, { enabled: true, rolloutPercent: 0, allowUserIds: [user.id] });
      t.equal(app.flags.isEnabled(key, { userId: user.id }), true, 'the allow-listed user is in at 0%');
      t.equal(app.flags.isEnabled(key, { userId: admin.id }), false, 'others are not');

      await app.flags.reload();
      t.equal(app.flags.isEnabled(key, { userId: user.id }), true, 'what was stored is what was announced');
      t.equal(app.flags.isEnabled(key, { userId: admin.id }), false);
    });

    t.test('PUT /v1/feature-flags/:key as admin', async (t) => {
      const key = flagKey('put');
      const first = await put(key, { enabled: true, rolloutPercent: 25, allowUserIds: [user.id], description: 'new checkout' });
      t.equal(first.statusCode, 200, first.body);
      const body = first.json();
      t.match(body, { key, enabled: true, rolloutPercent: 25, allowUserIds: [user.id], description: 'new checkout', version: 1 });
      t.ok(!Number.isNaN(Date.parse(body.createdAt)) && !Number.isNaN(Date.parse(body.updatedAt)), 'timestamps are ISO strings');
      t.equal(app.flags.isEnabled(key, { userId: user.id }), true, 'in effect at once on this instance');

      const second = await put(key, { enabled: false, rolloutPercent: 50 });
      t.equal(second.statusCode, 200, second.body);
      t.match(second.json(), { key, enabled: false, rolloutPercent: 50, allowUserIds: [], description: null, version: 2 });
      t.equal(second.json().createdAt, body.createdAt, 'created once');
      t.equal(app.flags.isEnabled(key, { userId: user.id }), false, 'the replacement is in effect');

      const third = await put(key, { enabled: true, rolloutPercent: 50 });
      t.equal(third.json().version, 3, 'every change bumps the version');
    });

    t.test('PUT validation: 400 and nothing stored', async (t) => {
      const key = flagKey('invalid');
      const cases: [string, string, unknown][] = [
        ['rolloutPercent 101', key, { enabled: true, rolloutPercent: 101 }],
        ['rolloutPercent -1', key, { enabled: true, rolloutPercent: -1 }],
        ['rolloutPercent not an integer', key, { enabled: true, rolloutPercent: 12.5 }],
        ['enabled missing', key, { rolloutPercent: 10 }],
        ['an unknown field', key, { enabled: true, rolloutPercent: 10, owner: 'team-a' }],
        ['allowUserIds not uuids', key, { enabled: true, rolloutPercent: 10, allowUserIds: ['bob'] }],
        ['an uppercase key', 'Checkout-V2', { enabled: true, rolloutPercent: 10 }],
        ['a key with spaces', 'has%20space', { enabled: true, rolloutPercent: 10 }],
        ['a key starting with a dash', '-dash', { enabled: true, rolloutPercent: 10 }],
      ];
      for (const [what, path, payload] of cases) {
        const response = await put(path, payload);
        t.equal(response.statusCode, 400, `${what} → 400`);
        t.equal(response.json().code, 'VALIDATION_ERROR', `${what} → VALIDATION_ERROR`);
      }
      const stored = app.flags.list().map((f) => f.key);
      t.notOk(stored.includes(key), 'the invalid flag was not stored');
      t.notOk(stored.some((k) => /checkout-v2|has space|^-dash/i.test(k)), 'nor any flag under a bad key');
    });

    t.test('admin routes refuse non-admins (403) and anonymous callers (401)', async (t) => {
      const key = flagKey('guarded');
      const asUser = await put(key, { enabled: true, rolloutPercent: 100 }, user);
      t.equal(asUser.statusCode, 403);
      t.equal(asUser.json().code, 'FORBIDDEN');
      const anonymous = await put(key, { enabled: true, rolloutPercent: 100 }, null);
      t.equal(anonymous.statusCode, 401);
      t.equal(anonymous.json().code, 'UNAUTHORIZED');
      t.equal(app.flags.isEnabled(key, { userId: user.id }), false, 'no change was made');

      const listAsUser = await app.inject({ method: 'GET', url: '/v1/feature-flags', headers: user.auth });
      t.equal(listAsUser.statusCode, 403);
      const listAnonymous = await app.inject({ method: 'GET', url: '/v1/feature-flags' });
      t.equal(listAnonymous.statusCode, 401);
      const evaluateAnonymous = await app.inject({ method: 'GET', url: '/v1/feature-flags/evaluate' });
      t.equal(evaluateAnonymous.statusCode, 401);
    });

    t.test('GET /v1/feature-flags lists the flags for an admin', async (t) => {
      const key = flagKey('listed');
      t.equal((await put(key, { enabled: true, rolloutPercent: 40, description: 'listed flag' })).statusCode, 200);
      const response = await app.inject({ method: 'GET', url: '/v1/feature-flags?limit=100', headers: admin.auth });
      t.equal(response.statusCode, 200, response.body);
      const page = response.json();
      t.same(Object.keys(page).sort(), ['items', 'limit', 'offset', 'total']);
      t.equal(page.limit, 100);
      t.equal(page.offset, 0);
      t.equal(page.total, app.flags.list().length, 'total counts every flag');
      t.match(
        page.items.find((item: { key: string }) => item.key === key),
        { key, enabled: true, rolloutPercent: 40, allowUserIds: [], description: 'listed flag', version: 1 },
      );

      const defaults = await app.inject({ method: 'GET', url: '/v1/feature-flags', headers: admin.auth });
      t.match(defaults.json(), { limit: 20, offset: 0 }, 'default page');
      const one = await app.inject({ method: 'GET', url: '/v1/feature-flags?limit=1&offset=1', headers: admin.auth });
      t.equal(one.json().items.length, 1, 'limit applies');
      t.equal(one.json().items[0].key, page.items[1].key, 'offset applies');
      const bad = await app.inject({ method: 'GET', url: '/v1/feature-flags?limit=101', headers: admin.auth });
      t.equal(bad.statusCode, 400, 'limit out of range → 400');
    });

    t.test('GET /v1/feature-flags/evaluate answers every flag for the caller', async (t) => {
      const on = flagKey('all-on');
      const off = flagKey('disabled');
      const mine = flagKey('only-user');
      await put(on, { enabled: true, rolloutPercent: 100 });
      await put(off, { enabled: false, rolloutPercent: 100, allowUserIds: [user.id] });
      await put(mine, { enabled: true, rolloutPercent: 0, allowUserIds: [user.id] });

      const forUser = await app.inject({ method: 'GET', url: '/v1/feature-flags/evaluate', headers: user.auth });
      t.equal(forUser.statusCode, 200, forUser.body);
      const answers = forUser.json() as Record<string, unknown>;
      t.same(Object.keys(answers).sort(), app.flags.list().map((f) => f.key).sort(), 'one answer per known flag');
      t.ok(Object.values(answers).every((v) => typeof v === 'boolean'), 'every answer is a boolean');
      t.equal(answers[on], true);
      t.equal(answers[off], false);
      t.equal(answers[mine], true, 'the allow-listed caller is in');
      for (const [key, value] of Object.entries(answers)) {
        t.equal(value, app.flags.isEnabled(key, { userId: user.id }), `${key} matches isEnabled`);
      }

      const forAdmin = await app.inject({ method: 'GET', url: '/v1/feature-flags/evaluate', headers: admin.auth });
      t.equal(forAdmin.json()[mine], false, 'another caller is not');
      t.equal(forAdmin.json()[on], true);
    });

    t.test('requireFlag rejects with FEATURE_DISABLED (403) unless the flag is on for the caller', async (t) => {
      const key = flagKey('gate');
      const unknown = await hookRejection(app, key, user.id);
      t.equal(unknown?.code, 'FEATURE_DISABLED', 'an unknown flag blocks');
      t.equal(unknown?.statusCode, 403);

      await app.flags.put(key, { enabled: true, rolloutPercent: 100 });
      await t.resolves(runHook(app, key, user.id), 'passes once on');

      await app.flags.put(key, { enabled: false, rolloutPercent: 100 });
      t.equal((await hookRejection(app, key, user.id))?.code, 'FEATURE_DISABLED', 'blocks once disabled');

      await app.flags.put(key, { enabled: true, rolloutPercent: 0, allowUserIds: [user.id] });
      await t.resolves(runHook(app, key, user.id), 'passes for the allow-listed user');
      t.equal((await hookRejection(app, key, admin.id))?.code, 'FEATURE_DISABLED', 'blocks another user');
    });
  });
}

integration('real PostgreSQL and Redis', {});
integration('the embedded stand-ins', { embedded: true });

t.test('requireFlag on a real route answers 403 FEATURE_DISABLED in the error shape', async (t) => {
  const settings = await testSettings();
  const app = Fastify(serverOptions(settings));
  t.teardown(() => app.close());
  const key = flagKey('route');
  await app.register(plinth, { settings });
  await app.register(async (scope) => {
    scope.get('/flagged', { onRequest: [scope.authenticate, scope.requireFlag(key)] }, async () => ({ ok: true }));
  });
  await app.ready();
  const user = await createUser(app);

  const blocked = await app.inject({ method: 'GET', url: '/flagged', headers: user.auth });
  t.equal(blocked.statusCode, 403);
  t.match(blocked.json(), { statusCode: 403, code: 'FEATURE_DISABLED', message: String });
  await app.flags.put(key, { enabled: true, rolloutPercent: 0, allowUserIds: [user.id] });
  const allowed = await app.inject({ method: 'GET', url: '/flagged', headers: user.auth });
  t.equal(allowed.statusCode, 200);
  t.same(allowed.json(), { ok: true });
});

t.test('a reload that read the table before a put cannot put the old flag back', async (t) => {
  // The in-process copy is reloaded by pub/sub messages and by the resync timer, concurrently with
  // puts. Here one reload's SELECT runs before a put and its answer arrives after the put (and after
  // the reload the put's own announcement triggered): the copy must keep the newer flag.
  const app = await build(t);
  let armed = false;
  let held: { release: () => void } | undefined;
  let delivered = 0;
  const realDb = app.db;
  const db = new Proxy(realDb, {
    get(target, prop, receiver) {
      if (prop !== 'select') return Reflect.get(target, prop, receiver) as unknown;
      return () => ({
        from: (table: typeof featureFlags) => {
          const rows = realDb.select().from(table).execute(); // runs now: the snapshot is taken now
          if (armed && !held) {
            armed = false;
            let release!: () => void;
            const gate = new Promise<void>((resolve) => {
              release = resolve;
            });
            held = { release };
            return rows.then(async (result) => {
              await gate;
              return result;
            });
          }
          return rows.then((result) => {
            delivered += 1;
            return result;
          });
        },
      });
    },
  }) as Db;
  const flags = createFlags({ db, pubsub: createMemoryPubSub(), log: pino({ level: 'silent' }), resyncMs: 600_000 });
  await flags.start();
  t.teardown(() => flags.stop());

  const key = flagKey('reorder');
  await flags.put(key, { enabled: false, rolloutPercent: 100 });
  await waitFor(() => delivered >= 2, 1000, 'the reload announced by the first put');

  armed = true;
  const staleReload = flags.reload(); // reads: the flag is off
  await waitFor(() => held !== undefined, 1000, 'the held reload');
  await flags.put(key, { enabled: true, rolloutPercent: 100 });
  t.equal(flags.isEnabled(key, { userId: randomUUID() }), true, 'on right after the put');
  await waitFor(() => delivered >= 3, 1000, 'the reload announced by the second put');
  t.equal(flags.isEnabled(key, { userId: randomUUID() }), true, 'still on after the announced reload');

  held?.release();
  await staleReload;
  t.equal(flags.isEnabled(key, { userId: randomUUID() }), true, 'still on after the older reload finished');
  t.equal(flags.list().find((f) => f.key === key)?.version, 2, 'the copy holds the latest version');
});

async function instance(t: Test, settings: Settings): Promise<FastifyInstance> {
  const app = Fastify(serverOptions(settings));
  t.teardown(() => app.close());
  await app.register(plinth, { settings });
  await app.ready();
  return app;
}

t.test('a change made through one instance is seen by another within 1 s', async (t) => {
  // One settings object: same database and Redis prefix. The resync safety net is pushed far out,
  // so only the pub/sub announcement can make the second instance see the change in time.
  const settings = await testSettings({ env: { FLAGS_RESYNC_MS: '600000' } });
  const a = await instance(t, settings);
  const b = await instance(t, settings);
  t.equal(a.pubsub.kind, 'redis');
  const admin = await createAdmin(a);
  const user = await createUser(a);
  const key = flagKey('cross');
  const putVia = (app: FastifyInstance, payload: object) =>
    app.inject({ method: 'PUT', url: `/v1/feature-flags/${key}`, payload, headers: admin.auth });

  t.equal(b.flags.isEnabled(key, { userId: user.id }), false, 'unknown on B at first');

  t.equal((await putVia(a, { enabled: true, rolloutPercent: 100 })).statusCode, 200);
  const on = await waitFor(() => b.flags.isEnabled(key, { userId: user.id }), 1000, 'enabling on B');
  t.pass(`B sees the flag on after ${on} ms`);

  t.equal((await putVia(a, { enabled: false, rolloutPercent: 100 })).statusCode, 200);
  const off = await waitFor(() => !b.flags.isEnabled(key, { userId: user.id }), 1000, 'disabling on B');
  t.pass(`B sees the flag off after ${off} ms`);

  t.equal((await putVia(a, { enabled: true, rolloutPercent: 0, allowUserIds: [user.id] })).statusCode, 200);
  await waitFor(() => b.flags.isEnabled(key, { userId: user.id }), 1000, 'the allow-list on B');
  t.equal(b.flags.isEnabled(key, { userId: admin.id }), false, 'B applies the same rules');
  t.match(
    b.flags.list().find((f) => f.key === key),
    { version: 3, allowUserIds: [user.id] },
    'B holds the latest version',
  );

  // And the other way round.
  t.equal((await putVia(b, { enabled: false, rolloutPercent: 0 })).statusCode, 200);
  await waitFor(() => !a.flags.isEnabled(key, { userId: user.id }), 1000, 'a change through B on A');
  t.pass('A sees a change made through B');
});
