import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { request } from 'node:http';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { REDIS_URL, testDatabaseUrl, testRedisPrefix } from '../helpers/infra.js';
import { freePort } from '../helpers/net.js';

/** The HTTP entry point run the way a deployment runs it: its own process, configured only by its environment. */

const root = fileURLToPath(new URL('../..', import.meta.url));
const SECRET = 'a-production-secret-of-at-least-32-characters';

interface Main {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the exit code (or signal) and how long the process ran. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>;
  /** Resolves with the first pino log line whose msg matches. */
  logLine: (msg: RegExp) => Promise<Record<string, unknown>>;
}

/** Spawns app/main.ts with exactly `env` (plus PATH/HOME), never the test runner's environment. */
function startMain(t: Test, env: Record<string, string>, timeoutMs = 60_000): Main {
  const started = Date.now();
  const child = spawn(process.execPath, ['--import', 'tsx', 'app/main.ts'], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const killer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const exited = once(child, 'exit').then(([code, signal]) => {
    clearTimeout(killer);
    return { code: code as number | null, signal: signal as NodeJS.Signals | null, ms: Date.now() - started };
  });
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });

  const logLine = (msg: RegExp) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const look = () => {
        for (const line of stdout.split('\n')) {
          if (!line.startsWith('{')) continue;
          try {
            const entry = JSON.parse(line) as Record<string, unknown>;
            if (typeof entry.msg === 'string' && msg.test(entry.msg)) return entry;
          } catch {
            // a partial line: wait for the rest
          }
        }
        return undefined;
      };
      const onData = () => {
        const entry = look();
        if (entry) {
          cleanup();
          resolve(entry);
        }
      };
      const onExit = () => {
        cleanup();
        const entry = look();
        if (entry) resolve(entry);
        else reject(new Error(`exited before logging ${msg}\nstdout:\n${stdout}\nstderr:\n${stderr}`));
      };
      const cleanup = () => {
        child.stdout?.off('data', onData);
        child.off('exit', onExit);
      };
      child.stdout?.on('data', onData);
      child.on('exit', onExit);
      onData();
    });

  return { child, stdout: () => stdout, stderr: () => stderr, exited, logLine };
}

/**
 * One HTTP request. With `between`, the body goes in two halves: the first once the server has
 * answered 100 Continue (it holds the request), the second when `between()` resolves.
 */
function send(
  url: string,
  options: { method?: string; json?: string; parts?: number; between?: () => Promise<void> } = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const payload = options.json ?? '';
    const req = request(
      url,
      {
        method: options.method ?? 'GET',
        headers: {
          ...(options.json === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }),
          // With a pause in the body: 100 Continue tells us the server has received the request.
          ...(options.between ? { expect: '100-continue' } : {}),
        },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    const between = options.between;
    if (between && payload.length > 1) {
      req.on('continue', () => {
        const half = Math.floor(payload.length / 2);
        req.write(payload.slice(0, half));
        between().then(
          () => req.end(payload.slice(half)),
          (error: Error) => req.destroy(error),
        );
      });
      req.flushHeaders();
    } else {
      req.end(payload);
    }
  });
}

t.test('APP_ENV=production with missing settings stops with EX_CONFIG and names them', async (t) => {
  const main = startMain(t, { APP_ENV: 'production' });
  const { code } = await main.exited;
  t.equal(code, 78, 'exit code 78 (EX_CONFIG)');
  for (const name of ['DATABASE_URL', 'REDIS_URL', 'KAFKA_BROKERS', 'JWT_SECRET']) {
    t.match(main.stderr(), name, `stderr names ${name}`);
  }
  t.notMatch(main.stdout(), /"msg":"ready"/, 'never became ready');
});

t.test('PORT=abc stops start-up and names PORT', async (t) => {
  const main = startMain(t, { APP_ENV: 'test', PORT: 'abc' });
  const { code } = await main.exited;
  t.not(code, 0, 'non-zero exit');
  t.equal(code, 78);
  t.match(main.stderr(), /PORT/);
  t.match(main.stderr(), /integer/);
});

