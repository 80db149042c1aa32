import { type Actor, canSee, isAdmin } from '../core/base/validator.js';
import { EmailTakenError, ForbiddenError, NotFoundError } from '../core/base/errors.js';
import type { UsersRepository } from './repository.js';
import type { PatchUser } from './schema.js';

/** Business rules of users beyond the shape of a request. */
export function createUsersValidator(repository: UsersRepository) {
  return {
    /** Fast, friendly check; the unique index still decides under concurrency. */
    async emailIsFree(email: string) {
      if (await repository.findByEmail(email)) throw new EmailTakenError();
    },

    /** Self or admin; anyone else is told the user does not exist. */
    canRead(actor: Actor, userId: string) {
      if (!canSee(actor, userId)) throw new NotFoundError(`user ${userId} not found`);
    },

    canPatch(actor: Actor, userId: string, patch: PatchUser) {
      this.canRead(actor, userId);
      if (patch.role !== undefined && !isAdmin(actor)) throw new ForbiddenError('Only an admin may change a role');
    },
  };
}

export type UsersValidator = ReturnType<typeof createUsersValidator>;
