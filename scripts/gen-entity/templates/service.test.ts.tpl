import { randomUUID } from 'node:crypto';
import { eq } from 'drizzle-orm';
import t from 'tap';
import { __entities__ } from '../../app/__entity_folder__/model.js';
import { build } from '../helpers/app.js';
import { optionalFields, requiredFields, requiredOnly, responseKeys, valid } from './fixtures.js';

/** app.__entities__ (create__Entities__Service) as the app wires it, on this file's own database. */

const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const app = await build(t);
const service = app.__entities__;

async function storedRow(id: string) {
  const [row] = await app.db.select().from(__entities__).where(eq(__entities__.id, id));
  return row;
}

t.test('create, get, list', async (t) => {
  t.test('create returns the API shape with version 1 and ISO timestamps', async (t) => {
    const created = await service.create(valid(0));
    t.has(created, { ...valid(0), version: 1 });
    t.same(Object.keys(created).sort(), responseKeys, 'exactly the response fields; soft deletion stays internal');
    t.match(created.id, /^[0-9a-f-]{36}$/);
    t.match(created.createdAt, ISO_UTC);
    t.match(created.updatedAt, ISO_UTC);
    t.match(await storedRow(created.id), { id: created.id, version: 1, deletedAt: null });
  });

  t.test('optional fields left out are null', async (t) => {
    const created = await service.create(requiredOnly(1));
    for (const field of optionalFields) t.equal(created[field], null, `${field} is null`);
    t.has(created, requiredOnly(1));
  });

  t.test('get returns what create returned; an unknown id is NOT_FOUND', async (t) => {
    const created = await service.create(valid(2));
    t.same(await service.get(created.id), created);
    await t.rejects(service.get(randomUUID()), { code: 'NOT_FOUND', statusCode: 404 });
  });

  t.test('list: a page of items with the total, limit and offset', async (t) => {
    const before = (await service.list({ limit: 1, offset: 0 })).total;
    const first = await service.create(valid(0));
    const second = await service.create(valid(1));
    t.same(await service.list({ limit: 2, offset: 0 }), { items: [second, first], total: before + 2, limit: 2, offset: 0 });
    t.same(await service.list({ limit: 1, offset: 1 }), { items: [first], total: before + 2, limit: 1, offset: 1 });
  });
});

t.test('update and remove', async (t) => {
  t.test('update applies the patch and bumps the version', async (t) => {
    const created = await service.create(valid(0));
    const updated = await service.update(created.id, { version: 1, ...valid(1) });
    t.has(updated, { ...valid(1), id: created.id, version: 2, createdAt: created.createdAt });
    t.ok(updated.updatedAt >= created.updatedAt, 'updatedAt moves forward');
    t.same(await service.get(created.id), updated);
  });

  t.test('a patch changes only the fields it names; null clears an optional one', async (t) => {
    const fields = [...requiredFields, ...optionalFields];
    for (const field of fields) {
      const created = await service.create(valid(0));
      const updated = await service.update(created.id, { version: 1, [field]: valid(1)[field] });
      t.same(updated[field], valid(1)[field], `${field} changed`);
      for (const other of fields.filter((f) => f !== field)) t.same(updated[other], created[other], `${other} kept`);
    }
    for (const field of optionalFields) {
      const created = await service.create(valid(0));
      const cleared = await service.update(created.id, { version: 1, [field]: null });
      t.equal(cleared[field], null, `${field} cleared`);
    }
  });

  t.test('a stale version is VERSION_CONFLICT and changes nothing', async (t) => {
    const created = await service.create(valid(0));
    const updated = await service.update(created.id, { version: 1, ...valid(1) });
    await t.rejects(service.update(created.id, { version: 1, ...valid(2) }), { code: 'VERSION_CONFLICT', statusCode: 409 });
    await t.rejects(service.update(created.id, { version: 5, ...valid(2) }), { code: 'VERSION_CONFLICT' }, 'a future one too');
    t.same(await service.get(created.id), updated, 'unchanged');
  });

  t.test('concurrent updates with one version: exactly one wins', async (t) => {
    const created = await service.create(valid(0));
    const results = await Promise.allSettled([0, 1, 2, 1].map((i) => service.update(created.id, { version: 1, ...valid(i) })));
    t.equal(results.filter((r) => r.status === 'fulfilled').length, 1, 'one wins');
    for (const r of results.filter((r): r is PromiseRejectedResult => r.status === 'rejected')) {
      t.match(r.reason, { code: 'VERSION_CONFLICT' }, 'the others are VERSION_CONFLICT, not a 500');
    }
    t.equal((await storedRow(created.id))?.version, 2);
  });

  t.test('an unknown id is NOT_FOUND for update and remove', async (t) => {
    await t.rejects(service.update(randomUUID(), { version: 1, ...valid(1) }), { code: 'NOT_FOUND', statusCode: 404 });
    await t.rejects(service.remove(randomUUID()), { code: 'NOT_FOUND', statusCode: 404 });
  });

  t.test('remove soft-deletes: get, list and update stop seeing it; the row stays', async (t) => {
    const created = await service.create(valid(0));
    await service.remove(created.id);
    await t.rejects(service.get(created.id), { code: 'NOT_FOUND' });
    const listed = await service.list({ limit: 100, offset: 0 });
    t.notOk(listed.items.some((item) => item.id === created.id), 'not listed');
    await t.rejects(service.update(created.id, { version: 2, ...valid(1) }), { code: 'NOT_FOUND' });
    await t.rejects(service.remove(created.id), { code: 'NOT_FOUND' }, 'removing twice is NOT_FOUND');
    t.type((await storedRow(created.id))?.deletedAt, Date, 'the row is kept, marked deleted');
  });
});
