import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';
import type { Test } from 'tap';
import { freePort } from './net.js';
import { waitFor } from './wait.js';

/** A private redis-server of one test, to kill and bring back at will (never the machine's shared Redis). */
export interface RedisServer {
  url: string;
  port: number;
  /** Kills the server (SIGKILL) and waits until it is gone; a no-op when it is not running. */
  stop(): Promise<void>;
  /** Starts a server again on the same port and waits until it answers PING. */
  restart(): Promise<void>;
}

/** One PING over a raw socket: true when a Redis server answers +PONG on `port`. */
export function pings(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let answer = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      answer += chunk.toString();
      if (answer.includes('\r\n')) done(answer.startsWith('+PONG'));
    });
  });
}

/**
 * A redis-server of this test's own on a free port (no persistence), ready (it answers PING, bounded wait)
 * when the promise resolves, and killed when `t` ends.
 */
export async function startRedisServer(t: Test): Promise<RedisServer> {
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;

  async function start() {
    const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      stdio: 'ignore',
    });
    child = proc;
    let failed: Error | undefined;
    proc.once('error', (error) => {
      failed ??= error;
    });
    proc.once('exit', (code, signal) => {
      failed ??= new Error(`redis-server on port ${port} exited at start (${signal ?? code})`);
    });
    await waitFor(
      async () => {
        if (failed) throw failed;
        return pings(port);
      },
      10_000,
      `redis-server on port ${port} to answer PING`,
    );
  }

  async function stop() {
    const proc = child;
    child = undefined;
    if (!proc || proc.pid === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = once(proc, 'exit');
    proc.kill('SIGKILL');
    await exited;
  }

  async function restart() {
    await stop();
    await start();
  }

  t.teardown(stop);
  await start();
  return { url, port, stop, restart };
}
