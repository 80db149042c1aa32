import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type Field, fieldType } from './fields.js';
import type { EntityNames } from './names.js';

/**
 * Fills the templates of ./templates. A template is plain TypeScript with placeholders:
 * `__Entity__`-style words are replaced inline, and a line holding only a block placeholder
 * (`__columns__`) becomes the lines generated for the fields, at that line's indentation.
 */

export const TEMPLATES_DIR = fileURLToPath(new URL('./templates/', import.meta.url));

/** Template file → where its output goes, relative to the project root. */
export function targets(names: EntityNames): Record<string, string> {
  const app = `app/${names.folder}`;
  const tests = `tests/${names.folder}`;
  const route = names.plural.kebab;
  return {
    'index.ts.tpl': `${app}/index.ts`,
    'model.ts.tpl': `${app}/model.ts`,
    'schema.ts.tpl': `${app}/schema.ts`,
    'repository.ts.tpl': `${app}/repository.ts`,
    'service.ts.tpl': `${app}/service.ts`,
    'validator.ts.tpl': `${app}/validator.ts`,
    'endpoint.ts.tpl': `app/endpoints/v1/${route}.ts`,
    'fixtures.ts.tpl': `${tests}/fixtures.ts`,
    'model.test.ts.tpl': `${tests}/model.test.ts`,
    'schema.test.ts.tpl': `${tests}/schema.test.ts`,
    'repository.test.ts.tpl': `${tests}/repository.test.ts`,
    'service.test.ts.tpl': `${tests}/service.test.ts`,
    'validator.test.ts.tpl': `${tests}/validator.test.ts`,
    'endpoint.test.ts.tpl': `tests/endpoints/${route}.test.ts`,
  };
}

export function readTemplates(): Record<string, string> {
  const files = readdirSync(TEMPLATES_DIR).filter((f) => f.endsWith('.tpl'));
  return Object.fromEntries(files.map((f) => [f, readFileSync(`${TEMPLATES_DIR}${f}`, 'utf8')]));
}

const article = (label: string) => (/^[aeiou]/.test(label) ? 'an' : 'a');
const quoted = (items: string[]) => items.map((s) => `'${s}'`).join(', ');

/** The inline placeholders. */
export function inlineValues(names: EntityNames, fields: Field[]): Record<string, string> {
  const { singular, plural } = names;
  const builders = new Set(fields.map((f) => fieldType(f).builder));
  const pgCore = ['pgTable', ...[...builders].filter((b) => b !== 'timestampColumn')].sort();
  const baseColumns = ['commonColumns', ...(builders.has('timestampColumn') ? ['timestampColumn'] : [])];
  let unknown = 'notAField';
  while (fields.some((f) => f.name === unknown)) unknown += 'X';
  return {
    Entity: singular.pascal,
    Entities: plural.pascal,
    entity: singular.camel,
    entities: plural.camel,
    entity_folder: names.folder,
    entities_route: plural.kebab,
    entity_table: plural.snake,
    entity_label: singular.label,
    entities_label: plural.label,
    a_entity_label: `${article(singular.label)} ${singular.label}`,
    pg_core_imports: pgCore.join(', '),
    base_column_imports: baseColumns.join(', '),
    required_fields: quoted(fields.filter((f) => !f.optional).map((f) => f.name)),
    optional_fields: quoted(fields.filter((f) => f.optional).map((f) => f.name)),
    unknown_field: unknown,
  };
}

