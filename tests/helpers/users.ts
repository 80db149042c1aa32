import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';

/** Test users made through the public API, the way a client makes them. */

export const PASSWORD = 'correct-horse-battery';

export const uniqueEmail = (tag = 'user') => `${tag}-${randomBytes(4).toString('hex')}@example.com`;

export interface TestUser {
  id: string;
  email: string;
  accessToken: string;
  refreshToken: string;
  auth: { authorization: string };
}

export async function registerUser(app: FastifyInstance, tag = 'user', name = 'Test User') {
  const email = uniqueEmail(tag);
  const response = await app.inject({ method: 'POST', url: '/v1/auth/register', payload: { email, password: PASSWORD, name } });
  if (response.statusCode !== 201) throw new Error(`register failed: ${response.statusCode} ${response.body}`);
  return { ...(response.json() as { id: string }), email };
}

export async function login(app: FastifyInstance, email: string, password = PASSWORD) {
  const response = await app.inject({ method: 'POST', url: '/v1/auth/login', payload: { email, password } });
  if (response.statusCode !== 200) throw new Error(`login failed: ${response.statusCode} ${response.body}`);
  return response.json() as { accessToken: string; refreshToken: string };
}

/** A registered and logged-in user. */
export async function createUser(app: FastifyInstance, tag = 'user'): Promise<TestUser> {
  const { id, email } = await registerUser(app, tag);
  const tokens = await login(app, email);
  return { id, email, ...tokens, auth: { authorization: `Bearer ${tokens.accessToken}` } };
}

/** A logged-in admin: registered through the API, then promoted by the service (as the seed does). */
export async function createAdmin(app: FastifyInstance): Promise<TestUser> {
  const { email } = await registerUser(app, 'admin', 'Admin');
  await app.users.ensureAdmin(email, PASSWORD);
  const user = await createUserSession(app, email);
  return user;
}

async function createUserSession(app: FastifyInstance, email: string): Promise<TestUser> {
  const tokens = await login(app, email);
  const me = await app.inject({ method: 'GET', url: '/v1/users/me', headers: { authorization: `Bearer ${tokens.accessToken}` } });
  const { id } = me.json() as { id: string };
  return { id, email, ...tokens, auth: { authorization: `Bearer ${tokens.accessToken}` } };
}
