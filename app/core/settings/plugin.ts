import fastifyEnv from '@fastify/env';
import addFormats from 'ajv-formats';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { type Settings, SettingsSchema } from './index.js';

declare module 'fastify' {
  interface FastifyInstance {
    settings: Settings;
  }
}

/**
 * Decorates `app.settings` with the settings loaded by `loadSettings` (the only reader of the
 * environment). @fastify/env re-checks them against the same schema, which also guards settings
 * objects built by hand in tests.
 */
export default fp(
  async (app: FastifyInstance, opts: { settings: Settings }) => {
    await app.register(fastifyEnv, {
      confKey: 'settings',
      schema: structuredClone(SettingsSchema),
      data: { ...opts.settings },
      env: false,
      ajv: { customOptions: (ajv: never) => addFormats.default(ajv) },
    });
  },
  { name: 'settings', fastify: '5.x' },
);
