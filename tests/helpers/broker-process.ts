import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { Test } from 'tap';

/**
 * An embedded Kafka broker (librdkafka's mock cluster, `npm run kafka:embedded`) in a process of its own, so a test
 * can take it away from the app and give it back: freeze() stops the process (SIGSTOP: connections stay open and
 * nothing answers, like a hung or partitioned broker), thaw() lets it run on with every topic, message and group it
 * had. Killed when `t` ends.
 */
export interface BrokerProcess {
  bootstrap: string;
  freeze(): void;
  thaw(): void;
}

const script = fileURLToPath(new URL('../../scripts/kafka-embedded.ts', import.meta.url));

export async function startBrokerProcess(t: Test): Promise<BrokerProcess> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', script], {
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: fileURLToPath(new URL('../..', import.meta.url)),
  });
  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  });
  let output = '';
  const bootstrap = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`embedded broker did not start within 30 s: ${output}`)), 30_000);
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const match = /bootstrap: (\S+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1] as string);
      }
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`embedded broker exited at start (${signal ?? code}): ${output}`));
    });
  });
  return {
    bootstrap,
    freeze: () => child.kill('SIGSTOP'),
    thaw: () => child.kill('SIGCONT'),
  };
}
