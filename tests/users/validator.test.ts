import { randomBytes, randomUUID } from 'node:crypto';
import t from 'tap';
import type { Actor } from '../../app/core/base/validator.js';
import { UsersRepository } from '../../app/users/repository.js';
import { createUsersValidator } from '../../app/users/validator.js';
import { connectTestDatabase } from '../helpers/db.js';

/** The users business rules; emailIsFree asks the real repository on this file's own database. */

const { db } = await connectTestDatabase(t, 2);
const repository = new UsersRepository(db);
const validator = createUsersValidator(repository);

const self: Actor = { id: randomUUID(), role: 'user' };
const admin: Actor = { id: randomUUID(), role: 'admin' };
const otherId = randomUUID();

t.test('canRead: self and admin may read, anyone else is told NOT_FOUND', async (t) => {
  t.doesNotThrow(() => validator.canRead(self, self.id), 'a user reads itself');
  t.doesNotThrow(() => validator.canRead(admin, otherId), 'an admin reads anyone');
  t.doesNotThrow(() => validator.canRead(admin, admin.id), 'an admin reads itself');
  t.throws(() => validator.canRead(self, otherId), { code: 'NOT_FOUND', statusCode: 404 }, 'another user');
  t.throws(
    () => validator.canRead(self, otherId),
    { message: `user ${otherId} not found` },
    'the same answer as for an id that does not exist',
  );
});

t.test('canPatch', async (t) => {
  t.doesNotThrow(() => validator.canPatch(self, self.id, { name: 'New' }), 'self: name');
  t.doesNotThrow(() => validator.canPatch(self, self.id, { password: 'new-password' }), 'self: password');
  t.doesNotThrow(() => validator.canPatch(admin, otherId, { role: 'admin' }), 'admin: role of another user');
  t.doesNotThrow(() => validator.canPatch(admin, otherId, { name: 'N', password: 'new-password', role: 'user' }));

  t.throws(() => validator.canPatch(self, self.id, { role: 'admin' }), { code: 'FORBIDDEN', statusCode: 403 }, 'self: role');
  t.throws(
    () => validator.canPatch(self, self.id, { role: 'user' }),
    { code: 'FORBIDDEN' },
    'sending role at all is forbidden to a non-admin, even the current one',
  );
  t.throws(() => validator.canPatch(self, self.id, { name: 'x', role: 'admin' }), { code: 'FORBIDDEN' }, 'role with name');

  t.throws(() => validator.canPatch(self, otherId, { name: 'Hijack' }), { code: 'NOT_FOUND' }, 'the id of another user: 404');
  t.throws(
    () => validator.canPatch(self, otherId, { role: 'admin' }),
    { code: 'NOT_FOUND' },
    'the id of another user with role: still 404, nothing revealed',
  );
});

t.test('emailIsFree', async (t) => {
  const email = `Free-${randomBytes(4).toString('hex')}@Example.com`;
  await t.resolves(validator.emailIsFree(email), 'a new email is free');

  const row = await repository.create({ email, name: 'Taken', passwordHash: 'x' });
  await t.rejects(validator.emailIsFree(email), { code: 'EMAIL_TAKEN', statusCode: 409 }, 'the same email');
  await t.rejects(validator.emailIsFree(email.toLowerCase()), { code: 'EMAIL_TAKEN' }, 'in lower case');
  await t.rejects(validator.emailIsFree(email.toUpperCase()), { code: 'EMAIL_TAKEN' }, 'in upper case');
  await t.resolves(validator.emailIsFree(`x${email}`), 'a different email is free');

  await repository.softDelete(row.id);
  await t.resolves(validator.emailIsFree(email), 'free again once its user is soft-deleted');
});
