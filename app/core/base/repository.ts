import { and, asc, count, desc, eq, isNotNull, isNull, type SQL, sql } from 'drizzle-orm';
import type { PgColumn, PgTable } from 'drizzle-orm/pg-core';
import type { Db, Executor } from '../database.js';
import { ConflictError, isUniqueViolation, NotFoundError, VersionConflictError } from './errors.js';

/** A table that spreads `commonColumns()`. */
export type EntityTable = PgTable & {
  id: PgColumn;
  createdAt: PgColumn;
  updatedAt: PgColumn;
  deletedAt: PgColumn;
  version: PgColumn;
};

export interface ListOptions {
  limit: number;
  offset: number;
  /** `field` or `-field`; must be a key of the repository's sortable map (the route schema enforces it). */
  sort?: string | undefined;
  where?: SQL | undefined;
}

export interface Page<Row> {
  items: Row[];
  total: number;
}

/**
 * Database access every entity shares: live rows only (soft-deleted rows are invisible), pagination
 * with a total, whitelisted sorting, version-guarded updates. Every method takes an optional
 * executor so a service can run several of them in one transaction.
 */
export class BaseRepository<T extends EntityTable, Row = T['$inferSelect'], New = T['$inferInsert']> {
  constructor(
    protected readonly db: Db,
    protected readonly table: T,
    protected readonly sortable: Record<string, PgColumn>,
    protected readonly name: string,
  ) {}

  /** Conditions plus "not soft-deleted". */
  protected live(...conditions: (SQL | undefined)[]): SQL {
    return and(isNull(this.table.deletedAt), ...conditions) as SQL;
  }

  protected orderBy(sort: string | undefined): SQL[] {
    const descending = sort?.startsWith('-') ?? true;
    const column = sort ? this.sortable[sort.replace(/^-/, '')] : this.table.createdAt;
    if (!column) throw new Error(`${this.name}: '${sort}' is not a sortable field`);
    // The id makes the order total, so pages never overlap or skip rows.
    return [descending ? desc(column) : asc(column), asc(this.table.id)];
  }

  async findById(id: string, tx: Executor = this.db): Promise<Row | undefined> {
    const rows = await tx
      .select()
      .from(this.table as PgTable)
      .where(this.live(eq(this.table.id, id)))
      .limit(1);
    return rows[0] as Row | undefined;
  }

  async getById(id: string, tx: Executor = this.db): Promise<Row> {
    const row = await this.findById(id, tx);
    if (!row) throw new NotFoundError(`${this.name} ${id} not found`);
    return row;
  }

  async list(options: ListOptions, tx: Executor = this.db): Promise<Page<Row>> {
    const where = this.live(options.where);
    const items = await tx
      .select()
      .from(this.table as PgTable)
      .where(where)
      .orderBy(...this.orderBy(options.sort))
      .limit(options.limit)
      .offset(options.offset);
    const [counted] = await tx
      .select({ total: count() })
      .from(this.table as PgTable)
      .where(where);
    return { items: items as Row[], total: counted?.total ?? 0 };
  }

  async create(values: New, tx: Executor = this.db): Promise<Row> {
    const rows = await tx
      .insert(this.table)
      .values(values as T['$inferInsert'])
      .returning();
    return (rows as Row[])[0] as Row;
  }

  /**
   * Applies `patch` only if the row still has `expectedVersion`, and bumps the version.
   * Another writer in between → VERSION_CONFLICT; no live row → NOT_FOUND.
   */
  async update(id: string, expectedVersion: number, patch: Partial<New>, tx: Executor = this.db): Promise<Row> {
    const rows = (await tx
      .update(this.table)
      .set({ ...patch, version: sql`${this.table.version} + 1`, updatedAt: sql`now()` } as never)
      .where(this.live(eq(this.table.id, id), eq(this.table.version, expectedVersion)))
      .returning()) as Row[];
    if (rows[0]) return rows[0];
    await this.getById(id, tx);
    throw new VersionConflictError(String(expectedVersion));
  }

  /** Soft delete: the row stays for audit and foreign keys but disappears from every read. */
  async softDelete(id: string, tx: Executor = this.db): Promise<Row> {
    const rows = (await tx
      .update(this.table)
      .set({ deletedAt: sql`now()`, updatedAt: sql`now()`, version: sql`${this.table.version} + 1` } as never)
      .where(this.live(eq(this.table.id, id)))
      .returning()) as Row[];
    if (!rows[0]) throw new NotFoundError(`${this.name} ${id} not found`);
    return rows[0];
  }

  /** Brings a soft-deleted row back; CONFLICT when a live row has taken one of its unique values since. */
  async restore(id: string, tx: Executor = this.db): Promise<Row> {
    let rows: Row[];
    try {
      rows = (await tx
        .update(this.table)
        .set({ deletedAt: null, updatedAt: sql`now()`, version: sql`${this.table.version} + 1` } as never)
        .where(and(eq(this.table.id, id), isNotNull(this.table.deletedAt)))
        .returning()) as Row[];
    } catch (error) {
      if (isUniqueViolation(error)) throw new ConflictError(`${this.name} ${id} cannot be restored: a live one has the same unique value`);
      throw error;
    }
    if (!rows[0]) throw new NotFoundError(`deleted ${this.name} ${id} not found`);
    return rows[0];
  }
}
