import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { JWT } from '@fastify/jwt';
import { and, eq, isNull } from 'drizzle-orm';
import { type Role, users } from '../../users/model.js';
import {
  InvalidCredentialsError,
  InvalidTokenError,
  TokenExpiredError,
  TokenReusedError,
  TokenRevokedError,
} from '../base/errors.js';
import type { Db, Executor } from '../database.js';
import { refreshTokens, sessions } from './model.js';
import type { Revocations } from './revocation.js';

/** Claims of an access token. */
export interface AccessClaims {
  sub: string;
  sid: string;
  role: Role;
}

export interface TokenPair {
  accessToken: string;
  refreshToken: string;
  tokenType: 'Bearer';
  expiresIn: number;
}

export interface SessionsOptions {
  db: Db;
  jwt: JWT;
  revocations: Revocations;
  accessTtlS: number;
  refreshTtlS: number;
}

const sha256 = (value: string) => createHash('sha256').update(value).digest();
const TOKEN_SHAPE = /^([0-9a-f-]{36})\.([A-Za-z0-9_-]{43})$/;

/**
 * Sessions and their tokens. A login starts a session (a refresh-token family); refreshing spends
 * the presented refresh token and issues the next one; presenting a spent one revokes the family.
 * Revoking a session kills its refresh tokens (database) and its access tokens (revocation registry).
 */
export function createSessions({ db, jwt, revocations, accessTtlS, refreshTtlS }: SessionsOptions) {
  async function issue(tx: Executor, sid: string, user: { id: string; role: Role }): Promise<TokenPair> {
    const secret = randomBytes(32).toString('base64url');
    const [row] = await tx
      .insert(refreshTokens)
      .values({
        sessionId: sid,
        secretHash: sha256(secret).toString('hex'),
        expiresAt: new Date(Date.now() + refreshTtlS * 1000),
      })
      .returning({ id: refreshTokens.id });
    const claims: AccessClaims = { sub: user.id, sid, role: user.role };
    return {
      accessToken: jwt.sign(claims, { jti: randomUUID() }),
      refreshToken: `${row?.id}.${secret}`,
      tokenType: 'Bearer',
      expiresIn: accessTtlS,
    };
  }

  async function revokeWhere(tx: Executor, where: ReturnType<typeof eq>, reason: string): Promise<string[]> {
    const rows = await tx
      .update(sessions)
      .set({ revokedAt: new Date(), revokedReason: reason })
      .where(and(where, isNull(sessions.revokedAt)))
      .returning({ id: sessions.id });
    return rows.map((r) => r.id);
  }

  return {
    /**
     * Starts a session for a user whose credentials were checked. The user row is share-locked and
     * must still be live: a deletion running at the same moment either waits for this session (and
     * then revokes it) or has committed first (and then no session starts).
     */
    start(user: { id: string; role: Role }): Promise<TokenPair> {
      return db.transaction(async (tx) => {
        const [live] = await tx
          .select({ id: users.id })
          .from(users)
          .where(and(eq(users.id, user.id), isNull(users.deletedAt)))
          .for('share');
        if (!live) throw new InvalidCredentialsError();
        const [session] = await tx.insert(sessions).values({ userId: user.id }).returning({ id: sessions.id });
        return issue(tx, (session as { id: string }).id, user);
      });
    },

    /**
     * Rotates a refresh token. `loadUser` returns the live user (undefined if deleted), so a
     * refreshed access token carries the current role.
     */
    async refresh(token: string, loadUser: (id: string, tx: Executor) => Promise<{ id: string; role: Role } | undefined>) {
      const match = TOKEN_SHAPE.exec(token);
      if (!match) throw new InvalidTokenError('Malformed refresh token');
      const [, id, secret] = match as unknown as [string, string, string];

      let reused: string | undefined;
      const pair = await db.transaction(async (tx) => {
        const [row] = await tx
          .select({ token: refreshTokens, session: sessions })
          .from(refreshTokens)
          .innerJoin(sessions, eq(sessions.id, refreshTokens.sessionId))
          .where(eq(refreshTokens.id, id))
          .for('update', { of: refreshTokens });
        if (!row || !timingSafeEqual(Buffer.from(row.token.secretHash, 'hex'), sha256(secret))) {
          throw new InvalidTokenError('Unknown refresh token');
        }
        if (row.session.revokedAt) throw new TokenRevokedError();
        if (row.token.usedAt) {
          // Someone presents a token that was already exchanged: one of the two holders is a thief.
          await revokeWhere(tx, eq(sessions.id, row.session.id), 'refresh-token-reuse');
          reused = row.session.id;
          return undefined;
        }
        if (row.token.expiresAt.getTime() <= Date.now()) throw new TokenExpiredError();
        const user = await loadUser(row.session.userId, tx);
        if (!user) {
          await revokeWhere(tx, eq(sessions.id, row.session.id), 'user-deleted');
          throw new TokenRevokedError();
        }
        await tx.update(refreshTokens).set({ usedAt: new Date() }).where(eq(refreshTokens.id, id));
        return issue(tx, row.session.id, user);
      });
      if (reused) {
        await revocations.announce([reused]);
        throw new TokenReusedError();
      }
      return pair as TokenPair;
    },

    /** Revokes one session: its refresh tokens and its access tokens stop working everywhere. */
    async revoke(sid: string, reason: string, tx: Executor = db): Promise<void> {
      const ids = await revokeWhere(tx, eq(sessions.id, sid), reason);
      await revocations.announce(ids.length ? ids : [sid]);
    },

    /** Revokes every session of a user (deletion, role change). Safe to call inside a transaction:
     *  the in-memory revocation takes effect at once, which errs on the safe side if it rolls back. */
    async revokeUser(userId: string, reason: string, tx: Executor = db): Promise<void> {
      await revocations.announce(await revokeWhere(tx, eq(sessions.userId, userId), reason));
    },

    /** The session a refresh token belongs to, when the token is well-formed and genuine. */
    async sessionOf(token: string): Promise<{ sid: string; userId: string } | undefined> {
      const match = TOKEN_SHAPE.exec(token);
      if (!match) return undefined;
      const [, id, secret] = match as unknown as [string, string, string];
      const [row] = await db
        .select({ sid: sessions.id, userId: sessions.userId, secretHash: refreshTokens.secretHash })
        .from(refreshTokens)
        .innerJoin(sessions, eq(sessions.id, refreshTokens.sessionId))
        .where(eq(refreshTokens.id, id));
      if (!row || !timingSafeEqual(Buffer.from(row.secretHash, 'hex'), sha256(secret))) return undefined;
      return { sid: row.sid, userId: row.userId };
    },
  };
}

export type Sessions = ReturnType<typeof createSessions>;
