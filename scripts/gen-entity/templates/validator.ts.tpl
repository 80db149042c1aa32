import type { Executor } from '../core/database.js';
import type { __Entities__Repository } from './repository.js';
import type { Create__Entity__, Patch__Entity__ } from './schema.js';

/** The fields a create or a patch sets (a patch without its version). */
export type __Entity__Changes = Partial<Create__Entity__> | Omit<Patch__Entity__, 'version'>;

/**
 * Business rules of __entities_label__ beyond the request shape (uniqueness, references, state transitions).
 * The service runs `beforeWrite` before every create and patch: add rules there and throw the typed errors
 * of core/base/errors.ts, which become the API's error answers.
 */
export function create__Entities__Validator(repository: __Entities__Repository) {
  return {
    /** No rule yet beyond the schema: every well-formed create and patch passes. `id` is unset for a create. */
    async beforeWrite(_changes: __Entity__Changes, _id?: string): Promise<void> {
      // Rules go here.
    },

    /** The live __entity_label__ with this id, or NOT_FOUND: for entities that refer to this one. */
    requireLive: (id: string, tx?: Executor) => repository.getById(id, tx),
  };
}

export type __Entities__Validator = ReturnType<typeof create__Entities__Validator>;