t.test('a secret is not echoed on a settings error', async (t) => {
  const short = 'too-short-secret-value';
  const main = startMain(t, { APP_ENV: 'test', JWT_SECRET: short });
  const { code } = await main.exited;
  t.equal(code, 78);
  t.match(main.stderr(), /JWT_SECRET/);
  t.notMatch(main.stderr() + main.stdout(), short);
});

t.test('APP_ENV=production with an unreachable database fails fast and says so', async (t) => {
  const dbPort = await freePort();
  const password = 'pg-pass-should-stay-hidden';
  const main = startMain(t, {
    APP_ENV: 'production',
    DATABASE_URL: `postgres://plinth:${password}@127.0.0.1:${dbPort}/plinth`,
    REDIS_URL,
    REDIS_PREFIX: testRedisPrefix(),
    KAFKA_BROKERS: '127.0.0.1:9092',
    JWT_SECRET: SECRET,
    PORT: '0',
    HOST: '127.0.0.1',
  });
  const { code, ms } = await main.exited;
  t.not(code, 0, 'non-zero exit');
  t.not(code, null, 'exits by itself, not killed by the test timeout');
  const output = main.stdout() + main.stderr();
  t.match(output, 'PostgreSQL is unreachable');
  t.match(output, `127.0.0.1:${dbPort}`, 'names where it tried');
  t.notMatch(output, password, 'the database password is not logged');
  t.notMatch(main.stdout(), /"msg":"ready"/);
  t.ok(ms < 20_000, `exited after ${ms} ms`);
});

t.test('a local start serves, then shuts down cleanly on SIGTERM', async (t) => {
  const main = startMain(t, {
    APP_ENV: 'test',
    PORT: '0',
    LOG_LEVEL: 'info',
    DATABASE_URL: await testDatabaseUrl(),
    REDIS_URL,
    REDIS_PREFIX: testRedisPrefix(),
  });
  const ready = await main.logLine(/^ready$/);
  t.equal(ready.service, 'plinth', 'pino JSON with the service name');
  t.equal(ready.env, 'test');
  t.type(ready.ms, 'number', 'start-up time is logged');

  const listening = await main.logLine(/listening at/);
  const url = /(http:\/\/[^\s"]+)/.exec(String(listening.msg))?.[1];
  t.ok(url, `listening on ${url}`);
  const base = url as string;

  const live = await send(`${base}/health/live`);
  t.equal(live.status, 200);
  t.same(JSON.parse(live.body), { status: 'ok' });
  const readyCheck = await send(`${base}/health/ready`);
  t.equal(readyCheck.status, 200, 'real PostgreSQL and Redis answer');

  let terminated = false;
  t.test('an in-flight request finishes during a graceful shutdown', async (t) => {
    const email = `graceful-${process.pid}-${Date.now()}@example.com`;
    const shuttingDown = main.logLine(/^shutting down/);
    const inFlight = send(`${base}/v1/auth/register`, {
      method: 'POST',
      json: JSON.stringify({ email, password: 'correct-horse-battery', name: 'Graceful' }),
      // Half the body is sent, then SIGTERM; the rest follows once the server says it is shutting down.
      between: async () => {
        terminated = main.child.kill('SIGTERM');
        const line = await shuttingDown;
        t.equal(line.signal, 'SIGTERM', 'logs the signal');
      },
    });
    const answer = await inFlight;
    t.equal(answer.status, 201, 'the request that was in flight completes');
    t.equal(JSON.parse(answer.body).email, email);
  });

  t.test('the process exits 0 after SIGTERM', async (t) => {
    // One SIGTERM only: close-with-grace treats a second one as "exit now" (code 1).
    if (!terminated) main.child.kill('SIGTERM');
    const { code, signal } = await main.exited;
    t.equal(signal, null, 'not killed');
    t.equal(code, 0, 'exit code 0', { stdout: main.stdout().slice(-3000), stderr: main.stderr().slice(-3000) });
    t.notMatch(main.stdout(), /"level":(50|60)/, 'no error or fatal log line');
    await t.rejects(send(`${base}/health/live`), 'nothing listens any more');
  });
});
