import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { ENTITIES_FILE, projectProblems, registerEntity, reservedProblems } from './checks.js';
import { type Field, FIELD_TYPES, FieldError, parseFields } from './fields.js';
import { entityNames, type EntityNames, NameError } from './names.js';
import { renderAll } from './render.js';

/**
 * `npm run gen:entity -- <name> [--fields "..."]`: a new entity (model, schema, repository, service,
 * validator, routes, tests), registered in app/entities.ts, with its migration. Everything is checked
 * before the first file is written; if anything fails afterwards, what was written is removed again.
 */

export const DEFAULT_FIELDS = 'name:string';

export const USAGE = `Usage: npm run gen:entity -- <name> [--fields "<field>:<type>[?],..."] [--dry-run]

Adds an entity: app/<folder>/{index,model,schema,repository,service,validator}.ts, the routes
app/endpoints/v1/<plural>.ts (list, get, create, patch with version, soft delete; signed-in users
read, admins write), tests/<folder>/*.test.ts and tests/endpoints/<plural>.test.ts; registers it in
app/entities.ts and runs drizzle-kit generate for its migration drizzle/NNNN_<table>.sql.

<name>     singular or plural, in kebab, camel, Pascal or snake case: order-line, orderLine,
           OrderLine, order_line, order-lines. <folder> is the name as given, in kebab case
           (order-line → app/order-line/, reviews → app/reviews/); the rest is derived:
           table order_lines, route /v1/order-lines, type OrderLine, decorator app.orderLines.
           When a plural is irregular, give the singular (person → people, category → categories).
--fields   comma-separated <field>:<type>, field names in camelCase (dueAt → column due_at).
           A trailing ? makes a field optional: nullable column, may be left out of a create,
           null in responses, cleared by a patch with null. Default: "${DEFAULT_FIELDS}".
           Types:
${Object.entries(FIELD_TYPES).map(([name, type]) => `             ${name.padEnd(10)} ${type.help}`).join('\n')}
           Sortable with ?sort=: createdAt and every string, int, bigint, number and timestamp field.
--dry-run  print the names and files it would create; write nothing.

Example:
  npm run gen:entity -- reviews --fields "title:string,rating:int,body:text?,publishedAt:timestamp?"
`;

/** A refusal: nothing was written (or everything written was removed again). */
export class Refusal extends Error {}

export interface GenerateOptions {
  /** The project root (default: the one this script lives in). */
  root?: string;
  name: string;
  fields?: string;
  dryRun?: boolean;
  /** Progress and summary lines. */
  log?: (line: string) => void;
  /** Show drizzle-kit's own output (it may ask questions when models changed in other ways). */
  showDrizzleOutput?: boolean;
}

export interface Generated {
  names: EntityNames;
  /** Written files, relative to the root (app/entities.ts changed, not created). */
  files: string[];
  migration?: string;
}

const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Drizzle's output for a new table: only statements about that table (else other models changed too). */
function foreignStatements(sql: string, table: string): string[] {
  return sql
    .split('--> statement-breakpoint')
    .map((s) => s.trim())
    .filter((s) => s && !new RegExp(`^(CREATE TABLE|ALTER TABLE)\\s+"${table}"|^CREATE (UNIQUE )?INDEX\\s+"[^"]+"\\s+ON\\s+"${table}"`).test(s));
}

