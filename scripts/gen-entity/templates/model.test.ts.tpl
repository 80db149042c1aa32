import { eq } from 'drizzle-orm';
import t from 'tap';
import { __entities__ } from '../../app/__entity_folder__/model.js';
import { connectTestDatabase, expectCommonColumns } from '../helpers/db.js';
import { failure } from '../helpers/wait.js';
import { columns, optionalFields, requiredFields, validRow } from './fixtures.js';

/** The __entity_table__ table as the migrations create it, on this file's own PostgreSQL database. */

const { db } = await connectTestDatabase(t, 2);

/** The SQLSTATE under drizzle's wrapper. */
function sqlState(error: unknown): string | undefined {
  for (let e = error as { code?: unknown; cause?: unknown } | undefined; e; e = e.cause as typeof e) {
    if (typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code)) return e.code;
  }
  return undefined;
}

t.test('the table has the common columns and one column per field', async (t) => {
  const byName = await expectCommonColumns(t, db, '__entity_table__');
  const common = ['created_at', 'deleted_at', 'id', 'updated_at', 'version'];
  t.same(Object.keys(byName).sort(), [...common, ...Object.keys(columns)].sort(), 'no other columns');
  for (const [name, expected] of Object.entries(columns)) t.match(byName[name], expected, name);
});

t.test('an insert gets the defaults: a v4 uuid, version 1, timestamps, not deleted', async (t) => {
  const [row] = await db.insert(__entities__).values(validRow(0)).returning();
  t.match(row, { version: 1, deletedAt: null });
  t.match(row?.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  t.type(row?.createdAt, Date);
  t.same(row?.updatedAt, row?.createdAt, 'created and updated at the same moment');
  t.has(row, validRow(0), 'every field is stored as given');
});

t.test('a required field is NOT NULL; an optional one may be null', async (t) => {
  for (const field of requiredFields) {
    const error = await failure(db.insert(__entities__).values({ ...validRow(1), [field]: null }));
    t.equal(sqlState(error), '23502', `${field} is NOT NULL`);
  }
  for (const field of optionalFields) {
    const [row] = await db.insert(__entities__).values({ ...validRow(1), [field]: null }).returning();
    t.equal(row?.[field], null, `${field} may be null`);
    const [stored] = await db.select().from(__entities__).where(eq(__entities__.id, row?.id ?? ''));
    t.equal(stored?.[field], null, `${field} is stored as null`);
  }
});
