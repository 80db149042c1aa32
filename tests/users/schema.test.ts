import t from 'tap';
import { Value } from 'typebox/value';
import {
  LoginSchema,
  PatchUserSchema,
  RefreshSchema,
  RegisterSchema,
  TokenPairSchema,
  UserListQuerySchema,
  UserPageSchema,
  UserSchema,
  userSortFields,
} from '../../app/users/schema.js';
import { errorsOf } from '../helpers/schema.js';

/** Pure unit tests of the users DTOs: what a route accepts and what it refuses, before any code runs. */

const valid = { email: 'ada@example.com', password: 'correct-horse', name: 'Ada Lovelace' };

t.test('RegisterSchema', async (t) => {
  t.ok(Value.Check(RegisterSchema, valid), 'a complete registration is accepted');
  t.ok(Value.Check(RegisterSchema, { ...valid, email: 'first.last+tag@sub.example.org' }), 'plus and dots in an email');

  t.test('rejects a bad email', async (t) => {
    for (const email of ['not-an-email', 'missing-at.example.com', '@example.com', 'ada@', 'a b@example.com', '']) {
      t.notOk(Value.Check(RegisterSchema, { ...valid, email }), `'${email}'`);
      t.ok(errorsOf(RegisterSchema, { ...valid, email }).some((e) => e.path === '/email'), `'${email}' blames /email`);
    }
    t.notOk(Value.Check(RegisterSchema, { ...valid, email: `${'a'.repeat(250)}@example.com` }), 'over 254 characters');
  });

  t.test('password must be 8..128 characters', async (t) => {
    t.notOk(Value.Check(RegisterSchema, { ...valid, password: '1234567' }), '7 characters');
    t.match(errorsOf(RegisterSchema, { ...valid, password: '1234567' }), [{ keyword: 'minLength', path: '/password' }]);
    t.ok(Value.Check(RegisterSchema, { ...valid, password: '12345678' }), '8 characters');
    t.ok(Value.Check(RegisterSchema, { ...valid, password: 'x'.repeat(128) }), '128 characters');
    t.notOk(Value.Check(RegisterSchema, { ...valid, password: 'x'.repeat(129) }), '129 characters');
    t.match(errorsOf(RegisterSchema, { ...valid, password: 'x'.repeat(129) }), [
      { keyword: 'maxLength', path: '/password' },
    ]);
    t.notOk(Value.Check(RegisterSchema, { ...valid, password: 12345678 }), 'a number is not a password');
  });

  t.test('rejects unknown fields', async (t) => {
    t.notOk(Value.Check(RegisterSchema, { ...valid, role: 'admin' }), 'role cannot be chosen at registration');
    t.ok(errorsOf(RegisterSchema, { ...valid, role: 'admin' }).some((e) => e.keyword === 'additionalProperties'));
    t.notOk(Value.Check(RegisterSchema, { ...valid, passwordHash: '$argon2id$...' }), 'nor a password hash');
  });

  t.test('name must not be empty; every field is required', async (t) => {
    t.notOk(Value.Check(RegisterSchema, { ...valid, name: '' }), 'empty name');
    t.match(errorsOf(RegisterSchema, { ...valid, name: '' }), [{ keyword: 'minLength', path: '/name' }]);
    t.notOk(Value.Check(RegisterSchema, { ...valid, name: 'n'.repeat(101) }), 'name over 100 characters');
    t.ok(Value.Check(RegisterSchema, { ...valid, name: 'n' }), 'a one-letter name');
    for (const field of ['email', 'password', 'name'] as const) {
      const without = Object.fromEntries(Object.entries(valid).filter(([key]) => key !== field));
      t.notOk(Value.Check(RegisterSchema, without), `without ${field}`);
    }
  });
});

t.test('LoginSchema does not reveal the password policy but refuses empty and unknown fields', async (t) => {
  t.ok(Value.Check(LoginSchema, { email: 'ada@example.com', password: 'short' }), 'a short password may be tried');
  t.notOk(Value.Check(LoginSchema, { email: 'ada@example.com', password: '' }), 'empty password');
  t.notOk(Value.Check(LoginSchema, { email: '', password: 'whatever1' }), 'empty email');
  t.notOk(Value.Check(LoginSchema, { email: 'ada@example.com', password: 'whatever1', extra: 1 }), 'unknown field');
});

t.test('RefreshSchema requires exactly a refresh token', async (t) => {
  t.ok(Value.Check(RefreshSchema, { refreshToken: 'abc' }));
  t.notOk(Value.Check(RefreshSchema, {}));
  t.notOk(Value.Check(RefreshSchema, { refreshToken: '' }));
  t.notOk(Value.Check(RefreshSchema, { refreshToken: 'abc', other: 1 }));
});

