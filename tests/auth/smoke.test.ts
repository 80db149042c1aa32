import t from 'tap';
import { build } from '../helpers/app.js';
import { createUser } from '../helpers/users.js';

t.test('register, login and /me on real PostgreSQL and Redis', async (t) => {
  const app = await build(t);
  const user = await createUser(app);
  const me = await app.inject({ method: 'GET', url: '/v1/users/me', headers: user.auth });
  t.equal(me.statusCode, 200);
  t.equal(me.json().email, user.email);
});
