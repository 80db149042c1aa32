import { randomUUID } from 'node:crypto';
import t, { type Test } from 'tap';
import type { __Entity__ } from '../../app/__entity_folder__/schema.js';
import { __entity__SortFields } from '../../app/__entity_folder__/schema.js';
import {
  create__Entity__,
  invalidValues,
  optionalFields,
  requiredFields,
  requiredOnly,
  responseKeys,
  UNKNOWN_FIELD,
  valid,
} from '../__entity_folder__/fixtures.js';
import { build } from '../helpers/app.js';
import { expectError, expectValidation, ISO_UTC, type Page } from '../helpers/http.js';
import { createAdmin, createUser, type TestUser } from '../helpers/users.js';

/** /v1/__entities_route__ through app.inject(): every route, its auth, its validation and its errors. */

const ROUTE = '/v1/__entities_route__';
const fields = [...requiredFields, ...optionalFields];

/** The api.md shape of one item. */
function expectItem(t: Test, item: __Entity__, expected: Partial<__Entity__>) {
  t.has(item, expected);
  t.same(Object.keys(item).sort(), responseKeys, 'exactly the response fields');
  t.match(item.id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  t.match(item.createdAt, ISO_UTC);
  t.match(item.updatedAt, ISO_UTC);
}

const app = await build(t);
const admin = await createAdmin(app);
const user = await createUser(app, 'reader');

/** Requests as `who` (no token when undefined; GET defaults to a signed-in user, null sends no token). */
const auth = (who?: TestUser | null) => (who ? who.auth : {});
const get = (url: string, who: TestUser | null = user) => app.inject({ method: 'GET', url, headers: auth(who) });
const post = (payload: unknown, who?: TestUser) => app.inject({ method: 'POST', url: ROUTE, headers: auth(who), payload: payload as object });
const patch = (id: string, payload: unknown, who?: TestUser) =>
  app.inject({ method: 'PATCH', url: `${ROUTE}/${id}`, headers: auth(who), payload: payload as object });
const remove = (id: string, who?: TestUser) => app.inject({ method: 'DELETE', url: `${ROUTE}/${id}`, headers: auth(who) });
const page = async (query = '') => {
  const response = await get(`${ROUTE}?limit=100${query}`);
  if (response.statusCode !== 200) throw new Error(`GET ${ROUTE}: ${response.statusCode} ${response.body}`);
  return response.json() as Page<__Entity__>;
};
/** Ids in the order the list gives them (`?sort=`), keeping only `ids`. */
const order = async (sort: string, ids: string[]) =>
  (await page(`&sort=${sort}`)).items.map((item) => item.id).filter((id) => ids.includes(id));
const total = async () => (await page()).total;

t.test(`GET ${ROUTE}`, async (t) => {
  const before = await total();
  // Created in the order b, a, c; every sortable field grows from a to c.
  const b = await create__Entity__(app, admin, valid(1));
  const a = await create__Entity__(app, admin, valid(0));
  const c = await create__Entity__(app, admin, valid(2));
  const ids = [a.id, b.id, c.id];

  t.test('any signed-in user gets a page {items,total,limit,offset} with the defaults', async (t) => {
    const response = await get(ROUTE);
    t.equal(response.statusCode, 200, response.body);
    const body = response.json() as Page<__Entity__>;
    t.same(Object.keys(body).sort(), ['items', 'limit', 'offset', 'total']);
    t.match(body, { total: before + 3, limit: 20, offset: 0 });
    t.same(body.items.slice(0, 3), [c, a, b], 'newest first, whole items');
    for (const item of body.items) expectItem(t, item, {});
    t.equal((await get(ROUTE, admin)).statusCode, 200, 'admins too');
  });

  t.test('?sort= createdAt and each sortable field, both ways', async (t) => {
    t.same(await order('createdAt', ids), [b.id, a.id, c.id], 'createdAt');
    t.same(await order('-createdAt', ids), [c.id, a.id, b.id], '-createdAt');
    for (const field of __entity__SortFields.filter((f) => f !== 'createdAt')) {
      t.same(await order(field, ids), [a.id, b.id, c.id], field);
      t.same(await order(`-${field}`, ids), [c.id, b.id, a.id], `-${field}`);
    }
  });

  t.test('?limit= and ?offset= page through; total counts everything', async (t) => {
    const second = (await get(`${ROUTE}?limit=1&offset=1`)).json() as Page<__Entity__>;
    t.same(second, { items: [a], total: before + 3, limit: 1, offset: 1 });
    const past = (await get(`${ROUTE}?offset=${before + 3}`)).json() as Page<__Entity__>;
    t.same(past, { items: [], total: before + 3, limit: 20, offset: before + 3 });
  });

  t.test('bad limit, offset, sort or an unknown parameter → 400 VALIDATION_ERROR', async (t) => {
    for (const query of ['limit=0', 'limit=101', 'limit=ten', 'limit=1.5', 'offset=-1', 'offset=x']) {
      expectValidation(t, await get(`${ROUTE}?${query}`), query.split('=')[0] as string);
    }
    for (const sort of ['version', 'id', '--createdAt', UNKNOWN_FIELD]) expectValidation(t, await get(`${ROUTE}?sort=${sort}`), 'sort');
    expectValidation(t, await get(`${ROUTE}?${UNKNOWN_FIELD}=1`), UNKNOWN_FIELD);
  });

  t.test('no token or a bad one → 401 UNAUTHORIZED', async (t) => {
    expectError(t, await get(ROUTE, null), 401, 'UNAUTHORIZED');
    expectError(t, await app.inject({ method: 'GET', url: ROUTE, headers: { authorization: 'Bearer junk' } }), 401, 'UNAUTHORIZED');
  });
});

t.test(`GET ${ROUTE}/:id`, async (t) => {
  const created = await create__Entity__(app, admin);

  t.test('200 the item, for any signed-in user', async (t) => {
    const response = await get(`${ROUTE}/${created.id}`);
    t.equal(response.statusCode, 200, response.body);
    expectItem(t, response.json() as __Entity__, created);
  });

  t.test('unknown id → 404 NOT_FOUND; malformed id → 400; no token → 401', async (t) => {
    expectError(t, await get(`${ROUTE}/${randomUUID()}`), 404, 'NOT_FOUND');
    expectValidation(t, await get(`${ROUTE}/not-a-uuid`), 'id');
    expectValidation(t, await get(`${ROUTE}/${created.id}x`), 'id');
    expectError(t, await get(`${ROUTE}/${created.id}`, null), 401, 'UNAUTHORIZED');
  });
});

t.test(`POST ${ROUTE}`, async (t) => {
  t.test('admin → 201 with version 1; readable afterwards', async (t) => {
    const response = await post(valid(0), admin);
    t.equal(response.statusCode, 201, response.body);
    const created = response.json() as __Entity__;
    expectItem(t, created, { ...valid(0), version: 1 });
    t.same((await get(`${ROUTE}/${created.id}`)).json(), created);
  });

  t.test('only the required fields → 201; the optional ones are null', async (t) => {
    const response = await post(requiredOnly(1), admin);
    t.equal(response.statusCode, 201, response.body);
    const nulls = Object.fromEntries(optionalFields.map((f) => [f, null]));
    expectItem(t, response.json() as __Entity__, { ...requiredOnly(1), ...nulls });
  });

  t.test('invalid bodies → 400 naming the field, and nothing is written', async (t) => {
    const before = await total();
    for (const [field, value, why] of invalidValues) {
      t.test(`${field}: ${why}`, async (t) => {
        expectValidation(t, await post({ ...valid(), [field]: value }, admin), field);
      });
    }
    for (const field of requiredFields) {
      t.test(`${field} missing or null`, async (t) => {
        expectValidation(t, await post(Object.fromEntries(Object.entries(valid()).filter(([f]) => f !== field)), admin), field);
        expectValidation(t, await post({ ...valid(), [field]: null }, admin), field);
      });
    }
    for (const field of optionalFields) {
      t.test(`${field} null (null only clears, in a patch)`, async (t) => {
        expectValidation(t, await post({ ...valid(), [field]: null }, admin), field);
      });
    }
    t.test('an unknown field, or one the server manages', async (t) => {
      expectValidation(t, await post({ ...valid(), [UNKNOWN_FIELD]: 1 }, admin), UNKNOWN_FIELD);
      expectValidation(t, await post({ ...valid(), version: 7 }, admin), 'version');
      expectValidation(t, await post({ ...valid(), id: randomUUID() }, admin), 'id');
    });
    t.test('not JSON', async (t) => {
      const response = await app.inject({
        method: 'POST',
        url: ROUTE,
        headers: { ...admin.auth, 'content-type': 'application/json' },
        payload: '{"oops"',
      });
      expectError(t, response, 400);
    });
    t.test('nothing was written', async (t) => {
      t.equal(await total(), before);
    });
  });

  t.test('non-admin → 403 FORBIDDEN; no token → 401 UNAUTHORIZED; nothing is written', async (t) => {
    const before = await total();
    expectError(t, await post(valid(), user), 403, 'FORBIDDEN');
    expectError(t, await post(valid()), 401, 'UNAUTHORIZED');
    t.equal(await total(), before);
  });
});

t.test(`PATCH ${ROUTE}/:id`, async (t) => {
  t.test('admin → 200 with version + 1; GET shows the change', async (t) => {
    const created = await create__Entity__(app, admin, valid(0));
    const response = await patch(created.id, { version: 1, ...valid(1) }, admin);
    t.equal(response.statusCode, 200, response.body);
    const expected = { ...valid(1), id: created.id, version: 2, createdAt: created.createdAt };
    expectItem(t, response.json() as __Entity__, expected);
    t.same((await get(`${ROUTE}/${created.id}`)).json(), response.json());
  });

  t.test('one field at a time; the others keep their values', async (t) => {
    for (const field of fields) {
      const created = await create__Entity__(app, admin, valid(0));
      const response = await patch(created.id, { version: 1, [field]: valid(1)[field] }, admin);
      t.equal(response.statusCode, 200, response.body);
      const kept = Object.fromEntries(fields.filter((f) => f !== field).map((f) => [f, created[f]]));
      const expected = { ...kept, [field]: valid(1)[field], id: created.id, version: 2 };
      expectItem(t, response.json() as __Entity__, expected);
    }
  });

  t.test('null clears an optional field', async (t) => {
    for (const field of optionalFields) {
      const created = await create__Entity__(app, admin, valid(0));
      const response = await patch(created.id, { version: 1, [field]: null }, admin);
      t.equal(response.statusCode, 200, response.body);
      t.equal((response.json() as __Entity__)[field], null, `${field} cleared`);
    }
  });

  t.test('stale version → 409 VERSION_CONFLICT and nothing changes', async (t) => {
    const created = await create__Entity__(app, admin, valid(0));
    const first = await patch(created.id, { version: 1, ...valid(1) }, admin);
    t.equal(first.statusCode, 200, first.body);
    const body = expectError(t, await patch(created.id, { version: 1, ...valid(2) }, admin), 409, 'VERSION_CONFLICT');
    t.match(body.message, /version 1/, 'the message names the stale version');
    expectError(t, await patch(created.id, { version: 9, ...valid(2) }, admin), 409, 'VERSION_CONFLICT');
    t.same((await get(`${ROUTE}/${created.id}`)).json(), first.json(), 'unchanged');
  });

  t.test('invalid bodies → 400 and nothing changes', async (t) => {
    const created = await create__Entity__(app, admin, valid(0));
    expectValidation(t, await patch(created.id, valid(1), admin), 'version');
    expectValidation(t, await patch(created.id, { ...valid(1), version: '1' }, admin), 'version');
    expectValidation(t, await patch(created.id, { ...valid(1), version: 0 }, admin), 'version');
    expectError(t, await patch(created.id, { version: 1 }, admin), 400, 'VALIDATION_ERROR');
    expectError(t, await patch(created.id, {}, admin), 400, 'VALIDATION_ERROR');
    expectValidation(t, await patch(created.id, { version: 1, ...valid(1), [UNKNOWN_FIELD]: 1 }, admin), UNKNOWN_FIELD);
    for (const [field, value, why] of invalidValues) {
      t.test(`${field}: ${why}`, async (t) => {
        expectValidation(t, await patch(created.id, { version: 1, [field]: value }, admin), field);
      });
    }
    for (const field of requiredFields) {
      t.test(`${field} null`, async (t) => {
        expectValidation(t, await patch(created.id, { version: 1, [field]: null }, admin), field);
      });
    }
    t.test('nothing changed', async (t) => {
      t.same((await get(`${ROUTE}/${created.id}`)).json(), created);
    });
  });

  t.test('unknown id → 404; malformed id → 400; non-admin → 403; no token → 401', async (t) => {
    const created = await create__Entity__(app, admin);
    expectError(t, await patch(randomUUID(), { version: 1, ...valid(1) }, admin), 404, 'NOT_FOUND');
    expectValidation(t, await patch('not-a-uuid', { version: 1, ...valid(1) }, admin), 'id');
    expectError(t, await patch(created.id, { version: 1, ...valid(1) }, user), 403, 'FORBIDDEN');
    expectError(t, await patch(created.id, { version: 1, ...valid(1) }), 401, 'UNAUTHORIZED');
    t.same((await get(`${ROUTE}/${created.id}`)).json(), created, 'nothing changed');
  });
});

t.test(`DELETE ${ROUTE}/:id`, async (t) => {
  t.test('admin → 204; then GET, PATCH and DELETE → 404 and the list leaves it out', async (t) => {
    const created = await create__Entity__(app, admin);
    const before = await total();
    const response = await remove(created.id, admin);
    t.equal(response.statusCode, 204, response.body);
    t.equal(response.body, '', 'no body');

    expectError(t, await get(`${ROUTE}/${created.id}`), 404, 'NOT_FOUND');
    t.equal(await total(), before - 1, 'the total drops by one');
    t.notOk((await page()).items.some((item) => item.id === created.id), 'not listed');
    expectError(t, await patch(created.id, { version: 2, ...valid(1) }, admin), 404, 'NOT_FOUND');
    expectError(t, await remove(created.id, admin), 404, 'NOT_FOUND');
  });

  t.test('unknown id → 404; malformed id → 400; non-admin → 403; no token → 401', async (t) => {
    const created = await create__Entity__(app, admin);
    expectError(t, await remove(randomUUID(), admin), 404, 'NOT_FOUND');
    expectValidation(t, await remove('not-a-uuid', admin), 'id');
    expectError(t, await remove(created.id, user), 403, 'FORBIDDEN');
    expectError(t, await remove(created.id), 401, 'UNAUTHORIZED');
    t.equal((await get(`${ROUTE}/${created.id}`)).statusCode, 200, 'still there');
  });
});
