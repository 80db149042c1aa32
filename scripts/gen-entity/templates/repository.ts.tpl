import { BaseRepository } from '../core/base/repository.js';
import type { Db, Executor } from '../core/database.js';
import { __entities__ } from './model.js';
import type { __Entity__ListQuery } from './schema.js';

/** Database access of __entities_label__ (SQL only): live rows, pages with a total, version-guarded writes. */
export class __Entities__Repository extends BaseRepository<typeof __entities__> {
  constructor(db: Db) {
    const sortable = {
      __sortable_columns__
    };
    super(db, __entities__, sortable, '__entity_label__');
  }

  /** A page of live __entities_label__ in the order the query asks for (newest first by default). */
  search(query: __Entity__ListQuery, tx: Executor = this.db) {
    return this.list({ limit: query.limit, offset: query.offset, sort: query.sort }, tx);
  }
}
