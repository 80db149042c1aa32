import Fastify from 'fastify';
import app, { closeOnSignals, serverOptions } from './app.js';
import { loadSettingsOrExit } from './core/settings/index.js';

/** HTTP entry point: settings -> app -> listen -> graceful close on SIGTERM/SIGINT. */
async function main() {
  const started = performance.now();
  const settings = loadSettingsOrExit();
  const server = Fastify(serverOptions(settings));
  closeOnSignals(server, settings, 'server');
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
