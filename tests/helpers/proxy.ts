import { once } from 'node:events';
import { createServer, connect, type Socket } from 'node:net';
import type { Test } from 'tap';

/**
 * A TCP proxy of one test between the app and a dependency, to break the dependency without touching it:
 * - `pass`: connections are forwarded to the target;
 * - `hang`: the dependency looks alive but never answers: connections are accepted, whatever they send is read
 *   and dropped, nothing comes back; connections open when the mode changes stop forwarding too;
 * - `down`: every connection is reset at once (like a dead host that refuses).
 * Leaving `hang` or `down` ends the connections opened meanwhile, so clients reconnect through the proxy.
 */
export type ProxyMode = 'pass' | 'hang' | 'down';

export interface Proxy {
  port: number;
  mode(): ProxyMode;
  setMode(mode: ProxyMode): void;
  /** Connections accepted so far (each through the mode of its time). */
  accepted(): number;
}

export async function startProxy(t: Test, target: { host?: string; port: number }): Promise<Proxy> {
  let mode: ProxyMode = 'pass';
  let accepted = 0;
  const open = new Set<Socket>();
  const server = createServer((client) => {
    accepted += 1;
    open.add(client);
    client.on('close', () => open.delete(client));
    client.on('error', () => {});
    if (mode === 'down') {
      client.resetAndDestroy();
      return;
    }
    if (mode === 'hang') {
      client.on('data', () => {});
      return;
    }
    const upstream = connect({ host: target.host ?? '127.0.0.1', port: target.port });
    open.add(upstream);
    upstream.on('close', () => {
      open.delete(upstream);
      client.destroy();
    });
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    // Forwarding by hand (not pipe) so that hanging can cut it in both directions at once.
    client.on('data', (chunk) => {
      if (mode === 'pass') upstream.write(chunk);
    });
    upstream.on('data', (chunk) => {
      if (mode === 'pass') client.write(chunk);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  t.teardown(async () => {
    for (const socket of open) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return {
    port,
    mode: () => mode,
    setMode(next) {
      const previous = mode;
      mode = next;
      // Hung or refused connections carry a half-spoken protocol: end them so clients start afresh.
      if (next === 'down' || (previous !== 'pass' && next === 'pass')) {
        for (const socket of open) socket.destroy();
      }
    },
    accepted: () => accepted,
  };
}
