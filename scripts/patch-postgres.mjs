// postinstall: fixes postgres.js 3.4.9 on connection loss (porsager/postgres#1154, #1208; fixes proposed upstream in
// PRs #1168 and #1209, not released). Found by tests/faults/postgres.test.ts (pg_terminate_backend under load):
// 1. A write scheduled for a connection whose socket has closed runs nextWrite() on a null socket: an uncatchable
//    TypeError from a setImmediate, which takes the whole process down.
// 2. closed() and terminate() cancel a pending write without forgetting it, so that connection slot never sends again:
//    every later connect attempt on it times out (CONNECT_TIMEOUT) until the process restarts.
// Idempotent; fails loudly when the file is not the expected version (then check whether upstream fixed it).
import console from 'node:console';
import { readFile, writeFile } from 'node:fs/promises';
import process from 'node:process';
import { URL } from 'node:url';

const root = process.argv[2] ? new URL(`file://${process.argv[2].replace(/\/?$/, '/')}`) : new URL('../node_modules/postgres/', import.meta.url);
const MARK = '/* plinth: patched on connection loss */';
const edits = [
  [
    'function nextWrite(fn) {\n    const x = socket.write(chunk, fn)',
    `function nextWrite(fn) {\n    ${MARK}\n    if (!socket) {\n      nextWriteTimer !== null && clearImmediate(nextWriteTimer)\n      chunk = nextWriteTimer = null\n      error(Errors.connection('CONNECTION_CLOSED', options))\n      return true\n    }\n    const x = socket.write(chunk, fn)`,
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

const { version } = JSON.parse(await readFile(new URL('package.json', root), 'utf8'));
for (const file of ['src/connection.js', 'cjs/src/connection.js', 'cf/src/connection.js']) {
  const url = new URL(file, root);
  let text = await readFile(url, 'utf8');
  if (text.includes(MARK)) continue;
  for (const [from, to] of edits) {
    if (text.split(from).length !== 2) {
      console.error(`patch-postgres: postgres ${version} ${file} does not look like 3.4.9; check whether the fix is released and drop this script`);
      process.exit(1);
    }
    text = text.replace(from, to);
  }
  await writeFile(url, text);
}