t.test('PatchUserSchema', async (t) => {
  t.notOk(Value.Check(PatchUserSchema, {}), 'an empty patch is refused');
  t.match(errorsOf(PatchUserSchema, {}), [{ keyword: 'minProperties' }]);
  t.ok(Value.Check(PatchUserSchema, { name: 'New Name' }), 'name alone');
  t.ok(Value.Check(PatchUserSchema, { password: 'new-password' }), 'password alone');
  t.ok(Value.Check(PatchUserSchema, { role: 'admin' }), 'role admin');
  t.ok(Value.Check(PatchUserSchema, { role: 'user' }), 'role user');
  t.ok(Value.Check(PatchUserSchema, { name: 'N', password: 'new-password', role: 'user' }), 'all three');
  t.notOk(Value.Check(PatchUserSchema, { role: 'root' }), 'unknown role');
  t.notOk(Value.Check(PatchUserSchema, { role: 'ADMIN' }), 'roles are case-sensitive');
  t.match(errorsOf(PatchUserSchema, { role: 'root' }), [{ path: '/role' }]);
  t.notOk(Value.Check(PatchUserSchema, { password: 'short' }), 'the password policy applies to a new password');
  t.notOk(Value.Check(PatchUserSchema, { name: '' }), 'empty name');
  t.notOk(Value.Check(PatchUserSchema, { email: 'new@example.com' }), 'email cannot be patched');
  t.notOk(Value.Check(PatchUserSchema, { version: 2 }), 'nor the version');
});

t.test('UserListQuerySchema', async (t) => {
  const page = { limit: 20, offset: 0 };
  t.ok(Value.Check(UserListQuerySchema, page), 'limit and offset');

  t.test('sort is limited to the whitelist, ascending or descending', async (t) => {
    t.same([...userSortFields].sort(), ['createdAt', 'email', 'name']);
    for (const field of userSortFields) {
      t.ok(Value.Check(UserListQuerySchema, { ...page, sort: field }), field);
      t.ok(Value.Check(UserListQuerySchema, { ...page, sort: `-${field}` }), `-${field}`);
    }
    for (const sort of ['passwordHash', '-passwordHash', 'role', 'id', '--email', '+email', 'email,name', 'Email', '']) {
      t.notOk(Value.Check(UserListQuerySchema, { ...page, sort }), `'${sort}' is refused`);
    }
  });

  t.test('limit 1..100 and offset >= 0, integers', async (t) => {
    t.ok(Value.Check(UserListQuerySchema, { limit: 1, offset: 0 }));
    t.ok(Value.Check(UserListQuerySchema, { limit: 100, offset: 1000 }));
    t.notOk(Value.Check(UserListQuerySchema, { limit: 0, offset: 0 }), 'limit 0');
    t.notOk(Value.Check(UserListQuerySchema, { limit: 101, offset: 0 }), 'limit 101');
    t.notOk(Value.Check(UserListQuerySchema, { limit: 20, offset: -1 }), 'offset -1');
    t.notOk(Value.Check(UserListQuerySchema, { limit: 2.5, offset: 0 }), 'fractional limit');
  });

  t.test('limit and offset default to 20 and 0', async (t) => {
    t.same(Value.Default(UserListQuerySchema, {}), { limit: 20, offset: 0 });
  });

  t.test('q is 1..100 characters; unknown query fields are refused', async (t) => {
    t.ok(Value.Check(UserListQuerySchema, { ...page, q: 'ada' }));
    t.notOk(Value.Check(UserListQuerySchema, { ...page, q: '' }), 'empty q');
    t.notOk(Value.Check(UserListQuerySchema, { ...page, q: 'q'.repeat(101) }), 'q over 100 characters');
    t.notOk(Value.Check(UserListQuerySchema, { ...page, role: 'admin' }), 'unknown field');
  });
});

t.test('UserSchema never carries the password hash', async (t) => {
  const properties = Object.keys(UserSchema.properties);
  t.notOk(properties.includes('passwordHash'), 'no passwordHash');
  t.notOk(properties.some((p) => /password/i.test(p)), 'nor any password field');
  t.same(properties.sort(), ['createdAt', 'email', 'id', 'name', 'role', 'updatedAt', 'version']);
  t.notOk(properties.includes('deletedAt'), 'soft deletion is internal');

  const user = {
    id: '7f1c8c3e-4a51-4d6e-9b8a-2f4e6d8c0a11',
    email: 'ada@example.com',
    name: 'Ada',
    role: 'user',
    version: 1,
    createdAt: '2024-01-01T00:00:00.000Z',
    updatedAt: '2024-01-01T00:00:00.000Z',
  };
  t.ok(Value.Check(UserSchema, user), 'a user DTO is valid');
  t.notOk(Value.Check(UserSchema, { ...user, role: 'root' }), 'with an unknown role it is not');
  t.notOk(Value.Check(UserSchema, { ...user, id: 'not-a-uuid' }), 'nor with a malformed id');
  t.ok(Value.Check(UserPageSchema, { items: [user], total: 1, limit: 20, offset: 0 }), 'a page of users');
  t.notOk(Value.Check(UserPageSchema, { items: [user], total: -1, limit: 20, offset: 0 }), 'total is never negative');
});

t.test('TokenPairSchema is a Bearer pair', async (t) => {
  t.ok(Value.Check(TokenPairSchema, { accessToken: 'a', refreshToken: 'r', tokenType: 'Bearer', expiresIn: 900 }));
  t.notOk(Value.Check(TokenPairSchema, { accessToken: 'a', refreshToken: 'r', tokenType: 'Basic', expiresIn: 900 }));
});
