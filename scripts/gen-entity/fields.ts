import { splitWords } from './names.js';

/**
 * Field types of `--fields "title:string,rating:int,body:text?"`: what each becomes in the table, in the
 * TypeBox schemas and in the generated tests. Every expression here is TypeScript source text.
 */

export interface Field {
  /** camelCase property name in the API and the model. */
  name: string;
  /** snake_case column name. */
  column: string;
  type: FieldTypeName;
  /** `?`: nullable column, may be left out on create, null in responses, cleared with null on patch. */
  optional: boolean;
  /** string only: the maximum length (default 200). */
  maxLength?: number;
}

export interface FieldType {
  /** What `--help` says about it. */
  help: string;
  /** The drizzle column builder. */
  column(field: Field): string;
  /** What the column builder needs: a name from drizzle-orm/pg-core, or `timestampColumn` from core/base/columns. */
  builder: string;
  /** The column's `data_type` in information_schema. */
  dataType: string;
  /** The TypeBox rule of a request value. */
  rule(field: Field): string;
  /** The TypeBox schema of the response value (without null). */
  response: string;
  /** Whether `?sort=` may name it. */
  sortable: boolean;
  /** A valid request value in terms of `i` (0, 1, 2): distinct for each, increasing with `i` when sortable. */
  sample(field: Field): string;
  /** The same value as the row holds it (timestamps are Dates there). */
  rowSample?(field: Field): string;
  /** Request values the rule refuses, each with what is wrong. */
  invalid(field: Field): [value: string, why: string][];
  /** Request value → column value (default: the value itself). */
  toColumn?(value: string): string;
  /** Column value → response value (default: the value itself). */
  toResponse?(value: string): string;
}

const INT_MAX = 2_147_483_647;
/** 2147483647 → '2_147_483_647', as the project writes long numbers. */
const digits = (n: number) => String(n).replace(/\B(?=(\d{3})+(?!\d))/g, '_');
export const STRING_MAX_DEFAULT = 200;
export const TEXT_MAX = 10_000;

/** The TypeScript source of a string literal. */
const literal = (text: string) => `'${text}'`;

/** `title`, or `'abc'.charAt(i)` when the maximum length leaves no room for the name. */
function stringSample(field: Field): string {
  const max = field.maxLength ?? STRING_MAX_DEFAULT;
  return `${field.name}-0`.length <= max ? `\`${field.name}-\${i}\`` : 'String.fromCharCode(97 + i)';
}