export function generate(options: GenerateOptions): Generated {
  const root = options.root ?? PROJECT_ROOT;
  const log = options.log ?? (() => {});
  let names: EntityNames;
  let fields: Field[];
  try {
    names = entityNames(options.name);
    fields = parseFields(options.fields ?? DEFAULT_FIELDS);
  } catch (error) {
    if (error instanceof NameError || error instanceof FieldError) throw new Refusal(error.message);
    throw error;
  }
  const files = renderAll(names, fields);
  const problems = [...reservedProblems(names), ...projectProblems(root, names, Object.keys(files))];
  if (problems.length) throw new Refusal(`cannot create the entity '${options.name}':\n  ${problems.join('\n  ')}`);

  const { singular, plural } = names;
  log(`${singular.label} / ${plural.label}: folder app/${names.folder}/, table ${plural.snake}, route /v1/${plural.kebab}, `
    + `type ${singular.pascal}, decorator app.${plural.camel}`);
  log(`fields: ${fields.map((f) => `${f.name} ${f.type}${f.maxLength ? `(${f.maxLength})` : ''}${f.optional ? '?' : ''}`).join(', ')}`);
  if (options.dryRun) {
    for (const path of Object.keys(files)) log(`  would create ${path}`);
    log(`  would register it in ${ENTITIES_FILE} and add the migration drizzle/NNNN_${plural.snake}.sql`);
    return { names, files: [] };
  }

  const entitiesPath = join(root, ENTITIES_FILE);
  const entitiesBefore = readFileSync(entitiesPath, 'utf8');
  const drizzleDir = join(root, 'drizzle');
  const journalPath = join(drizzleDir, 'meta/_journal.json');
  const listing = (dir: string) => (existsSync(dir) ? readdirSync(dir) : []);
  const drizzleBefore = new Set([...listing(drizzleDir), ...listing(join(drizzleDir, 'meta')).map((f) => `meta/${f}`)]);
  const journalBefore = existsSync(journalPath) ? readFileSync(journalPath, 'utf8') : undefined;
  const written: string[] = [];
  const madeDirs: string[] = [];

  const undo = () => {
    for (const path of written.reverse()) rmSync(join(root, path), { force: true });
    // Folders this run created hold nothing but what it wrote.
    for (const dir of madeDirs.reverse()) rmSync(dir, { recursive: true, force: true });
    writeFileSync(entitiesPath, entitiesBefore);
    for (const f of [...listing(drizzleDir), ...listing(join(drizzleDir, 'meta')).map((m) => `meta/${m}`)]) {
      if (!drizzleBefore.has(f)) rmSync(join(drizzleDir, f), { force: true, recursive: true });
    }
    if (journalBefore === undefined) rmSync(journalPath, { force: true });
    else writeFileSync(journalPath, journalBefore);
  };

  try {
    for (const [path, content] of Object.entries(files)) {
      const absolute = join(root, path);
      // mkdirSync returns the first folder it created: remember it to remove it again on failure.
      const made = mkdirSync(dirname(absolute), { recursive: true });
      if (made) madeDirs.push(made);
      writeFileSync(absolute, content, { flag: 'wx' });
      written.push(path);
    }
    writeFileSync(entitiesPath, registerEntity(entitiesBefore, names));

    log(`running drizzle-kit generate --name ${plural.snake}`);
    const drizzle = spawnSync('npx', ['drizzle-kit', 'generate', '--name', plural.snake], {
      cwd: root,
      encoding: 'utf8',
      stdio: options.showDrizzleOutput ? 'inherit' : ['ignore', 'pipe', 'pipe'],
      timeout: 120_000,
    });
    const output = `${drizzle.stdout ?? ''}${drizzle.stderr ?? ''}`.trim();
    if (drizzle.status !== 0) {
      throw new Refusal(`drizzle-kit generate failed (${drizzle.error?.message ?? `exit ${drizzle.status}`})${output ? `:\n${output}` : ''}`);
    }
    const migration = listing(drizzleDir).find((f) => !drizzleBefore.has(f) && f.endsWith(`_${plural.snake}.sql`));
    if (!migration) {
      // It stops, with exit code 0, when other model changes need an answer (a rename?) it cannot ask for here.
      throw new Refusal(
        `drizzle-kit generate wrote no migration for ${plural.snake}; when other models changed too, `
        + `run \`npm run db:generate\` for them first.${output ? `\n${output}` : ''}`,
      );
    }
    const foreign = foreignStatements(readFileSync(join(drizzleDir, migration), 'utf8'), plural.snake);
    if (foreign.length) {
      throw new Refusal(
        'other models changed without a migration; run `npm run db:generate` for them first. The migration would also have done:\n  '
        + foreign.join('\n  '),
      );
    }
    return { names, files: written, migration: `drizzle/${migration}` };
  } catch (error) {
    undo();
    throw error;
  }
}

/** The command line; returns the exit code (0 done, 1 refused or failed, 2 usage error). */
export function main(argv: string[], io: { out: (s: string) => void; err: (s: string) => void; root?: string }): number {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { 'fields': { type: 'string' }, 'dry-run': { type: 'boolean' }, 'help': { type: 'boolean', short: 'h' } },
    });
  } catch (error) {
    io.err(`gen:entity: ${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.out(USAGE);
    return 0;
  }
  if (positionals.length !== 1) {
    io.err(`gen:entity: ${positionals.length ? `one name, not ${positionals.length}` : 'the entity name is missing'}\n\n${USAGE}`);
    return 2;
  }
  try {
    const done = generate({
      root: io.root,
      name: positionals[0] as string,
      fields: values.fields,
      dryRun: values['dry-run'],
      log: io.out,
      showDrizzleOutput: false,
    });
    if (values['dry-run']) return 0;
    const { plural } = done.names;
    io.out(`created:\n${done.files.map((f) => `  ${f}`).join('\n')}\n  ${done.migration} (and drizzle/meta)`);
    io.out(`registered app.${plural.camel} in ${ENTITIES_FILE}; routes under /v1/${plural.kebab}`);
    io.out(`next: review ${done.migration}, then run the new tests:\n  npx tap --disable-coverage tests/${done.names.folder}/*.test.ts tests/endpoints/${plural.kebab}.test.ts`);
    return 0;
  } catch (error) {
    if (error instanceof Refusal) {
      io.err(`gen:entity: ${error.message}\nNothing was written.`);
      return 1;
    }
    throw error;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = main(process.argv.slice(2), {
    out: (s) => process.stdout.write(`${s}\n`),
    err: (s) => process.stderr.write(`${s}\n`),
  });
}
