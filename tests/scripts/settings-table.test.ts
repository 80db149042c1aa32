import { readFileSync } from 'node:fs';
import t from 'tap';
import { SettingsSchema } from '../../app/core/settings/schema.js';
import { END, readmePath, renderSettingsTable, START, updatedReadme } from '../../scripts/settings-table.js';

const readme = readFileSync(readmePath, 'utf8');

t.test('the README settings table is the one generated from the settings schema', async (t) => {
  t.equal(updatedReadme(readme), readme, 'README.md is out of date: run `npm run docs:settings`');
});

t.test('the table has one row per setting, each with a description', async (t) => {
  const rows = renderSettingsTable().split('\n').filter((line) => line.startsWith('| `'));
  const names = Object.keys(SettingsSchema.properties);
  t.same(rows.map((row) => /^\| `([A-Z0-9_]+)`/.exec(row)?.[1]), names);
  for (const row of rows) {
    const description = row.split(' | ').at(-1)?.replace(/ \|$/, '').trim();
    t.ok(description, `${row.slice(0, 40)}... has a description in the schema`);
  }
});

t.test('secrets are never printed and required settings are marked', async (t) => {
  const table = renderSettingsTable();
  t.notMatch(table, /plinth-local-development-secret/, 'the development JWT secret is not in the README');
  for (const name of ['DATABASE_URL', 'REDIS_URL', 'KAFKA_BROKERS', 'JWT_SECRET']) {
    t.match(table.split('\n').find((row) => row.startsWith(`| \`${name}\``)), /\*\*required\*\* in staging\/production/);
  }
});

t.test('a README without the markers is refused with a clear message', async (t) => {
  t.throws(() => updatedReadme('# no table here'), /no settings table markers/);
  t.ok(readme.includes(START) && readme.includes(END));
});
