import t, { type Test } from 'tap';
import { isEmbeddedAllowed, loadSettings, SettingsError } from '../../app/core/settings/index.js';

/** Pure tests of loadSettings: base values, overridden by the APP_ENV layer, overridden by the environment. */

const SECRET = 'a-production-secret-of-at-least-32-characters';
const deployed = {
  DATABASE_URL: 'postgres://app:pw@db.internal:5432/plinth',
  REDIS_URL: 'redis://cache.internal:6379',
  KAFKA_BROKERS: 'kafka-1:9092,kafka-2:9092',
  JWT_SECRET: SECRET,
};

/** The SettingsError thrown by loadSettings(env); fails the test when nothing (or something else) is thrown. */
function settingsError(t: Test, env: Record<string, string>): SettingsError {
  try {
    loadSettings(env);
  } catch (error) {
    t.type(error, SettingsError, 'throws a SettingsError');
    return error as SettingsError;
  }
  t.fail(`loadSettings(${JSON.stringify(env)}) did not throw`);
  return new SettingsError([]);
}

t.test('local defaults (no APP_ENV)', async (t) => {
  const s = loadSettings({});
  t.equal(s.APP_ENV, 'local');
  t.equal(s.SERVICE_NAME, 'plinth');
  t.equal(s.HOST, '127.0.0.1', 'local layer overrides base HOST 0.0.0.0');
  t.equal(s.PORT, 3000);
  t.equal(s.LOG_LEVEL, 'info');
  t.equal(s.TRUST_PROXY, false);
  t.equal(s.BODY_LIMIT, 1_048_576);
  t.equal(s.CORS_ORIGINS, '*');
  t.equal(s.DOCS_ENABLED, true);
  t.equal(s.DB_MIGRATE_ON_START, true);
  t.equal(s.PGLITE_DATA_DIR, './data/pglite');
  t.equal(s.REDIS_PREFIX, 'plinth:');
  t.equal(s.JWT_ALGORITHM, 'HS256');
  t.ok(s.JWT_SECRET && s.JWT_SECRET.length >= 32, 'a development secret long enough for HS256');
  t.equal(s.DATABASE_URL, undefined, 'no DATABASE_URL: embedded PGlite');
  t.equal(s.REDIS_URL, undefined);
  t.equal(s.KAFKA_BROKERS, undefined);
  t.equal(s.RATE_LIMIT_MAX, 1000);
  t.ok(isEmbeddedAllowed(s), 'local may use embedded stand-ins');
});

t.test('test layer', async (t) => {
  const s = loadSettings({ APP_ENV: 'test' });
  t.equal(s.APP_ENV, 'test');
  t.equal(s.PORT, 0);
  t.equal(s.LOG_LEVEL, 'silent');
  t.equal(s.PGLITE_DATA_DIR, 'memory://');
  t.equal(s.RATE_LIMIT_MAX, 0, 'rate limit off in tests');
  t.equal(s.REVOCATION_SYNC_MS, 1000);
  t.equal(s.DB_MIGRATE_ON_START, true);
  t.equal(s.SERVICE_NAME, 'plinth', 'base values still apply');
  t.ok(isEmbeddedAllowed(s));
});

t.test('environment variables override the layers', async (t) => {
  const s = loadSettings({
    APP_ENV: 'test',
    PORT: '8080',
    LOG_LEVEL: 'debug',
    HOST: '0.0.0.0',
    CORS_ORIGINS: 'https://a.example',
    REDIS_PREFIX: 'other:',
  });
  t.equal(s.PORT, 8080);
  t.equal(s.LOG_LEVEL, 'debug');
  t.equal(s.HOST, '0.0.0.0');
  t.equal(s.CORS_ORIGINS, 'https://a.example');
  t.equal(s.REDIS_PREFIX, 'other:');
  t.equal(s.PGLITE_DATA_DIR, 'memory://', 'what is not overridden keeps the layer value');
});

t.test('unknown variables are ignored', async (t) => {
  const s = loadSettings({ APP_ENV: 'test', NOT_A_SETTING: 'x', PATH: '/usr/bin' });
  t.notOk('NOT_A_SETTING' in s);
  t.notOk('PATH' in s);
});

t.test('numbers and booleans are converted from strings', async (t) => {
  const s = loadSettings({
    PORT: '8080',
    BODY_LIMIT: '2048',
    RATE_LIMIT_MAX: '3',
    TRUST_PROXY: 'true',
    DOCS_ENABLED: 'false',
    DB_MIGRATE_ON_START: 'false',
  });
  t.equal(s.PORT, 8080);
  t.equal(typeof s.PORT, 'number');
  t.equal(s.BODY_LIMIT, 2048);
  t.equal(s.RATE_LIMIT_MAX, 3);
  t.equal(s.TRUST_PROXY, true);
  t.equal(s.DOCS_ENABLED, false);
  t.equal(s.DB_MIGRATE_ON_START, false);
});

