import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

/**
 * Runs an operational command of app/ the way a deployment does: its own process, configured only by the
 * environment given here (plus PATH/HOME), never the test runner's. From the sources through tsx (as the main.ts
 * test does) rather than from dist/: test files running in parallel, or anyone's `npm start`, rebuild dist/ while
 * another process reads it, and a build needs all of app/ to compile. Same code, same relative paths
 * (app/core and dist/core are both two levels below the project, so the migrations folder resolves alike).
 */

export const root = fileURLToPath(new URL('../..', import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: Record<string, string>;
  /** The process is killed after this long and the run fails with what it printed. */
  timeoutMs?: number;
}

/** Spawns a command line; resolves when it exits (whatever its code), rejects when it had to be killed. */
export async function run(command: string, args: string[], options: RunOptions = {}): Promise<CliResult> {
  const child = spawn(command, args, {
    cwd: root,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  let killed = false;
  const timeoutMs = options.timeoutMs ?? 60_000;
  const killer = setTimeout(() => {
    killed = true;
    child.kill('SIGKILL');
  }, timeoutMs);
  const [code] = (await once(child, 'close')) as [number | null];
  clearTimeout(killer);
  if (killed) {
    throw new Error(`${args.join(' ')} did not finish within ${timeoutMs} ms\nstdout:\n${stdout}\nstderr:\n${stderr}`);
  }
  return { code, stdout, stderr };
}

/** `app/<name>.ts` with `args`: what `npm run <script>` runs (from dist/ there). */
export function runCli(name: 'seed' | 'migrate' | 'dlq-replay', args: string[] = [], options: RunOptions = {}) {
  return run(process.execPath, ['--import', 'tsx', `app/${name}.ts`, ...args], options);
}