export const FIELD_TYPES = {
  string: {
    help: `1..${STRING_MAX_DEFAULT} characters; string(n) for another maximum (varchar)`,
    builder: 'varchar',
    column: (f) => `varchar('${f.column}', { length: ${f.maxLength ?? STRING_MAX_DEFAULT} })`,
    dataType: 'character varying',
    rule: (f) => `Type.String({ minLength: 1, maxLength: ${digits(f.maxLength ?? STRING_MAX_DEFAULT)} })`,
    response: 'Type.String()',
    sortable: true,
    sample: stringSample,
    invalid: (f) => [
      [literal(''), 'empty'],
      [`'x'.repeat(${(f.maxLength ?? STRING_MAX_DEFAULT) + 1})`, 'too long'],
      ['42', 'a number'],
    ],
  },
  text: {
    help: `up to ${TEXT_MAX} characters (text)`,
    builder: 'text',
    column: (f) => `text('${f.column}')`,
    dataType: 'text',
    rule: () => `Type.String({ maxLength: ${digits(TEXT_MAX)} })`,
    response: 'Type.String()',
    sortable: false,
    sample: (f) => `\`${f.name} \${i}\``,
    invalid: () => [
      [`'x'.repeat(${digits(TEXT_MAX + 1)})`, 'too long'],
      ['42', 'a number'],
    ],
  },
  int: {
    help: 'integer within int4 (integer)',
    builder: 'integer',
    column: (f) => `integer('${f.column}')`,
    dataType: 'integer',
    rule: () => `Type.Integer({ minimum: -${digits(INT_MAX + 1)}, maximum: ${digits(INT_MAX)} })`,
    response: 'Type.Integer()',
    sortable: true,
    sample: () => 'i * 10 + 1',
    invalid: () => [
      ['1.5', 'a fraction'],
      [literal('7'), 'a string'],
      [digits(INT_MAX + 1), 'over int4'],
    ],
  },
  bigint: {
    help: 'integer within ±2^53-1, the safe JavaScript range (bigint)',
    builder: 'bigint',
    column: (f) => `bigint('${f.column}', { mode: 'number' })`,
    dataType: 'bigint',
    rule: () => 'Type.Integer({ minimum: Number.MIN_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER })',
    response: 'Type.Integer()',
    sortable: true,
    sample: () => '1_000_000_000_000 + i',
    invalid: () => [
      ['1.5', 'a fraction'],
      [literal('7'), 'a string'],
      ['Number.MAX_SAFE_INTEGER + 2', 'beyond the safe range'],
    ],
  },
  number: {
    help: 'any number (double precision)',
    builder: 'doublePrecision',
    column: (f) => `doublePrecision('${f.column}')`,
    dataType: 'double precision',
    rule: () => 'Type.Number()',
    response: 'Type.Number()',
    sortable: true,
    sample: () => 'i + 0.5',
    invalid: () => [
      [literal('1.5'), 'a string'],
      ['true', 'a boolean'],
    ],
  },
  boolean: {
    help: 'true or false (boolean)',
    builder: 'boolean',
    column: (f) => `boolean('${f.column}')`,
    dataType: 'boolean',
    rule: () => 'Type.Boolean()',
    response: 'Type.Boolean()',
    sortable: false,
    sample: () => 'i % 2 === 0',
    invalid: () => [
      [literal('true'), 'a string'],
      ['1', 'a number'],
    ],
  },
  timestamp: {
    help: 'ISO-8601 date-time with a zone, e.g. 2030-01-01T00:00:00Z (timestamptz)',
    builder: 'timestampColumn',
    column: (f) => `timestampColumn('${f.column}')`,
    dataType: 'timestamp with time zone',
    rule: () => 'TimestampSchema',
    response: 'TimestampSchema',
    sortable: true,
    sample: () => 'new Date(Date.UTC(2030, 0, 1 + i)).toISOString()',
    rowSample: () => 'new Date(Date.UTC(2030, 0, 1 + i))',
    invalid: () => [
      [literal('tomorrow'), 'not a date'],
      [literal('2030-01-01'), 'a date without a time'],
      ['1_893_456_000_000', 'epoch milliseconds'],
    ],
    toColumn: (v) => `new Date(${v})`,
    toResponse: (v) => `isoRequired(${v})`,
  },
  uuid: {
    help: 'a UUID (uuid)',
    builder: 'uuid',
    column: (f) => `uuid('${f.column}')`,
    dataType: 'uuid',
    rule: () => 'UuidSchema',
    response: 'UuidSchema',
    sortable: false,
    sample: () => '`00000000-0000-4000-8000-00000000000${i}`',
    invalid: () => [
      [literal('not-a-uuid'), 'not a UUID'],
      ['42', 'a number'],
    ],
  },
  json: {
    help: 'a JSON object (jsonb)',
    builder: 'jsonb',
    column: (f) => `jsonb('${f.column}').$type<Record<string, unknown>>()`,
    dataType: 'jsonb',
    rule: () => `Type.Record(Type.String(), Type.Unknown(), { description: ${literal('a JSON object')} })`,
    response: 'Type.Record(Type.String(), Type.Unknown())',
    sortable: false,
    sample: () => `{ rank: i, tags: [${literal('a')}, ${literal('b')}] }`,
    invalid: () => [
      [literal('{}'), 'a string'],
      ['[1, 2]', 'an array'],
      ['42', 'a number'],
    ],
  },
} satisfies Record<string, FieldType>;

export type FieldTypeName = keyof typeof FIELD_TYPES;
export const fieldType = (field: Field): FieldType => FIELD_TYPES[field.type];

