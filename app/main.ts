import closeWithGrace from 'close-with-grace';
import Fastify from 'fastify';
import app, { serverOptions } from './app.js';
import { loadSettings, SettingsError } from './core/settings/index.js';

/** HTTP entry point: settings -> app -> listen -> graceful close on SIGTERM/SIGINT. */
async function main() {
  const started = performance.now();
  let settings: ReturnType<typeof loadSettings>;
  try {
    settings = loadSettings();
  } catch (error) {
    if (error instanceof SettingsError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw error;
  }

  const server = Fastify(serverOptions(settings));
  closeWithGrace({ delay: settings.SHUTDOWN_GRACE_MS }, async ({ signal, err }) => {
    if (err) server.log.error({ err }, 'shutting down after an unexpected error');
    else server.log.info({ signal }, 'shutting down: finishing in-flight requests');
    await server.close();
  });

  try {
    await server.register(app, { settings });
    await server.listen({ host: settings.HOST, port: settings.PORT });
  } catch (error) {
    server.log.fatal({ err: error }, `start-up failed: ${(error as Error).message}`);
    await server.close().catch(() => {});
    process.exit(1);
  }
  server.log.info({ ms: Math.round(performance.now() - started) }, 'ready');
}

await main();