t.test('bad values throw a SettingsError naming the variable and the rule', async (t) => {
  const cases: { env: Record<string, string>; name: string; rule: RegExp }[] = [
    { env: { PORT: 'abc' }, name: 'PORT', rule: /integer/ },
    { env: { PORT: '70000' }, name: 'PORT', rule: /65535/ },
    { env: { LOG_LEVEL: 'loud' }, name: 'LOG_LEVEL', rule: /must be one of .*info.*silent/ },
    { env: { APP_ENV: 'bogus' }, name: 'APP_ENV', rule: /must be one of local, test, staging, production/ },
    { env: { DATABASE_URL: 'mysql://x' }, name: 'DATABASE_URL', rule: /postgres/ },
    { env: { REDIS_URL: 'http://x' }, name: 'REDIS_URL', rule: /redis/ },
    { env: { TRUST_PROXY: 'maybe' }, name: 'TRUST_PROXY', rule: /boolean/ },
    { env: { JWT_SECRET: 'too-short-secret' }, name: 'JWT_SECRET', rule: /32/ },
    { env: { JWT_ALGORITHM: 'none' }, name: 'JWT_ALGORITHM', rule: /must be one of HS256, RS256, ES256/ },
  ];
  for (const { env, name, rule } of cases) {
    const error = settingsError(t, env);
    const line = error.problems.find((p) => p.startsWith(`${name}:`));
    t.ok(line, `${JSON.stringify(env)}: a problem names ${name}`);
    t.match(line ?? '', rule, `${JSON.stringify(env)}: the problem states the rule`);
    t.match(error.message, name, 'the message names the variable');
    t.match(error.message, rule, 'the message states the rule');
  }
});

t.test('a fractional integer setting is refused, not truncated', async (t) => {
  // PORT=1.5 must not silently become port 1.
  const error = settingsError(t, { PORT: '1.5' });
  t.match(error.message, /PORT/);
});

t.test('every problem is reported at once', async (t) => {
  const error = settingsError(t, { PORT: 'abc', LOG_LEVEL: 'loud' });
  t.match(error.message, /PORT/);
  t.match(error.message, /LOG_LEVEL/);
  t.ok(error.problems.length >= 2);
});

t.test('secrets are never echoed', async (t) => {
  const shortSecret = 'hunter2-secret-value';
  const error = settingsError(t, { JWT_SECRET: shortSecret });
  t.match(error.message, /JWT_SECRET/);
  t.notOk(error.message.includes(shortSecret), 'the JWT_SECRET value is not in the message');
  t.notOk(error.problems.some((p) => p.includes(shortSecret)));

  const seed = settingsError(t, { SEED_ADMIN_EMAIL: 'admin@example.com', SEED_ADMIN_PASSWORD: 'short' });
  t.match(seed.message, /SEED_ADMIN_PASSWORD/);
  t.notOk(seed.message.includes('\'short\''), 'the password value is not in the message');

  const prod = settingsError(t, { APP_ENV: 'production', ...deployed, JWT_SECRET: shortSecret, PORT: 'abc' });
  t.match(prod.message, /JWT_SECRET/);
  t.notOk(prod.message.includes(shortSecret));
});

for (const appEnv of ['production', 'staging'] as const) {
  t.test(`${appEnv} without infrastructure settings lists each as required`, async (t) => {
    const error = settingsError(t, { APP_ENV: appEnv });
    for (const name of ['DATABASE_URL', 'REDIS_URL', 'KAFKA_BROKERS', 'JWT_SECRET']) {
      const line = error.problems.find((p) => p.startsWith(`${name}:`));
      t.ok(line, `${name} is reported`);
      t.match(line ?? '', /required/, `${name} is reported as required`);
      t.match(error.message, name);
    }
  });

  t.test(`${appEnv} misses a single setting`, async (t) => {
    for (const name of Object.keys(deployed)) {
      const env: Record<string, string> = { APP_ENV: appEnv, ...deployed };
      delete env[name];
      const error = settingsError(t, env);
      t.equal(error.problems.length, 1, `only ${name} is reported`);
      t.match(error.problems[0] ?? '', new RegExp(`^${name}: .*required`));
    }
  });

  t.test(`${appEnv} with every setting present`, async (t) => {
    const s = loadSettings({ APP_ENV: appEnv, ...deployed });
    t.equal(s.APP_ENV, appEnv);
    t.equal(s.DATABASE_URL, deployed.DATABASE_URL);
    t.equal(s.REDIS_URL, deployed.REDIS_URL);
    t.equal(s.KAFKA_BROKERS, deployed.KAFKA_BROKERS);
    t.equal(s.JWT_SECRET, SECRET);
    t.equal(s.TRUST_PROXY, true);
    t.equal(s.HOST, '0.0.0.0');
    t.equal(s.DB_MIGRATE_ON_START, false);
    t.notOk(isEmbeddedAllowed(s), 'no embedded fallback');
  });
}

t.test('production hides the docs', async (t) => {
  t.equal(loadSettings({ APP_ENV: 'production', ...deployed }).DOCS_ENABLED, false);
  t.equal(loadSettings({ APP_ENV: 'staging', ...deployed }).DOCS_ENABLED, true);
});

