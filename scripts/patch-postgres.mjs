// postinstall: fixes two faults of postgres.js 3.4.9.
// A. On connection loss (porsager/postgres#1154, #1208; fixes proposed upstream in PRs #1168 and #1209, not released).
// Found by tests/faults/postgres.test.ts (pg_terminate_backend under load):
// 1. A write scheduled for a connection whose socket has closed runs nextWrite() on a null socket: an uncatchable
//    TypeError from a setImmediate, which takes the whole process down.
// 2. closed() and terminate() cancel a pending write without forgetting it, so that connection slot never sends again:
//    every later connect attempt on it times out (CONNECT_TIMEOUT) until the process restarts.
// B. Under sustained overload (every connection busy), the pool pipelines onto busy connections: busy.shift() leaves
//    a hole in its Queue's array and move() then calls busy.remove() for the shifted connection, an indexOf over every
//    hole. The array only resets when a shift empties it, which never happens while overloaded, so it grows by one
//    slot per query: memory grows and each query pays a longer scan (the bare postgres.js bench baseline fell from
//    ~2,500 to ~1,300 req/s within three minutes, `remove` 33% of its CPU). Patched: remove() searches from the head
//    only, a queue emptied by remove() resets, and shift() compacts once holes are the larger half.
//    Found by `npm run bench -- --soak --mix list --rate 0`; checked by tests/scripts/patch-postgres.test.ts.
// C. A new connection first fetches the array types (fetch_types); ReadyForQuery drops that promise, so when the
//    catalog query fails (the backend terminated during a failover, a statement_timeout) its rejection is unhandled
//    and Node ends the process (porsager/postgres#1192, #1205, #1223; open). Found by tests/faults/postgres.test.ts
//    (pg_terminate_backend landing on a starting connection), checked by tests/scripts/patch-postgres.test.ts.
//    Patched: the rejection is caught; the connection's own error and close handling stays as it is.
// Idempotent; fails loudly when the file is not the expected version (then check whether upstream fixed it).
import console from 'node:console';
import { readFile, writeFile } from 'node:fs/promises';
import process from 'node:process';
import { URL } from 'node:url';

const root = process.argv[2] ? new URL(`file://${process.argv[2].replace(/\/?$/, '/')}`) : new URL('../node_modules/postgres/', import.meta.url);
const CONNECTION_MARK = '/* plinth: patched on connection loss */';
const connectionEdits = [
  [
    'function nextWrite(fn) {\n    const x = socket.write(chunk, fn)',
    `function nextWrite(fn) {\n    ${CONNECTION_MARK}\n    if (!socket) {\n      nextWriteTimer !== null && clearImmediate(nextWriteTimer)\n      chunk = nextWriteTimer = null\n      error(Errors.connection('CONNECTION_CLOSED', options))\n      return true\n    }\n    const x = socket.write(chunk, fn)`,
  ],
  [
    '    clearImmediate(nextWriteTimer)\n    if (socket) {',
    '    clearImmediate(nextWriteTimer)\n    chunk = nextWriteTimer = null\n    if (socket) {',
  ],
  [
    '    clearImmediate(nextWriteTimer)\n    socket.removeListener(\'data\', data)',
    '    clearImmediate(nextWriteTimer)\n    chunk = nextWriteTimer = null\n    socket.removeListener(\'data\', data)',
  ],
];

const QUEUE_MARK = '/* plinth: patched queue */';
const queueEdits = [
  [
    '    remove: (x) => {\n      const index = xs.indexOf(x)\n      return index === -1\n        ? null\n        : (xs.splice(index, 1), x)\n    },',
    `    remove: (x) => {\n      ${QUEUE_MARK}\n      const at = xs.indexOf(x, index)\n      if (at === -1)\n        return null\n      xs.splice(at, 1)\n      if (index === xs.length) {\n        index = 0\n        xs = []\n      }\n      return x\n    },`,
  ],
  [
    '      } else {\n        xs[index - 1] = undefined\n      }',
    '      } else {\n        xs[index - 1] = undefined\n        if (index >= 1024 && index * 2 >= xs.length) {\n          xs = xs.slice(index)\n          index = 0\n        }\n      }',
  ],
];

const STARTUP_MARK = '/* plinth: patched fetch_types rejection */';
const startupEdits = [
  [
    '        return fetchArrayTypes()\n',
    `        ${STARTUP_MARK}\n        return fetchArrayTypes().catch(() => { /* the failed query's connection handles the error */ })\n`,
  ],
];

const { version } = JSON.parse(await readFile(new URL('package.json', root), 'utf8'));
const patches = [
  [['src/connection.js', 'cjs/src/connection.js', 'cf/src/connection.js'], CONNECTION_MARK, connectionEdits],
  [['src/queue.js', 'cjs/src/queue.js', 'cf/src/queue.js'], QUEUE_MARK, queueEdits],
  [['src/connection.js', 'cjs/src/connection.js', 'cf/src/connection.js'], STARTUP_MARK, startupEdits],
];
for (const [files, mark, changes] of patches) {
  for (const file of files) {
    const url = new URL(file, root);
    let text = await readFile(url, 'utf8');
    if (text.includes(mark)) continue;
    for (const [from, to] of changes) {
      if (text.split(from).length !== 2) {
        console.error(`patch-postgres: postgres ${version} ${file} does not look like 3.4.9; check whether the fix is released and drop this script`);
        process.exit(1);
      }
      text = text.replace(from, to);
    }
    await writeFile(url, text);
  }
}
