import { isoRequired } from '../core/base/service.js';
import type { __Entity__Row } from './model.js';
import type { __Entities__Repository } from './repository.js';
import type { Create__Entity__, Patch__Entity__, __Entity__, __Entity__ListQuery } from './schema.js';
import type { __Entities__Validator } from './validator.js';

__service_helpers__
/** A row as the API shows it: timestamps as ISO-8601 strings, soft deletion kept internal. */
export const to__Entity__ = (row: __Entity__Row): __Entity__ => ({
  id: row.id,
  __to_response__
  version: row.version,
  createdAt: isoRequired(row.createdAt),
  updatedAt: isoRequired(row.updatedAt),
});

interface Deps {
  repository: __Entities__Repository;
  validator: __Entities__Validator;
}

/** The business logic of __entities_label__ (no HTTP, no SQL): the validator's rules run before every write. */
export function create__Entities__Service({ repository, validator }: Deps) {
  return {
    async get(id: string): Promise<__Entity__> {
      return to__Entity__(await repository.getById(id));
    },

    async list(query: __Entity__ListQuery) {
      const page = await repository.search(query);
      const items = page.items.map(to__Entity__);
      return { items, total: page.total, limit: query.limit, offset: query.offset };
    },

    async create(input: Create__Entity__): Promise<__Entity__> {
      await validator.beforeWrite(input);
      const row = await repository.create({
        __create_columns__
      });
      return to__Entity__(row);
    },

    /** Applies the patch if the row still has `version` (else VERSION_CONFLICT); undefined fields stay as they are. */
    async update(id: string, { version, ...patch }: Patch__Entity__): Promise<__Entity__> {
      await validator.beforeWrite(patch, id);
      const row = await repository.update(id, version, {
        __patch_columns__
      });
      return to__Entity__(row);
    },

    /** Soft delete: the row stays, but every read and write treats it as gone. */
    async remove(id: string): Promise<void> {
      await repository.softDelete(id);
    },
  };
}

export type __Entities__Service = ReturnType<typeof create__Entities__Service>;
