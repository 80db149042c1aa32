import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import t, { type Test } from 'tap';
import ts from 'typescript';
import { LIST_MARKER, IMPORT_MARKER, projectProblems, registerEntity, reservedProblems } from '../../scripts/gen-entity/checks.js';
import { FIELD_TYPES, FieldError, parseFields } from '../../scripts/gen-entity/fields.js';
import { main, USAGE } from '../../scripts/gen-entity/index.js';
import { entityNames, MAX_NAME, NameError, pluralize, singularize } from '../../scripts/gen-entity/names.js';
import { clashes, renderAll } from '../../scripts/gen-entity/render.js';
import { POSTGRES_URL, templateName } from '../helpers/infra.js';

/**
 * The entity generator: names, fields and rendering as units; then, in a temporary copy of the project,
 * generated entities pass the type check, the lint and their own tests, and refusals write nothing.
 */

// The end-to-end part runs the type check, the lint and twelve test files: more than tap's default 120 s on a busy machine.
t.setTimeout(600_000);

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Runs main() in-process and collects what it prints. */
function run(argv: string[], root = ROOT) {
  const out: string[] = [];
  const err: string[] = [];
  const code = main(argv, { root, out: (s) => out.push(s), err: (s) => err.push(s) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

t.test('names: every form from any spelling', async (t) => {
  const orderLine = {
    singular: { words: ['order', 'line'], kebab: 'order-line', camel: 'orderLine', pascal: 'OrderLine', snake: 'order_line', label: 'order line' },
    plural: { words: ['order', 'lines'], kebab: 'order-lines', camel: 'orderLines', pascal: 'OrderLines', snake: 'order_lines', label: 'order lines' },
  };
  for (const given of ['order-line', 'orderLine', 'OrderLine', 'order_line', 'ORDER_LINE']) {
    t.same(entityNames(given), { folder: 'order-line', ...orderLine }, given);
  }
  for (const given of ['order-lines', 'orderLines', 'order_lines']) {
    t.same(entityNames(given), { folder: 'order-lines', ...orderLine }, `${given}: the folder keeps the given number`);
  }
  t.match(entityNames('reviews'), { folder: 'reviews', singular: { pascal: 'Review' }, plural: { snake: 'reviews', camel: 'reviews' } });
  t.match(entityNames('person'), { singular: { pascal: 'Person' }, plural: { kebab: 'people', camel: 'people' } });
  t.match(entityNames('line-item2'), { singular: { camel: 'lineItem2' }, plural: { snake: 'line_item2s' } });
  t.match(entityNames('HTTPRequest'), { folder: 'http-request', plural: { snake: 'http_requests' } });
});

t.test('pluralize and singularize', async (t) => {
  const pairs = [
    ['review', 'reviews'], ['line', 'lines'], ['category', 'categories'], ['city', 'cities'], ['day', 'days'],
    ['key', 'keys'], ['box', 'boxes'], ['match', 'matches'], ['dish', 'dishes'], ['buzz', 'buzzes'], ['bus', 'buses'],
    ['status', 'statuses'], ['address', 'addresses'], ['case', 'cases'], ['purchase', 'purchases'], ['photo', 'photos'],
    ['hero', 'heroes'], ['movie', 'movies'], ['menu', 'menus'], ['person', 'people'], ['child', 'children'],
    ['analysis', 'analyses'], ['quiz', 'quizzes'], ['leaf', 'leaves'], ['index', 'indices'], ['virus', 'viruses'],
    ['fee', 'fees'], ['shoe', 'shoes'], ['invoice', 'invoices'],
  ];
  for (const [one, many] of pairs) {
    t.equal(pluralize(one as string), many, `${one} → ${many}`);
    t.equal(singularize(many as string), one, `${many} → ${one}`);
    t.equal(singularize(one as string), one, `${one} is already singular`);
  }
  t.equal(pluralize('news'), 'news', 'an uncountable word keeps its form');
  // Known limit: -as plurals read as -ase words (canvases → canvase); the usage text says to give the singular.
  t.equal(pluralize('canvas'), 'canvases');
});

t.test('names that are refused', async (t) => {
  const invalid: [string, RegExp][] = [
    ['', /empty/],
    ['2fast', /starting with a letter/],
    ['order line', /letters and digits/],
    ['order--line', /letters and digits/],
    ['-order', /letters and digits/],
    ['order-', /letters and digits/],
    ['order.line', /letters and digits/],
    ['émile', /letters and digits/],
    ['orderLine-item', /one style/],
    ['order-2nd', /start with a letter/],
    ['news', /no distinct singular and plural; use e.g. 'news-item'/],
    ['sheep', /no distinct singular/],
    [`a${'b'.repeat(MAX_NAME)}`, new RegExp(`longer than ${MAX_NAME}`)],
  ];
  for (const [name, message] of invalid) {
    t.throws(() => entityNames(name), { constructor: NameError, message }, JSON.stringify(name));
  }

  const reserved: [string, RegExp][] = [
    ['class', /reserved word in JavaScript/],
    ['static', /reserved word in JavaScript/],
    ['group', /reserved word in SQL \('group'\)/],
    ['select', /reserved word in SQL/],
    ['order', /reserved word in SQL/],
    ['user', /reserved word in SQL/],
    ['health', /the project itself uses/],
    ['feature-flags', /the project itself uses/],
    ['core', /the project itself uses/],
    ['date', /shadow the built-in Date/],
    ['promise', /shadow the built-in Promise/],
    ['page', /clash with 'Page'/],
    ['test', /the project itself uses/],
  ];
  for (const [name, message] of reserved) {
    t.match(reservedProblems(entityNames(name)).join('\n'), message, name);
  }
  t.same(clashes(entityNames('page')), ['Page'], 'the endpoint test imports Page and names the entity type bare');
  for (const name of ['review', 'order-line', 'value', 'tag', 'invoice-item']) t.same(reservedProblems(entityNames(name)), [], `${name} is fine`);
});

t.test('what exists in the project is refused', async (t) => {
  const problems = (name: string) => {
    const names = entityNames(name);
    return projectProblems(ROOT, names, Object.keys(renderAll(names, parseFields('name:string')))).join('\n');
  };
  const products = problems('products');
  t.match(products, /app\/products already exists/);
  t.match(products, /tests\/products already exists/);
  t.match(products, /app\/endpoints\/v1\/products\.ts already exists/);
  t.match(products, /the route \/v1\/products exists already/);
  t.match(products, /a table or type named products exists already/);
  t.match(products, /app\.products is taken/);
  t.match(problems('product'), /a table or type named products exists already/, 'the singular names the same table');
  t.match(problems('order-item'), /a table or type named order_items exists already/, 'a table without an entity folder');
  t.match(problems('session'), /table or type named sessions/);
  t.match(problems('address'), /app\.addresses is taken/, 'Fastify instances have addresses()');
  t.match(problems('flag'), /app\.flags is taken/, 'a core decorator');
  t.equal(problems('gadget'), '', 'a new name is free');
});

t.test('fields', async (t) => {
  t.same(parseFields('name:string'), [{ name: 'name', column: 'name', type: 'string', optional: false }]);
  t.same(parseFields(' title : string(80) , dueAt:timestamp? ,meta:json?'), [
    { name: 'title', column: 'title', type: 'string', optional: false, maxLength: 80 },
    { name: 'dueAt', column: 'due_at', type: 'timestamp', optional: true },
    { name: 'meta', column: 'meta', type: 'json', optional: true },
  ]);
  t.same(parseFields('priceCents:int,httpUrl2:text').map((f) => f.column), ['price_cents', 'http_url2']);
  for (const type of Object.keys(FIELD_TYPES)) t.match(parseFields(`a:${type}?`), [{ type, optional: true }], type);

  const refused: [string, RegExp][] = [
    ['', /--fields is empty/],
    ['title:strng', /field 'title': unknown type 'strng'; the types are string, text, int, bigint, number, boolean, timestamp, uuid, json/],
    ['title:toString', /unknown type 'toString'/],
    ['qty:integer', /unknown type 'integer' \(did you mean 'int'\?\)/],
    ['at:DateTime', /unknown type 'DateTime' \(did you mean 'timestamp'\?\)/],
    ['title:String', /unknown type 'String' \(did you mean 'string'\?\)/],
    ['Title:string', /field 'Title': names are camelCase/],
    ['due_at:timestamp', /did you mean 'dueAt'/],
    ['id:uuid', /already has id, createdAt/],
    ['createdAt:timestamp', /already has id, createdAt/],
    ['version:int', /already has/],
    ['constructor:int', /every JavaScript object already has/],
    ['a:int,a:text', /field 'a' is given twice/],
    ['fooBar:int,foo_bar:int', /did you mean 'fooBar'/],
    ['title', /write <name>:<type>/],
    ['a:int(5)', /only string takes a length/],
    ['a:string(0)', /1 <= n/],
    ['a:int,,b:int', /an empty entry/],
    ['a:int,', /an empty entry/],
    [`${'a'.repeat(41)}:int`, /longer than 40/],
  ];
  for (const [spec, message] of refused) {
    t.throws(() => parseFields(spec), { constructor: FieldError, message }, JSON.stringify(spec));
  }
  t.throws(() => parseFields('A:int,b:nope,c:text'), { message: /field 'A'[\s\S]*field 'b'/ }, 'every problem at once');
});

t.test('rendering: valid TypeScript, no placeholder left, lines within the lint width', async (t) => {
  const everyType = Object.keys(FIELD_TYPES).flatMap((type) => [`${type}Field:${type}`, `optional${type}Field:${type}?`]).join(',');
  const longest = `${'ab'.repeat(5)}-${'cd'.repeat(5)}-${'e'.repeat(MAX_NAME - 23)}`;
  const longFields = Object.keys(FIELD_TYPES).map((type, i) => `${String.fromCharCode(97 + i).repeat(40 - type.length - 1)}${type}Z:${type}?`);
  for (const [name, spec] of [['order-line', everyType], [longest, longFields.join(',')], ['person', 'name:string(1)']] as const) {
    const names = entityNames(name);
    t.equal(names.plural.kebab.length <= MAX_NAME, true, `${name} is a valid length`);
    const files = renderAll(names, parseFields(spec));
    t.equal(Object.keys(files).length, 14, `${name}: 14 files`);
    for (const [path, text] of Object.entries(files)) {
      t.notMatch(text, /__[A-Za-z_]+__/, `${path}: no placeholder left`);
      const options = { reportDiagnostics: true, compilerOptions: { module: ts.ModuleKind.NodeNext } };
      const { diagnostics = [] } = ts.transpileModule(text, options);
      t.same(diagnostics.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n')), [], `${path}: parses`);
      // The lint's max-len (130) ignores lines with strings, template literals or comments; these must fit.
      const long = text.split('\n').filter((line) => line.length > 130 && !/['`]|\/\/|\/\*|^\s*\*/.test(line));
      t.same(long, [], `${path}: no code line over 130 characters`);
    }
  }
  const files = renderAll(entityNames('order-line'), parseFields('title:string'));
  t.match(files['app/order-line/model.ts'], 'export const orderLines = pgTable(\'order_lines\', {');
  t.match(files['app/endpoints/v1/order-lines.ts'], 'export const autoPrefix = \'/order-lines\';');
  t.match(files['app/order-line/index.ts'], 'app.decorate(\'orderLines\', createOrderLinesService({ repository, validator }));');
  t.match(files['app/order-line/schema.ts'], 'export type OrderLine = Static<typeof OrderLineSchema>;');
  t.match(files['app/endpoints/v1/order-lines.ts'], 'summary: \'Create an order line (admin)\'');
});

t.test('registerEntity inserts above the markers', async (t) => {
  const before = `import a from './a/index.js';\n${IMPORT_MARKER}\n\nexport const entities = [\n  a,\n  ${LIST_MARKER}\n];\n`;
  t.equal(
    registerEntity(before, entityNames('order-line')),
    `import a from './a/index.js';\nimport orderLines from './order-line/index.js';\n${IMPORT_MARKER}\n\n`
    + `export const entities = [\n  a,\n  orderLines,\n  ${LIST_MARKER}\n];\n`,
  );
});

t.test('command line', async (t) => {
  const help = run(['--help']);
  t.equal(help.code, 0);
  t.equal(help.out, USAGE);
  t.match(USAGE, 'npm run gen:entity -- <name> [--fields');
  t.match(USAGE, '<folder> is the name as given, in kebab case');
  for (const argv of [[], ['a', 'b'], ['--bogus', 'a'], ['a', '--fields']]) {
    const result = run(argv);
    t.equal(result.code, 2, `${JSON.stringify(argv)}: usage error`);
    t.match(result.err, 'Usage: npm run gen:entity');
  }
  const dry = run(['gadget', '--fields', 'label:string,weight:number?', '--dry-run']);
  t.equal(dry.code, 0, dry.err);
  t.match(dry.out, 'gadget / gadgets: folder app/gadget/, table gadgets, route /v1/gadgets, type Gadget, decorator app.gadgets');
  t.match(dry.out, 'fields: label string, weight number?');
  t.match(dry.out, 'would create tests/endpoints/gadgets.test.ts');
  t.match(dry.out, 'would register it in app/entities.ts and add the migration drizzle/NNNN_gadgets.sql');
  const refused = run(['products']);
  t.equal(refused.code, 1);
  t.match(refused.err, /^gen:entity: cannot create the entity 'products':\n/);
  t.match(refused.err, /\n {2}'products' is a name the project itself uses\n {2}app\/products already exists\n/, 'one problem a line');
  t.match(refused.err, /\nNothing was written\.$/);
});

/** Environment for commands in the copy: without this tap process's own settings (loader, coverage, ids). */
const childEnv = Object.fromEntries(
  Object.entries(process.env).filter(([key]) => !/^(TAP|_TAPJS|NODE_OPTIONS$|NODE_V8_COVERAGE$|TS_NODE|TSIMP)/.test(key)),
);

interface Finished {
  code: number | null;
  output: string;
  ms: number;
}

/** Runs a command in `cwd`; resolves when it exits (never rejects), with its combined output. */
function exec(cwd: string, command: string, args: string[]): Promise<Finished> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    child.on('error', (error) => resolve({ code: -1, output: `${output}\n${error.message}`, ms: Date.now() - started }));
    child.on('close', (code) => resolve({ code, output, ms: Date.now() - started }));
  });
}

/** Asserts that a command exited 0; shows its failures and output end when it did not. */
function exitedZero(t: Test, f: Finished, what: string) {
  if (f.code === 0) t.pass(`${what} exits 0 (${f.ms} ms)`);
  else t.fail(`${what} exited ${f.code}:\n${tail(f)}`);
}

/** For an assertion message: the failures a command reported (tap's `not ok` lines) and the end of its output. */
function tail(f: Finished): string {
  const lines = f.output.split('\n');
  const failures = lines.flatMap((line, i) => (/^\s*not ok /.test(line) ? lines.slice(i, i + 12) : [])).slice(0, 120);
  return [...failures, '...', ...lines.slice(-40)].join('\n');
}

/** A hash of every file under `dir` (path and content), skipping what tools create on their own. */
function treeHash(dir: string): string {
  const hash = createHash('sha256');
  const walk = (rel: string) => {
    for (const entry of readdirSync(join(dir, rel), { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const path = rel ? `${rel}/${entry.name}` : entry.name;
      if (['node_modules', '.tap', 'data'].includes(path)) continue;
      hash.update(`${path}\0`);
      if (entry.isDirectory()) walk(path);
      else hash.update(readFileSync(join(dir, path)));
    }
  };
  walk('');
  return hash.digest('hex');
}

/**
 * The first of `candidates` the project does not have yet: a project that already generated `reviews` (as the
 * README's example does) still runs this test, with the next name.
 */
function freeEntity(candidates: string[]) {
  const name = candidates.find((candidate) => {
    const names = entityNames(candidate);
    return projectProblems(ROOT, names, Object.keys(renderAll(names, parseFields('title:string')))).length === 0;
  });
  if (!name) throw new Error(`every one of ${candidates.join(', ')} exists in the project already`);
  return { name, ...entityNames(name) };
}

t.test('end to end in a copy of the project', async (t) => {
  // The README's example, and a two-word name with every field type.
  const a = freeEntity(['reviews', 'ratings', 'remarks', 'testimonials', 'gen-check-reviews']);
  const b = freeEntity(['order-line', 'shipment-line', 'invoice-line', 'basket-line', 'gen-check-line']);
  const copy = mkdtempSync(join(tmpdir(), 'plinth-gen-'));
  t.teardown(() => rmSync(copy, { recursive: true, force: true }));
  // What the generated code and its checks need; tests/ only its helpers, so unrelated tests do not slow this down.
  for (const path of ['app', 'drizzle', 'scripts/gen-entity', 'tests/helpers', 'package.json', 'tsconfig.json', 'drizzle.config.ts', 'eslint.config.js']) {
    cpSync(join(ROOT, path), join(copy, path), { recursive: true });
  }
  symlinkSync(join(ROOT, 'node_modules'), join(copy, 'node_modules'), 'dir');
  const timings: Record<string, number> = {};

  t.test('refusals write nothing', async (t) => {
    const before = treeHash(copy);
    const cases: [string[], RegExp][] = [
      [['products'], /app\/products already exists/],
      [['product', '--fields', 'sku:string'], /a table or type named products exists already/],
      [['group'], /reserved word in SQL/],
      [['class'], /reserved word in JavaScript/],
      [['health'], /the project itself uses/],
      [['order line'], /invalid entity name/],
      [['2fast'], /invalid entity name/],
      [['news'], /no distinct singular and plural/],
      [['gadget', '--fields', 'title:strng'], /unknown type 'strng'/],
      [['gadget', '--fields', 'Title:string'], /names are camelCase/],
      [['gadget', '--fields', 'id:uuid'], /already has id/],
    ];
    for (const [argv, message] of cases) {
      const result = run(argv, copy);
      t.equal(result.code, 1, `${argv.join(' ')}: refused`);
      t.match(result.err, message, `${argv.join(' ')}: says why`);
      t.match(result.err, 'Nothing was written.');
    }
    // The npm script itself: a refusal exits non-zero from a real process.
    const cli = await exec(copy, 'npm', ['run', '--silent', 'gen:entity', '--', 'select', '--fields', 'title:string']);
    t.equal(cli.code, 1, 'exit code 1');
    t.match(cli.output, /cannot create the entity 'select':\n {2}'select' is a reserved word in SQL/);
    t.equal(treeHash(copy), before, 'the tree is byte-identical');
  });

  t.test('generate two entities', async (t) => {
    let started = Date.now();
    const first = run([a.name, '--fields', 'title:string,rating:int,body:text?,publishedAt:timestamp?'], copy);
    timings.first = Date.now() - started;
    t.equal(first.code, 0, first.err);
    t.match(first.out, new RegExp(`next: review drizzle/\\d{4}_${a.plural.snake}\\.sql`));
    const migration = readdirSync(join(copy, 'drizzle')).find((f) => f.endsWith(`_${a.plural.snake}.sql`)) ?? '';
    const sql = readFileSync(join(copy, 'drizzle', migration), 'utf8');
    t.ok(sql.startsWith(`CREATE TABLE "${a.plural.snake}" (`), sql.slice(0, 80));
    t.match(readFileSync(join(copy, 'drizzle/meta/_journal.json'), 'utf8'), new RegExp(`"tag": "\\d{4}_${a.plural.snake}"`));

    // Every field type, through the npm script as a developer runs it.
    started = Date.now();
    const fields = 'sku:string(40),quantity:int,totalCents:bigint,weight:number?,gift:boolean,productId:uuid,options:json?,note:text?,shippedAt:timestamp,code:string(1)?';
    const second = await exec(copy, 'npm', ['run', '--silent', 'gen:entity', '--', b.name, '--fields', fields]);
    timings.second = Date.now() - started;
    exitedZero(t, second, `npm run gen:entity -- ${b.name}`);
    t.match(second.output, `registered app.${b.plural.camel} in app/entities.ts; routes under /v1/${b.plural.kebab}`);
    const entities = readFileSync(join(copy, 'app/entities.ts'), 'utf8');
    t.match(entities, `import ${a.plural.camel} from './${a.folder}/index.js';\nimport ${b.plural.camel} from './${b.folder}/index.js';\n`);
    t.match(entities, `  ${a.plural.camel},\n  ${b.plural.camel},\n`);
    t.ok(readdirSync(join(copy, 'drizzle')).some((f) => f.endsWith(`_${b.plural.snake}.sql`)), `the ${b.plural.snake} migration`);
  });

  t.test('refusals after generating, and a failing migration step, leave the tree as it was', async (t) => {
    const before = treeHash(copy);
    for (const name of [a.plural.kebab, a.singular.kebab, b.plural.snake, b.singular.pascal]) {
      const result = run([name], copy);
      t.equal(result.code, 1, `${name}: refused`);
      t.match(result.err, /already exists/, `${name}: says it exists`);
    }
    t.equal(treeHash(copy), before, 'byte-identical after the refusals');

    // A model changed without its migration: drizzle-kit would fold that change into the new migration.
    const model = join(copy, 'app', a.folder, 'model.ts');
    const original = readFileSync(model, 'utf8');
    writeFileSync(model, original.replace('  title: varchar(\'title\', { length: 200 }).notNull(),', '  title: varchar(\'title\', { length: 200 }).notNull(),\n  extra: text(\'extra\'),'));
    const changed = treeHash(copy);
    const result = run(['gadget'], copy);
    t.equal(result.code, 1, result.out);
    t.match(result.err, /other models changed without a migration; run `npm run db:generate` for them first/);
    t.match(result.err, `ALTER TABLE "${a.plural.snake}" ADD COLUMN "extra" text`);
    t.equal(treeHash(copy), changed, 'files, entities.ts, migration and journal are back as they were');
    writeFileSync(model, original);
  });

  t.test('the generated code passes the type check, the lint and its own tests', async (t) => {
    const generated = [
      'app/entities.ts',
      ...[a, b].flatMap((e) => [`app/${e.folder}`, `tests/${e.folder}`, `app/endpoints/v1/${e.plural.kebab}.ts`, `tests/endpoints/${e.plural.kebab}.test.ts`]),
    ];
    const [typecheck, lint] = await Promise.all([
      exec(copy, 'npx', ['tsc', '-p', 'tsconfig.json', '--noEmit']),
      exec(copy, 'npx', ['eslint', '--max-warnings', '0', ...generated]),
    ]);
    timings.typecheck = typecheck.ms;
    timings.lint = lint.ms;
    exitedZero(t, typecheck, 'tsc -p tsconfig.json --noEmit');
    exitedZero(t, lint, 'eslint on the generated files');

    const testFiles = [a.folder, b.folder].flatMap((folder) =>
      readdirSync(join(copy, 'tests', folder)).filter((f) => f.endsWith('.test.ts')).map((f) => `tests/${folder}/${f}`));
    t.equal(testFiles.length, 10, 'five layer tests per entity');
    // The copy's migrations get a test template database of their own (tests/helpers/infra.ts names it by a
    // hash of the SQL files). One left by an earlier run that died has the same name but other journal
    // timestamps, so drizzle would take its migrations for unapplied ones: drop it before, and after.
    const template = templateName(join(copy, 'drizzle'));
    const admin = postgres(POSTGRES_URL, { max: 1, onnotice: () => {} });
    await admin.unsafe(`drop database if exists "${template}" with (force)`);
    t.teardown(async () => {
      await admin.unsafe(`drop database if exists "${template}"`).catch(() => {});
      await admin.end();
    });
    const tests = await exec(copy, 'npx', [
      'tap', '--disable-coverage', '--jobs', '2', ...testFiles, ...[a, b].map((e) => `tests/endpoints/${e.plural.kebab}.test.ts`),
    ]);
    timings.tests = tests.ms;
    exitedZero(t, tests, 'tap on the generated tests');
    t.match(tests.output, /# \{ total: \d+, pass: \d+ \}/, 'every assertion passed, none failed or skipped');
    t.comment(`timings (ms): ${JSON.stringify(timings)}`);
  });
});