t.test('RS256 requires both keys', async (t) => {
  const none = settingsError(t, { JWT_ALGORITHM: 'RS256' });
  t.match(none.message, /JWT_PRIVATE_KEY: is required for RS256/);
  t.match(none.message, /JWT_PUBLIC_KEY: is required for RS256/);

  const onlyPrivate = settingsError(t, { JWT_ALGORITHM: 'RS256', JWT_PRIVATE_KEY: 'private' });
  t.match(onlyPrivate.message, /JWT_PUBLIC_KEY/);
  t.notMatch(onlyPrivate.message, /JWT_PRIVATE_KEY/);

  const onlyPublic = settingsError(t, { JWT_ALGORITHM: 'RS256', JWT_PUBLIC_KEY: 'public' });
  t.match(onlyPublic.message, /JWT_PRIVATE_KEY/);
  t.notMatch(onlyPublic.message, /JWT_PUBLIC_KEY/);

  const s = loadSettings({
    JWT_ALGORITHM: 'RS256',
    JWT_PRIVATE_KEY: '-----BEGIN PRIVATE KEY-----\\nabc\\n-----END PRIVATE KEY-----',
    JWT_PUBLIC_KEY: '-----BEGIN PUBLIC KEY-----\\nxyz\\n-----END PUBLIC KEY-----',
  });
  t.equal(s.JWT_ALGORITHM, 'RS256');
  t.equal(s.JWT_PRIVATE_KEY, '-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----', 'escaped newlines restored');
  t.equal(s.JWT_PUBLIC_KEY, '-----BEGIN PUBLIC KEY-----\nxyz\n-----END PUBLIC KEY-----');

  const prod = loadSettings({
    APP_ENV: 'production',
    ...deployed,
    JWT_SECRET: '',
    JWT_ALGORITHM: 'RS256',
    JWT_PRIVATE_KEY: 'private',
    JWT_PUBLIC_KEY: 'public',
  });
  t.equal(prod.JWT_SECRET, undefined, 'no secret needed for RS256');
});

t.test('SEED_ADMIN_EMAIL and SEED_ADMIN_PASSWORD must be set together', async (t) => {
  const onlyEmail = settingsError(t, { SEED_ADMIN_EMAIL: 'admin@example.com' });
  t.match(onlyEmail.message, /SEED_ADMIN_EMAIL\/SEED_ADMIN_PASSWORD: set both or neither/);
  const onlyPassword = settingsError(t, { SEED_ADMIN_PASSWORD: 'correct-horse-battery' });
  t.match(onlyPassword.message, /SEED_ADMIN_EMAIL\/SEED_ADMIN_PASSWORD/);

  const s = loadSettings({ SEED_ADMIN_EMAIL: 'admin@example.com', SEED_ADMIN_PASSWORD: 'correct-horse-battery' });
  t.equal(s.SEED_ADMIN_EMAIL, 'admin@example.com');
  t.equal(s.SEED_ADMIN_PASSWORD, 'correct-horse-battery');
  const neither = loadSettings({});
  t.equal(neither.SEED_ADMIN_EMAIL, undefined);

  const badEmail = settingsError(t, { SEED_ADMIN_EMAIL: 'not-an-email', SEED_ADMIN_PASSWORD: 'correct-horse-battery' });
  t.match(badEmail.message, /SEED_ADMIN_EMAIL/);
});

t.test('an empty string counts as unset', async (t) => {
  const s = loadSettings({ PORT: '', LOG_LEVEL: '', DATABASE_URL: '', JWT_SECRET: '' });
  t.equal(s.PORT, 3000, 'empty PORT falls back to the default');
  t.equal(s.LOG_LEVEL, 'info');
  t.equal(s.DATABASE_URL, undefined);
  t.ok(s.JWT_SECRET && s.JWT_SECRET.length >= 32, 'empty JWT_SECRET keeps the local development secret');

  const error = settingsError(t, { APP_ENV: 'production', ...deployed, DATABASE_URL: '', JWT_SECRET: '' });
  t.match(error.message, /DATABASE_URL: is required/);
  t.match(error.message, /JWT_SECRET: is required/, 'an empty secret cannot be smuggled in');

  t.equal(loadSettings({ APP_ENV: '' }).APP_ENV, 'local', 'empty APP_ENV means local');
  const seed = settingsError(t, { SEED_ADMIN_EMAIL: 'admin@example.com', SEED_ADMIN_PASSWORD: '' });
  t.match(seed.message, /set both or neither/);
});

t.test('the result is frozen', async (t) => {
  const s = loadSettings({ APP_ENV: 'test' });
  t.ok(Object.isFrozen(s));
  t.throws(() => {
    (s as { PORT: number }).PORT = 1;
  }, TypeError);
  t.equal(s.PORT, 0);
});

t.test('the environment object is not modified', async (t) => {
  const env = { APP_ENV: 'test', PORT: '8080' };
  loadSettings(env);
  t.same(env, { APP_ENV: 'test', PORT: '8080' });
});
