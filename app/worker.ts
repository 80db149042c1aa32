import Fastify from 'fastify';
import app, { closeOnSignals, serverOptions } from './app.js';
import { loadSettingsOrExit } from './core/settings/index.js';

/**
 * Consumer-worker entry point: the same core plugins and entities as the API, the consumers of
 * app/consumers, and no API routes: it listens on WORKER_PORT only for /health/live, /health/ready and
 * /metrics (probes and scrapes). SIGTERM/SIGINT: in-flight messages finish, offsets are committed, the
 * groups are left, then the process exits.
 */
async function worker() {
  const settings = loadSettingsOrExit();
  const instance = Fastify(serverOptions(settings));
  closeOnSignals(instance, settings, 'worker');
  try {
    await instance.register(app, { settings, role: 'worker' });
    await instance.listen({ host: settings.HOST, port: settings.WORKER_PORT });
  } catch (error) {
    instance.log.fatal({ err: error }, `worker start-up failed: ${(error as Error).message}`);
    await instance.close().catch(() => {});
    process.exit(1);
  }
  instance.log.info('worker ready');
}

await worker();
