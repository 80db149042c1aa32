import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import postgres from 'postgres';
import t from 'tap';
import { POSTGRES_URL } from '../helpers/infra.js';

/**
 * scripts/patch-postgres.mjs (postinstall) fixes postgres.js 3.4.9's connection-loss faults (tested by
 * tests/faults/postgres.test.ts), its pool queue, whose array grew by one slot per query while every
 * connection was busy, and the dropped promise of a new connection's array-type fetch. This file checks the
 * queue (installed, still a FIFO with removal, bounded under the overload pattern) and the fetch.
 */

interface Queue<T> {
  readonly length: number;
  push(x: T): T;
  shift(): T | undefined;
  remove(x: T): T | null;
}
type QueueFactory = <T>(initial?: T[]) => Queue<T>;

const packageDir = join(process.cwd(), 'node_modules', 'postgres');
const esm = (await import(pathToFileURL(join(packageDir, 'src', 'queue.js')).href) as { default: QueueFactory }).default;
const cjs = createRequire(import.meta.url)(join(packageDir, 'cjs', 'src', 'queue.js')) as QueueFactory;

t.test('the install patched every build of postgres.js (ESM, CommonJS, Cloudflare)', async (t) => {
  for (const dir of ['src', 'cjs/src', 'cf/src']) {
    t.match(readFileSync(join(packageDir, dir, 'queue.js'), 'utf8'), '/* plinth: patched queue */', `${dir}/queue.js`);
    const connection = readFileSync(join(packageDir, dir, 'connection.js'), 'utf8');
    t.match(connection, '/* plinth: patched on connection loss */', `${dir}/connection.js: connection loss`);
    t.match(connection, '/* plinth: patched fetch_types rejection */', `${dir}/connection.js: fetch_types`);
  }
});

for (const [name, Queue] of [['ESM', esm], ['CommonJS', cjs]] as const) {
  t.test(`${name}: push, shift and remove in any order behave like an array`, async (t) => {
    // A seeded generator, so a failure repeats.
    let seed = 42;
    const random = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
    const queue = Queue<number>();
    const model: number[] = [];
    let next = 0;
    let mismatches = 0;
    for (let step = 0; step < 20_000; step++) {
      const roll = random();
      if (roll < 0.45) {
        queue.push(next);
        model.push(next);
        next += 1;
      } else if (roll < 0.8) {
        if (model.length === 0) continue;
        if (queue.shift() !== model.shift()) mismatches += 1;
      } else {
        // Remove something present (or, one time in four, something absent).
        const target = random() < 0.25 || model.length === 0 ? -1 : (model[Math.floor(random() * model.length)] as number);
        const at = model.indexOf(target);
        const expected = at === -1 ? null : (model.splice(at, 1), target);
        if (queue.remove(target) !== expected) mismatches += 1;
      }
      if (queue.length !== model.length) mismatches += 1;
    }
    t.equal(mismatches, 0);
    const drained: number[] = [];
    while (queue.length) drained.push(queue.shift() as number);
    t.same(drained, model, 'what is left comes out in order');
  });

  t.test(`${name}: rotating busy connections (shift, remove, push) keeps the queue's array bounded`, async (t) => {
    // The pool's pipelining path: go(busy.shift(), query) then move(c, busy) = busy.remove(c) + busy.push(c).
    const queue = Queue<{ id: number }>();
    const connections = Array.from({ length: 10 }, (_, id) => ({ id }));
    for (const connection of connections) queue.push(connection);
    const indexOf = Array.prototype.indexOf;
    let longest = 0;
    Array.prototype.indexOf = function (this: unknown[], ...args: Parameters<typeof indexOf>) {
      longest = Math.max(longest, this.length);
      return indexOf.apply(this, args);
    };
    try {
      for (let i = 0; i < 100_000; i++) {
        const connection = queue.shift() as { id: number };
        queue.remove(connection);
        queue.push(connection);
      }
    } finally {
      Array.prototype.indexOf = indexOf;
    }
    t.equal(queue.length, 10);
    // Unpatched, the array held one slot per rotation (100,009 here) and every remove() scanned it all.
    t.ok(longest <= 2_100, `the longest array remove() searched held ${longest} slots`);
    t.same(Array.from({ length: 10 }, () => (queue.shift() as { id: number }).id), connections.map((c) => c.id), 'still in order');
  });
}

t.test('a failing array-type fetch on a new connection is not an unhandled rejection (which ends the process)', async (t) => {
  // A 1 ms statement_timeout from the startup packet on cancels the fetch_types catalog query of each new
  // connection (unpatched: one unhandledRejection per connection; tap would also fail the file on it).
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => void unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  t.teardown(() => void process.off('unhandledRejection', onUnhandled));
  let failed = 0;
  for (let i = 0; i < 5; i++) {
    const sql = postgres(POSTGRES_URL, { max: 1, onnotice: () => {}, connection: { statement_timeout: 1 } });
    await sql`select pg_sleep(0.01)`.catch(() => void (failed += 1));
    await sql.end({ timeout: 1 });
  }
  t.equal(failed, 5, 'the query itself fails, as the timeout says');
  await new Promise((resolve) => setImmediate(resolve));
  t.same(unhandled, [], 'and nothing else');
});
