import Fastify, { type FastifyInstance } from 'fastify';
import type { Test } from 'tap';
import plinth, { serverOptions } from '../../app/app.js';
import { loadSettings, type Settings } from '../../app/core/settings/index.js';
import { REDIS_URL, testDatabaseUrl, testRedisPrefix } from './infra.js';

export interface BuildOptions {
  /** Environment variables on top of the test defaults. */
  env?: Record<string, string | undefined>;
  /** Use the embedded stand-ins (PGlite in memory, no Redis) instead of the real servers. */
  embedded?: boolean;
}

/** Settings of a test app: APP_ENV=test against this file's own database and Redis prefix. */
export async function testSettings(options: BuildOptions = {}): Promise<Settings> {
  const infra = options.embedded
    ? {}
    : { DATABASE_URL: await testDatabaseUrl(), REDIS_URL, REDIS_PREFIX: testRedisPrefix() };
  return loadSettings({ APP_ENV: 'test', ...infra, ...options.env });
}

/**
 * A ready app built exactly as main.ts builds it (same server options), closed after the test.
 * Tests talk to it with `app.inject()`; nothing listens on a port.
 */
export async function build(t: Test, options: BuildOptions = {}): Promise<FastifyInstance> {
  const settings = await testSettings(options);
  const app = Fastify(serverOptions(settings));
  t.teardown(() => app.close());
  await app.register(plinth, { settings });
  await app.ready();
  return app;
}
