/** Words an entity may not be named: they would break the generated code, its SQL or the project's own names. */

/** JavaScript and TypeScript reserved and contextual keywords. */
export const JS_RESERVED = new Set([
  'abstract', 'accessor', 'any', 'arguments', 'as', 'asserts', 'async', 'await', 'bigint', 'boolean', 'break', 'case',
  'catch', 'class', 'const', 'constructor', 'continue', 'debugger', 'declare', 'default', 'delete', 'do', 'else', 'enum',
  'eval', 'export', 'extends', 'false', 'finally', 'for', 'from', 'function', 'get', 'global', 'if', 'implements', 'import',
  'in', 'infer', 'instanceof', 'interface', 'is', 'keyof', 'let', 'module', 'namespace', 'never', 'new', 'null', 'number',
  'object', 'of', 'out', 'override', 'package', 'private', 'protected', 'public', 'readonly', 'require', 'return',
  'satisfies', 'set', 'static', 'string', 'super', 'switch', 'symbol', 'this', 'throw', 'true', 'try', 'type', 'typeof',
  'undefined', 'unique', 'unknown', 'using', 'var', 'void', 'while', 'with', 'yield', 'prototype',
]);

/** PostgreSQL's reserved key words (and user/order/group, which every SQL dialect reserves). */
export const SQL_RESERVED = new Set([
  'all', 'analyse', 'analyze', 'and', 'any', 'array', 'as', 'asc', 'asymmetric', 'authorization', 'binary', 'both',
  'case', 'cast', 'check', 'collate', 'collation', 'column', 'concurrently', 'constraint', 'create', 'cross',
  'current_catalog', 'current_date', 'current_role', 'current_schema', 'current_time', 'current_timestamp',
  'current_user', 'default', 'deferrable', 'desc', 'distinct', 'do', 'else', 'end', 'except', 'false', 'fetch', 'for',
  'foreign', 'freeze', 'from', 'full', 'grant', 'group', 'having', 'ilike', 'in', 'initially', 'inner', 'intersect',
  'into', 'is', 'isnull', 'join', 'lateral', 'leading', 'left', 'like', 'limit', 'localtime', 'localtimestamp',
  'natural', 'not', 'notnull', 'null', 'offset', 'on', 'only', 'or', 'order', 'outer', 'overlaps', 'placing', 'primary',
  'references', 'returning', 'right', 'select', 'session_user', 'similar', 'some', 'symmetric', 'system_user', 'table',
  'tablesample', 'then', 'to', 'trailing', 'true', 'union', 'unique', 'user', 'using', 'variadic', 'verbose', 'when',
  'where', 'window', 'with',
]);

/**
 * The project's own names (singular, kebab case): folders and entry points of app/ and tests/, core plugins,
 * existing entities and tables. The generator also checks the files, tables and decorators that exist right now.
 */
export const OWN_NAMES = new Set([
  'adapter', 'api', 'app', 'auth', 'base', 'build', 'cache', 'cli', 'consumer', 'core', 'database', 'db', 'dist', 'dlq-replay', 'doc',
  'drizzle', 'endpoint', 'entity', 'event', 'feature-flag', 'flag', 'health', 'helper', 'http', 'kafka', 'kafka-topic', 'main', 'metric',
  'migrate', 'migration', 'mutex', 'order', 'order-item', 'outbox', 'outbox-event', 'plinth', 'processed-event', 'product', 'pubsub',
  'redis', 'refresh-token', 'schema', 'script', 'security', 'seed', 'service', 'session', 'setting', 'test', 'user', 'v1', 'worker',
]);

/**
 * Global names the generated code relies on (`new Date(...)`, `Promise<...>`): an entity type of that
 * name would shadow them in the generated files.
 */
export const BUILTIN_TYPES = new Set([
  'Array', 'ArrayBuffer', 'Awaited', 'BigInt', 'Boolean', 'Buffer', 'DataView', 'Date', 'Error', 'Exclude', 'Extract',
  'Function', 'Infinity', 'InstanceType', 'Intl', 'Iterator', 'JSON', 'Map', 'Math', 'NaN', 'NonNullable', 'Number',
  'Object', 'Omit', 'Parameters', 'Partial', 'Pick', 'Promise', 'Proxy', 'Readonly', 'Record', 'Reflect', 'RegExp',
  'Required', 'ReturnType', 'Set', 'String', 'Symbol', 'TypeError', 'URL', 'WeakMap', 'WeakRef', 'WeakSet',
]);
