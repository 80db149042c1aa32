import closeWithGrace from 'close-with-grace';
import Fastify from 'fastify';
import app, { serverOptions } from './app.js';
import { loadSettings, SettingsError } from './core/settings/index.js';

/**
 * Consumer-worker entry point: the same core plugins and entities as the API, the consumers of
 * app/consumers, no HTTP routes and no listening socket. SIGTERM/SIGINT: in-flight messages finish,
 * offsets are committed, the groups are left, then the process exits.
 */
async function worker() {
  let settings: ReturnType<typeof loadSettings>;
  try {
    settings = loadSettings();
  } catch (error) {
    if (error instanceof SettingsError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(78);
    }
    throw error;
  }
  const instance = Fastify(serverOptions(settings));
  closeWithGrace({ delay: settings.SHUTDOWN_GRACE_MS }, async ({ signal, err }) => {
    if (err) instance.log.error({ err }, 'worker stopping after an unexpected error');
    else instance.log.info({ signal }, 'worker stopping: finishing in-flight messages');
    await instance.close();
  });
  try {
    await instance.register(app, { settings, role: 'worker' });
    await instance.ready();
  } catch (error) {
    instance.log.fatal({ err: error }, `worker start-up failed: ${(error as Error).message}`);
    await instance.close().catch(() => {});
    process.exit(1);
  }
  instance.log.info('worker ready');
}

await worker();
