import { type SQL, sql } from 'drizzle-orm';
import type { Test } from 'tap';
import { connectPostgres, type Db } from '../../app/core/adapter/postgres.js';
import { testDatabaseUrl } from './infra.js';

/** Direct access to this test file's own PostgreSQL database, and what the migrations made of it. */

/** Raw SQL rows; the driver-neutral Db type does not know postgres.js returns an array. */
export const rowsOf = async <Row>(db: Db, statement: SQL): Promise<Row[]> => [
  ...((await db.execute(statement)) as unknown as Iterable<Row>),
];

export interface TestDatabase {
  db: Db;
  /** Raw SQL on `db`: its rows. */
  query: <Row>(statement: SQL) => Promise<Row[]>;
}

/** A pool of `poolMax` connections to this test file's own migrated database (infra.ts), closed when `t` ends. */
export async function connectTestDatabase(t: Test, poolMax: number): Promise<TestDatabase> {
  const connection = await connectPostgres({ url: await testDatabaseUrl(), poolMax, applicationName: 'plinth-tests' });
  t.teardown(() => connection.close());
  const { db } = connection;
  return { db, query: (statement) => rowsOf(db, statement) };
}

export interface Column {
  column_name: string;
  data_type: string;
  udt_name: string;
  is_nullable: 'YES' | 'NO';
  column_default: string | null;
}

/** The columns of a table in the public schema, by name. */
export async function columnsOf(db: Db, table: string): Promise<Record<string, Column>> {
  const rows = await rowsOf<Column>(
    db,
    sql`
    select column_name, data_type, udt_name, is_nullable, column_default
    from information_schema.columns
    where table_schema = 'public' and table_name = ${table}
    order by column_name`,
  );
  return Object.fromEntries(rows.map((c) => [c.column_name, c]));
}

/** The primary-key columns of a table, in key order. */
export async function primaryKeyOf(db: Db, table: string): Promise<string[]> {
  const rows = await rowsOf<{ column_name: string }>(
    db,
    sql`
    select kcu.column_name
    from information_schema.table_constraints tc
    join information_schema.key_column_usage kcu using (constraint_schema, constraint_name)
    where tc.table_name = ${table} and tc.constraint_type = 'PRIMARY KEY'
    order by kcu.ordinal_position`,
  );
  return rows.map((r) => r.column_name);
}

/** The labels of an enum type, in their sort order. */
export async function enumLabelsOf(db: Db, type: string): Promise<string[]> {
  const rows = await rowsOf<{ label: string }>(
    db,
    sql`
    select e.enumlabel as label from pg_enum e join pg_type ty on ty.oid = e.enumtypid
    where ty.typname = ${type} order by e.enumsortorder`,
  );
  return rows.map((r) => r.label);
}

/** The CREATE INDEX statement of an index of a table, or undefined when there is no such index. */
export async function indexDefinitionOf(db: Db, table: string, index: string): Promise<string | undefined> {
  const [row] = await rowsOf<{ indexdef: string }>(
    db,
    sql`select indexdef from pg_indexes where tablename = ${table} and indexname = ${index}`,
  );
  return row?.indexdef;
}

/**
 * Asserts the columns every entity table carries (commonColumns() of app/core/base/columns.ts): a uuid `id`
 * defaulting to gen_random_uuid() as the whole primary key, created_at and updated_at (timestamptz, not null,
 * default now()), a nullable deleted_at (timestamptz) and an integer `version` defaulting to 1.
 * Returns all the table's columns by name, for the table's own checks.
 */
export async function expectCommonColumns(t: Test, db: Db, table: string): Promise<Record<string, Column>> {
  const byName = await columnsOf(db, table);
  t.match(byName.id, { udt_name: 'uuid', is_nullable: 'NO' });
  t.match(byName.id?.column_default, /gen_random_uuid\(\)/);
  t.match(byName.version, { data_type: 'integer', is_nullable: 'NO' });
  t.match(byName.version?.column_default, /^1$/, 'version defaults to 1');
  for (const name of ['created_at', 'updated_at'] as const) {
    t.match(byName[name], { data_type: 'timestamp with time zone', is_nullable: 'NO' }, name);
    t.match(byName[name]?.column_default, /now\(\)/, `${name} defaults to now()`);
  }
  t.match(byName.deleted_at, { data_type: 'timestamp with time zone', is_nullable: 'YES' });
  t.same(await primaryKeyOf(db, table), ['id'], 'id is the primary key');
  return byName;
}
