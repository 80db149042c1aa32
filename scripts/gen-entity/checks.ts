import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Fastify from 'fastify';
import type { EntityNames } from './names.js';
import { clashes } from './render.js';
import { BUILTIN_TYPES, JS_RESERVED, OWN_NAMES, SQL_RESERVED } from './reserved.js';

/** Why an entity cannot have these names in this project: reserved words, and what exists already. */

export const ENTITIES_FILE = 'app/entities.ts';
export const IMPORT_MARKER = '// gen:entity inserts the import of a new entity above this line.';
export const LIST_MARKER = '// gen:entity inserts a new entity above this line.';

/** Every .ts file under `dir` (relative to root), recursively. */
function sources(root: string, dir: string): { path: string; text: string }[] {
  const base = join(root, dir);
  if (!existsSync(base)) return [];
  return (readdirSync(base, { recursive: true }) as string[])
    .filter((f) => f.endsWith('.ts'))
    .map((f) => ({ path: `${dir}/${f}`, text: readFileSync(join(base, f), 'utf8') }));
}

/** Table and enum type names the models and the latest migration snapshot know (a table is also a type). */
function relations(root: string, app: { text: string }[]): Set<string> {
  const names = new Set<string>();
  for (const { text } of app) {
    for (const m of text.matchAll(/pg(?:Table|Enum)\(\s*['"]([^'"]+)['"]/g)) names.add(m[1] as string);
  }
  const meta = join(root, 'drizzle/meta');
  const latest = existsSync(meta) ? readdirSync(meta).filter((f) => f.endsWith('_snapshot.json')).sort().at(-1) : undefined;
  if (latest) {
    const snapshot = JSON.parse(readFileSync(join(meta, latest), 'utf8')) as { tables?: object; enums?: object };
    for (const key of [...Object.keys(snapshot.tables ?? {}), ...Object.keys(snapshot.enums ?? {})]) {
      names.add(key.replace(/^public\./, ''));
    }
  }
  return names;
}

let fastifyProperties: Set<string> | undefined;
/** Properties every Fastify instance has (`addresses`, `version`, `log`...): a decorator cannot take them. */
function fastifyProperty(name: string): boolean {
  if (!fastifyProperties) {
    const probe = Fastify();
    fastifyProperties = new Set<string>();
    for (let o: object | null = probe; o && o !== Object.prototype; o = Object.getPrototypeOf(o)) {
      for (const key of Reflect.ownKeys(o)) if (typeof key === 'string') fastifyProperties.add(key);
    }
  }
  return fastifyProperties.has(name) || name in Object.prototype;
}

/** Reserved words and names that would clash inside the generated code (no project files needed). */
export function reservedProblems(names: EntityNames): string[] {
  const { singular, plural } = names;
  const problems: string[] = [];
  const given = `'${names.folder}'`;
  const js = [singular.camel, plural.camel].find((n) => JS_RESERVED.has(n));
  if (js) problems.push(`${given} is a reserved word in JavaScript/TypeScript ('${js}')`);
  const sql = [singular.snake, plural.snake].find((n) => SQL_RESERVED.has(n));
  if (sql) problems.push(`${given} is a reserved word in SQL ('${sql}')`);
  if (OWN_NAMES.has(singular.kebab) || OWN_NAMES.has(names.folder)) problems.push(`${given} is a name the project itself uses`);
  const builtin = [singular.pascal, plural.pascal].find((n) => BUILTIN_TYPES.has(n));
  if (builtin) problems.push(`${given} would shadow the built-in ${builtin} in the generated code`);
  for (const clash of clashes(names)) problems.push(`${given} would clash with '${clash}', which the generated code uses`);
  return problems;
}

/** What already exists in the project at `root` under these names. */
export function projectProblems(root: string, names: EntityNames, targets: string[]): string[] {
  const { plural } = names;
  const problems: string[] = [];
  const app = sources(root, 'app');

  for (const path of [`app/${names.folder}`, `app/${names.folder}.ts`, `tests/${names.folder}`, ...targets]) {
    if (existsSync(join(root, path))) problems.push(`${path} already exists`);
  }
  const route = `/${plural.kebab}`;
  for (const { path, text } of app.filter((f) => f.path.startsWith('app/endpoints/'))) {
    if (new RegExp(`autoPrefix\\s*=\\s*['"]${route}['"]`).test(text)) problems.push(`the route /v1${route} exists already (${path})`);
  }
  if (relations(root, app).has(plural.snake)) problems.push(`a table or type named ${plural.snake} exists already`);
  const drizzle = join(root, 'drizzle');
  const migration = existsSync(drizzle) && readdirSync(drizzle).find((f) => f.endsWith(`_${plural.snake}.sql`));
  if (migration) problems.push(`a migration named ${plural.snake} exists already (drizzle/${migration})`);

  const decorators = new Set(app.flatMap(({ text }) => [...text.matchAll(/\.decorate\(\s*['"]([^'"]+)['"]/g)].map((m) => m[1])));
  if (decorators.has(plural.camel) || fastifyProperty(plural.camel)) {
    problems.push(`app.${plural.camel} is taken (the entity's decorator would clash)`);
  }
  const plugins = new Set(app.flatMap(({ text }) => [...text.matchAll(/\bname:\s*['"]([^'"]+)['"]/g)].map((m) => m[1])));
  if (plugins.has(names.folder)) problems.push(`a plugin named '${names.folder}' exists already`);

  const entities = app.find((f) => f.path === ENTITIES_FILE);
  if (!entities) {
    problems.push(`${ENTITIES_FILE} is missing: it is where entities are registered`);
  } else {
    for (const marker of [IMPORT_MARKER, LIST_MARKER]) {
      if (!entities.text.includes(marker)) problems.push(`${ENTITIES_FILE} lost its marker line '${marker}'`);
    }
    const imported = [...entities.text.matchAll(/^import\s+(?:type\s+)?(\w+)/gm)].map((m) => m[1]);
    if (imported.includes(plural.camel)) problems.push(`${ENTITIES_FILE} already imports ${plural.camel}`);
  }
  return problems;
}

/** app/entities.ts with the new entity imported and appended to the list, just above the markers. */
export function registerEntity(text: string, names: EntityNames): string {
  const identifier = names.plural.camel;
  return text
    .replace(IMPORT_MARKER, `import ${identifier} from './${names.folder}/index.js';\n${IMPORT_MARKER}`)
    .replace(new RegExp(`^(\\s*)${LIST_MARKER.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`, 'm'), `$1${identifier},\n$1${LIST_MARKER}`);
}