/** The block placeholders: lines generated from the fields. */
export function blockValues(names: EntityNames, fields: Field[]): Record<string, string[]> {
  const table = names.plural.camel;
  const sortable = fields.filter((f) => fieldType(f).sortable);
  const timestamps = fields.filter((f) => f.type === 'timestamp');
  const helpers: string[] = [];
  if (timestamps.length > 0) {
    helpers.push(
      '/** An ISO-8601 request value as a Date; null (clear) and undefined (keep) stay as they are. */',
      'const toDate = <T extends null | undefined>(value: string | T): Date | T => (typeof value === \'string\' ? new Date(value) : value);',
      '',
    );
  }
  if (timestamps.some((f) => f.optional)) {
    helpers.push(
      '/** A nullable timestamp column as the API shows it. */',
      'const isoOrNull = (value: Date | null) => (value === null ? null : isoRequired(value));',
      '',
    );
  }
  const each = (render: (f: Field) => string) => fields.map(render);
  return {
    columns: each((f) => `${f.name}: ${fieldType(f).column(f)}${f.optional ? '' : '.notNull()'},`),
    field_rules: each((f) => `${f.name}: ${fieldType(f).rule(f)},`),
    response_fields: each((f) => `${f.name}: ${f.optional ? `nullable(${fieldType(f).response})` : fieldType(f).response},`),
    create_fields: each((f) => `${f.name}: ${f.optional ? `Type.Optional(fields.${f.name})` : `fields.${f.name}`},`),
    patch_fields: each((f) => `${f.name}: Type.Optional(${f.optional ? `nullable(fields.${f.name})` : `fields.${f.name}`}),`),
    sort_fields: ['createdAt', ...sortable.map((f) => f.name)].map((name) => `'${name}',`),
    sortable_columns: ['createdAt', ...sortable.map((f) => f.name)].map((name) => `${name}: ${table}.${name},`),
    service_helpers: helpers,
    to_response: each((f) => {
      if (f.type !== 'timestamp') return `${f.name}: row.${f.name},`;
      return `${f.name}: ${f.optional ? 'isoOrNull' : 'isoRequired'}(row.${f.name}),`;
    }),
    create_columns: each((f) => {
      if (f.type !== 'timestamp') return `${f.name}: input.${f.name}${f.optional ? ' ?? null' : ''},`;
      return f.optional ? `${f.name}: toDate(input.${f.name}) ?? null,` : `${f.name}: new Date(input.${f.name}),`;
    }),
    patch_columns: each((f) => `${f.name}: ${f.type === 'timestamp' ? `toDate(patch.${f.name})` : `patch.${f.name}`},`),
    sample_values: each((f) => `${f.name}: ${fieldType(f).sample(f)},`),
    sample_row_values: each((f) => `${f.name}: ${(fieldType(f).rowSample ?? fieldType(f).sample)(f)},`),
    invalid_values: fields.flatMap((f) => fieldType(f).invalid(f).map(([value, why]) => `['${f.name}', ${value}, '${why}'],`)),
    expected_columns: each((f) => `${f.column}: { data_type: '${fieldType(f).dataType}', is_nullable: '${f.optional ? 'YES' : 'NO'}' },`),
  };
}

const PLACEHOLDER = /__([A-Za-z][A-Za-z_]*?)__/g;

/** One template filled in. Throws when a placeholder has no value (a template and this file disagree). */
export function render(template: string, inline: Record<string, string>, blocks: Record<string, string[]>): string {
  const lines = template.split('\n').flatMap((line) => {
    const block = /^(\s*)__([a-z_]+)__$/.exec(line);
    if (!block || !(block[2] as string in blocks)) return [line];
    const indent = block[1] as string;
    return (blocks[block[2] as string] as string[]).map((l) => (l === '' ? '' : indent + l));
  });
  return lines.join('\n').replace(PLACEHOLDER, (whole, key: string) => {
    const value = inline[key];
    if (value === undefined) throw new Error(`template placeholder ${whole} has no value`);
    return value;
  });
}

/** Every generated file: target path (relative to the project root) → content. */
export function renderAll(names: EntityNames, fields: Field[]): Record<string, string> {
  const templates = readTemplates();
  const inline = inlineValues(names, fields);
  const blocks = blockValues(names, fields);
  const out: Record<string, string> = {};
  for (const [template, target] of Object.entries(targets(names))) {
    const text = templates[template];
    if (text === undefined) throw new Error(`template ${template} is missing from ${TEMPLATES_DIR}`);
    out[target] = render(text, inline, blocks);
  }
  return out;
}

/**
 * Identifiers a template declares or imports under a fixed name, for each template that also uses the
 * entity's type name or table name bare (`Page`, `Test`, `Type`...): an entity of that name would clash.
 */
export function clashes(names: EntityNames): string[] {
  const found = new Set<string>();
  const bare = { Entity: names.singular.pascal, entities: names.plural.camel };
  for (const text of Object.values(readTemplates())) {
    const fixed = new Set<string>();
    for (const m of text.matchAll(/^import\s+(?:type\s+)?([\s\S]*?)\s+from\s/gm)) {
      for (const part of (m[1] as string).replace(/[{}]/g, ',').split(',')) {
        const local = part.trim().replace(/^type\s+/, '').split(/\s+as\s+/).at(-1)?.trim();
        if (local && !local.includes('__') && local !== '*') fixed.add(local);
      }
    }
    for (const m of text.matchAll(/(?:const|let|function|class|interface|type)\s+([A-Za-z_$][\w$]*)/g)) {
      if (!(m[1] as string).includes('__')) fixed.add(m[1] as string);
    }
    for (const [key, value] of Object.entries(bare)) {
      if (new RegExp(`(?<![\\w$])__${key}__(?![\\w$])`).test(text) && fixed.has(value)) found.add(value);
    }
  }
  return [...found];
}
