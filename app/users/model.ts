import { sql } from 'drizzle-orm';
import { pgEnum, pgTable, text, uniqueIndex } from 'drizzle-orm/pg-core';
import { commonColumns } from '../core/base/columns.js';

export const roles = ['user', 'admin'] as const;
export type Role = (typeof roles)[number];
export const userRole = pgEnum('user_role', roles);

export const users = pgTable(
  'users',
  {
    ...commonColumns(),
    email: text('email').notNull(),
    name: text('name').notNull(),
    passwordHash: text('password_hash').notNull(),
    role: userRole('role').notNull().default('user'),
  },
  (t) => [
    // Case-insensitive uniqueness among live users: the database decides, so two concurrent
    // registrations cannot both win, and a deleted user's email can be registered again.
    uniqueIndex('users_email_live_key')
      .on(sql`lower(${t.email})`)
      .where(sql`${t.deletedAt} is null`),
  ],
);

export type UserRow = typeof users.$inferSelect;
export type NewUserRow = typeof users.$inferInsert;
