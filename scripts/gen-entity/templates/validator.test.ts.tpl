import t from 'tap';
import { __Entities__Repository } from '../../app/__entity_folder__/repository.js';
import { create__Entities__Validator } from '../../app/__entity_folder__/validator.js';
import { connectTestDatabase } from '../helpers/db.js';
import { valid, validRow } from './fixtures.js';

/** The __entities_label__ business rules, asking the real repository on this file's own database. */

const { db } = await connectTestDatabase(t, 2);
const repository = new __Entities__Repository(db);
const validator = create__Entities__Validator(repository);
const MISSING_ID = '00000000-0000-4000-8000-000000000000';

t.test('beforeWrite lets every well-formed create and patch through', async (t) => {
  await t.resolves(validator.beforeWrite(valid(0)));
  const row = await repository.create(validRow(0));
  await t.resolves(validator.beforeWrite(valid(1), row.id));
});

t.test('requireLive returns the live __entity_label__, else NOT_FOUND', async (t) => {
  const row = await repository.create(validRow(0));
  t.same(await validator.requireLive(row.id), row);
  await db.transaction(async (tx) => {
    t.same(await validator.requireLive(row.id, tx), row, 'inside a transaction too');
  });
  await t.rejects(validator.requireLive(MISSING_ID), { code: 'NOT_FOUND', statusCode: 404 });
  await repository.softDelete(row.id);
  await t.rejects(validator.requireLive(row.id), { code: 'NOT_FOUND' }, 'a soft-deleted one is gone');
});
