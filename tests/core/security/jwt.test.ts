import { createHmac, generateKeyPairSync } from 'node:crypto';
import t from 'tap';
import { build } from '../../helpers/app.js';
import { createUser } from '../../helpers/users.js';

const b64url = (value: string | Buffer) => Buffer.from(value).toString('base64url');

t.test('RS256: tokens are signed with the private key and verified with the public key', async (t) => {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  const app = await build(t, {
    env: {
      JWT_ALGORITHM: 'RS256',
      // As a deployment passes PEM through one environment variable: escaped newlines.
      JWT_PRIVATE_KEY: privateKey.replace(/\n/g, '\\n'),
      JWT_PUBLIC_KEY: publicKey.replace(/\n/g, '\\n'),
    },
  });
  const user = await createUser(app);
  const [header, payload] = user.accessToken.split('.') as [string, string];
  t.equal(JSON.parse(Buffer.from(header, 'base64url').toString()).alg, 'RS256');

  const me = await app.inject({ method: 'GET', url: '/v1/users/me', headers: user.auth });
  t.equal(me.statusCode, 200, 'an RS256 token is accepted');

  // Algorithm confusion: an HS256 token whose HMAC key is the (public) RSA key must be refused.
  const forgedHeader = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const signature = createHmac('sha256', publicKey).update(`${forgedHeader}.${payload}`).digest('base64url');
  const forged = await app.inject({
    method: 'GET',
    url: '/v1/users/me',
    headers: { authorization: `Bearer ${forgedHeader}.${payload}.${signature}` },
  });
  t.equal(forged.statusCode, 401, 'an HS256 token made with the public key is refused');
  t.equal(forged.json().code, 'UNAUTHORIZED');
});

t.test('a token from another issuer is refused', async (t) => {
  const app = await build(t);
  const user = await createUser(app);
  const claims = JSON.parse(Buffer.from(user.accessToken.split('.')[1] as string, 'base64url').toString());
  const foreign = app.jwt.sign({ sub: claims.sub, sid: claims.sid, role: claims.role }, { iss: 'someone-else' });
  const response = await app.inject({ method: 'GET', url: '/v1/users/me', headers: { authorization: `Bearer ${foreign}` } });
  t.equal(response.statusCode, 401);
});
