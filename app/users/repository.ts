import { eq, ilike, or, sql } from 'drizzle-orm';
import { BaseRepository } from '../core/base/repository.js';
import { likePattern } from '../core/base/service.js';
import type { Db, Executor } from '../core/database.js';
import { users } from './model.js';
import type { UserListQuery } from './schema.js';

export class UsersRepository extends BaseRepository<typeof users> {
  constructor(db: Db) {
    super(db, users, { email: users.email, name: users.name, createdAt: users.createdAt }, 'user');
  }

  async findByEmail(email: string, tx: Executor = this.db) {
    const rows = await tx
      .select()
      .from(users)
      .where(this.live(eq(sql`lower(${users.email})`, email.toLowerCase())))
      .limit(1);
    return rows[0];
  }

  search(query: UserListQuery, tx: Executor = this.db) {
    const pattern = query.q ? likePattern(query.q) : undefined;
    return this.list(
      {
        limit: query.limit,
        offset: query.offset,
        sort: query.sort,
        where: pattern ? or(ilike(users.email, pattern), ilike(users.name, pattern)) : undefined,
      },
      tx,
    );
  }
}