/** Names other tools use for our types: only for a hint, so each type keeps one spelling. */
const ALIASES: Record<string, FieldTypeName> = {
  varchar: 'string', str: 'string', integer: 'int', int4: 'int', int8: 'bigint', long: 'bigint', float: 'number',
  double: 'number', decimal: 'number', bool: 'boolean', date: 'timestamp', datetime: 'timestamp', timestamptz: 'timestamp',
  jsonb: 'json', object: 'json',
};

/** Columns every entity table already has (core/base/columns.ts). */
const TAKEN_FIELDS = new Set(['id', 'createdAt', 'updatedAt', 'deletedAt', 'version']);
const UNSAFE_KEYS = new Set(['constructor', 'prototype', 'toString', 'valueOf', 'hasOwnProperty']);
const MAX_FIELD_NAME = 40;

export class FieldError extends Error {}

/** `"title:string,rating:int,body:text?"` → fields; every problem is reported at once. */
export function parseFields(spec: string): Field[] {
  const problems: string[] = [];
  const fields: Field[] = [];
  const entries = spec.split(',').map((s) => s.trim());
  if (entries.every((e) => e === '')) throw new FieldError('--fields is empty; e.g. --fields "title:string,rating:int?"');
  for (const entry of entries) {
    if (entry === '') {
      problems.push('an empty entry (two commas in a row, or a trailing comma)');
      continue;
    }
    const match = /^([^:\s]+)\s*:\s*([a-z]+)(?:\((\d+)\))?(\?)?$/i.exec(entry);
    if (!match) {
      problems.push(`'${entry}': write <name>:<type>, e.g. title:string or dueAt:timestamp?`);
      continue;
    }
    const [, name = '', typeName = '', length, question] = match;
    const before = problems.length;
    if (!/^[a-z][a-zA-Z0-9]*$/.test(name)) {
      const words = splitWords(name);
      const camel = words.map((w, i) => (i === 0 ? w : w.charAt(0).toUpperCase() + w.slice(1))).join('');
      const hint = /^[a-z][a-zA-Z0-9]*$/.test(camel) ? ` (did you mean '${camel}'?)` : '';
      problems.push(`field '${name}': names are camelCase, a lower-case letter then letters and digits${hint}`);
    } else if (TAKEN_FIELDS.has(name)) {
      problems.push(`field '${name}': every entity already has id, createdAt, updatedAt, deletedAt and version`);
    } else if (UNSAFE_KEYS.has(name)) {
      problems.push(`field '${name}': a name every JavaScript object already has`);
    } else if (name.length > MAX_FIELD_NAME) {
      problems.push(`field '${name}': longer than ${MAX_FIELD_NAME} characters`);
    }
    if (!Object.hasOwn(FIELD_TYPES, typeName)) {
      const lower = typeName.toLowerCase();
      const meant = Object.hasOwn(FIELD_TYPES, lower) ? lower : Object.hasOwn(ALIASES, lower) ? ALIASES[lower] : undefined;
      const hint = meant ? ` (did you mean '${meant}'?)` : '';
      problems.push(`field '${name}': unknown type '${typeName}'${hint}; the types are ${Object.keys(FIELD_TYPES).join(', ')}`);
    } else if (length !== undefined && typeName !== 'string') {
      problems.push(`field '${name}': only string takes a length, as string(n)`);
    } else if (length !== undefined && (Number(length) < 1 || Number(length) > 10_485_760)) {
      problems.push(`field '${name}': string(n) needs 1 <= n <= 10485760`);
    }
    if (problems.length > before) continue;
    const column = splitWords(name).join('_');
    const clash = fields.find((f) => f.column === column);
    if (clash) {
      problems.push(clash.name === name ? `field '${name}' is given twice` : `fields '${clash.name}' and '${name}' would share the column ${column}`);
      continue;
    }
    fields.push({
      name,
      column,
      type: typeName as FieldTypeName,
      optional: question === '?',
      ...(length !== undefined && { maxLength: Number(length) }),
    });
  }
  if (problems.length) throw new FieldError(`invalid --fields:\n  ${problems.join('\n  ')}`);
  return fields;
}
