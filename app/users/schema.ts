import Type, { type Static } from 'typebox';
import { ListQuerySchema, PageSchema, SortSchema, TimestampSchema, UuidSchema } from '../schemas/common.js';
import { roles } from './model.js';

export const EmailSchema = Type.String({ format: 'email', minLength: 3, maxLength: 254 });
export const PasswordSchema = Type.String({ minLength: 8, maxLength: 128, description: '8 to 128 characters' });
export const NameSchema = Type.String({ minLength: 1, maxLength: 100 });
export const RoleSchema = Type.Enum(roles);

export const UserSchema = Type.Object(
  {
    id: UuidSchema,
    email: Type.String(),
    name: Type.String(),
    role: RoleSchema,
    version: Type.Integer(),
    createdAt: TimestampSchema,
    updatedAt: TimestampSchema,
  },
  { description: 'A user; never includes the password hash' },
);
export type User = Static<typeof UserSchema>;

export const RegisterSchema = Type.Object(
  { email: EmailSchema, password: PasswordSchema, name: NameSchema },
  { additionalProperties: false },
);
export type Register = Static<typeof RegisterSchema>;

export const LoginSchema = Type.Object(
  // No length rules beyond sanity: a login must not reveal the password policy.
  { email: Type.String({ minLength: 1, maxLength: 254 }), password: Type.String({ minLength: 1, maxLength: 128 }) },
  { additionalProperties: false },
);
export type Login = Static<typeof LoginSchema>;

export const RefreshSchema = Type.Object(
  { refreshToken: Type.String({ minLength: 1, maxLength: 256 }) },
  { additionalProperties: false },
);

export const TokenPairSchema = Type.Object({
  accessToken: Type.String(),
  refreshToken: Type.String(),
  tokenType: Type.Literal('Bearer'),
  expiresIn: Type.Integer({ description: 'access token lifetime in seconds' }),
});
export type TokenPair = Static<typeof TokenPairSchema>;

export const PatchUserSchema = Type.Object(
  { name: Type.Optional(NameSchema), password: Type.Optional(PasswordSchema), role: Type.Optional(RoleSchema) },
  { additionalProperties: false, minProperties: 1 },
);
export type PatchUser = Static<typeof PatchUserSchema>;

export const userSortFields = ['email', 'name', 'createdAt'] as const;
export const UserListQuerySchema = ListQuerySchema({
  q: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'matches email or name' })),
  sort: Type.Optional(SortSchema(userSortFields)),
});
export type UserListQuery = Static<typeof UserListQuerySchema>;

export const UserPageSchema = PageSchema(UserSchema);
