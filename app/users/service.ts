import { type Actor } from '../core/base/validator.js';
import { EmailTakenError, InvalidCredentialsError, isUniqueViolation, UnauthorizedError } from '../core/base/errors.js';
import { isoRequired, type WriteContext } from '../core/base/service.js';
import type { Db, Executor } from '../core/database.js';
import type { LoginGuard } from '../core/security/login-guard.js';
import type { Outbox } from '../core/service/outbox/service.js';
import { hashPassword, verifyPassword } from '../core/security/password.js';
import type { AccessClaims, Sessions } from '../core/security/sessions.js';
import type { UserRow } from './model.js';
import type { UsersRepository } from './repository.js';
import type { Login, PatchUser, Register, User, UserListQuery } from './schema.js';
import type { UsersValidator } from './validator.js';

export const toUser = (row: UserRow): User => ({
  id: row.id,
  email: row.email,
  name: row.name,
  role: row.role,
  version: row.version,
  createdAt: isoRequired(row.createdAt),
  updatedAt: isoRequired(row.updatedAt),
});

interface Deps {
  db: Db;
  repository: UsersRepository;
  validator: UsersValidator;
  sessions: Sessions;
  loginGuard: LoginGuard;
  outbox: Outbox;
}

/**
 * Writing new users (with their users.registered.v1 event) and the SEED_ADMIN_* admin: the part of the service
 * that needs only the database, so `npm run seed` runs it without sessions, Redis or Kafka.
 */
export function createUserWriter({ db, repository, validator, outbox }: Pick<Deps, 'db' | 'repository' | 'validator' | 'outbox'>) {
  async function insert(input: Register, role: UserRow['role'], context: WriteContext): Promise<UserRow> {
    await validator.emailIsFree(input.email);
    const passwordHash = await hashPassword(input.password);
    try {
      return await db.transaction(async (tx: Executor) => {
        const user = await repository.create({ email: input.email.trim(), name: input.name, passwordHash, role }, tx);
        await outbox.add(tx, {
          topic: 'users.registered.v1',
          key: user.id,
          data: { userId: user.id, email: user.email },
          correlationId: context.correlationId,
        });
        return user;
      });
    } catch (error) {
      if (isUniqueViolation(error, 'users_email_live_key')) throw new EmailTakenError();
      throw error;
    }
  }

  return {
    insert,

    /** The SEED_ADMIN_* user exists and is an admin. Idempotent; never resets a password. */
    async ensureAdmin(email: string, password: string): Promise<'created' | 'promoted' | 'present'> {
      for (;;) {
        const existing = await repository.findByEmail(email);
        if (existing) {
          if (existing.role === 'admin') return 'present';
          await repository.update(existing.id, existing.version, { role: 'admin' });
          return 'promoted';
        }
        try {
          await insert({ email, password, name: 'Administrator' }, 'admin', {});
          outbox.wake();
          return 'created';
        } catch (error) {
          // Another instance created it at the same moment: look again.
          if (!(error instanceof EmailTakenError)) throw error;
        }
      }
    },
  };
}

/** Users and the identity flows built on them: registration, login, refresh, logout. */
export function createUsersService(deps: Deps) {
  const { db, repository, validator, sessions, loginGuard, outbox } = deps;
  const writer = createUserWriter(deps);

  return {
    async register(input: Register, context: WriteContext = {}): Promise<User> {
      const user = toUser(await writer.insert(input, 'user', context));
      outbox.wake();
      return user;
    },

    /** Same answer for an unknown email and a wrong password; failures are counted per email and address. */
    async login(input: Login, clientIp: string) {
      await loginGuard.attempt(input.email, clientIp);
      const user = await repository.findByEmail(input.email);
      if (!(await verifyPassword(user?.passwordHash, input.password)) || !user) throw new InvalidCredentialsError();
      await loginGuard.succeeded(input.email, clientIp);
      return sessions.start(user);
    },

    refresh(refreshToken: string) {
      return sessions.refresh(refreshToken, (id, tx) => repository.findById(id, tx));
    },

    /** Ends the calling session; the presented refresh token's session too when it is the caller's. */
    async logout(claims: AccessClaims, refreshToken: string) {
      await sessions.revoke(claims.sid, 'logout');
      const other = await sessions.sessionOf(refreshToken);
      if (other && other.userId === claims.sub && other.sid !== claims.sid) await sessions.revoke(other.sid, 'logout');
    },

    /** The caller. A token whose user no longer exists proves nothing: 401, not 404. */
    async me(actor: Actor): Promise<User> {
      const row = await repository.findById(actor.id);
      if (!row) throw new UnauthorizedError('The user of this token no longer exists');
      return toUser(row);
    },

    async get(actor: Actor, id: string): Promise<User> {
      validator.canRead(actor, id);
      return toUser(await repository.getById(id));
    },

    async list(query: UserListQuery) {
      const page = await repository.search(query);
      return { ...page, items: page.items.map(toUser), limit: query.limit, offset: query.offset };
    },

    async update(actor: Actor, id: string, patch: PatchUser): Promise<User> {
      validator.canPatch(actor, id, patch);
      return db.transaction(async (tx) => {
        const current = await repository.getById(id, tx);
        const row = await repository.update(
          id,
          current.version,
          {
            ...(patch.name !== undefined && { name: patch.name }),
            ...(patch.role !== undefined && { role: patch.role }),
            ...(patch.password !== undefined && { passwordHash: await hashPassword(patch.password) }),
          },
          tx,
        );
        // Tokens carry the role and prove the password: after a change of either, every session ends.
        if ((patch.role !== undefined && patch.role !== current.role) || patch.password !== undefined) {
          await sessions.revokeUser(id, patch.password !== undefined ? 'password-changed' : 'role-changed', tx);
        }
        return toUser(row);
      });
    },

    async remove(id: string): Promise<void> {
      await db.transaction(async (tx) => {
        await repository.softDelete(id, tx);
        await sessions.revokeUser(id, 'user-deleted', tx);
      });
    },

    /** Start-up task (and `npm run seed`): see createUserWriter. */
    ensureAdmin: writer.ensureAdmin,
  };
}

export type UsersService = ReturnType<typeof createUsersService>;
