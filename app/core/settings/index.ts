import { Value } from 'typebox/value';
import { base, overrides, requiredWhenDeployed } from './environments.js';
import { AppEnvs, type AppEnv, type Settings, SettingsSchema } from './schema.js';

export { type AppEnv, type Settings, SettingsSchema } from './schema.js';

/** Thrown when the environment does not describe a valid configuration; lists every problem at once. */
export class SettingsError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid settings:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'SettingsError';
  }
}

const names = Object.keys(SettingsSchema.properties) as (keyof Settings)[];

/**
 * The one place that reads configuration from the environment: base values, overridden by the
 * APP_ENV layer, overridden by environment variables. Everything else receives the typed result.
 */
export function loadSettings(env: NodeJS.ProcessEnv = process.env): Settings {
  const appEnv = (env.APP_ENV || 'local') as AppEnv;
  if (!AppEnvs.includes(appEnv)) {
    throw new SettingsError([`APP_ENV: must be one of ${AppEnvs.join(', ')} (got '${env.APP_ENV}')`]);
  }

  const fromEnv: Record<string, string> = {};
  for (const name of names) {
    const value = env[name];
    // An empty variable counts as unset, so `FOO=` in an .env file cannot smuggle in an empty secret.
    if (value !== undefined && value !== '') fromEnv[name] = value;
  }
  const problems: string[] = [];
  // Conversion would quietly truncate 1.5 to 1: integers must be written as integers.
  for (const [name, value] of Object.entries(fromEnv)) {
    const schema = SettingsSchema.properties[name as keyof Settings] as { type?: string };
    if (schema.type === 'integer' && !/^-?\d+$/.test(value.trim())) problems.push(`${name}: must be an integer (got '${value}')`);
  }
  const raw = { ...base, ...overrides[appEnv], ...fromEnv, APP_ENV: appEnv };
  const converted = Value.Convert(SettingsSchema, raw) as Record<string, unknown>;
  for (const error of Value.Errors(SettingsSchema, converted)) {
    const name = error.instancePath.split('/')[1] ?? '';
    if (problems.some((p) => p.startsWith(`${name}: must be an integer`))) continue;
    const given = name in fromEnv ? ` (got '${redact(name, fromEnv[name] as string)}')` : '';
    if (error.keyword === 'required') {
      const missing = (error.params as { requiredProperties?: string[] }).requiredProperties ?? [];
      for (const m of missing) problems.push(`${m}: is required`);
    } else if (error.keyword === 'enum' && name) {
      const allowed = (error.params as { allowedValues: unknown[] }).allowedValues;
      problems.push(`${name}: must be one of ${allowed.join(', ')}${given}`);
    } else if (name) {
      problems.push(`${name}: ${error.message}${given}`);
    }
  }
  const unique = [...new Set(problems)];

  const settings = converted as Settings;
  if (appEnv === 'staging' || appEnv === 'production') {
    for (const name of requiredWhenDeployed) {
      if (settings[name] === undefined) unique.push(`${name}: is required when APP_ENV=${appEnv} (no embedded fallback)`);
    }
  }
  if (settings.JWT_ALGORITHM === 'HS256' && settings.JWT_SECRET === undefined && !('JWT_SECRET' in fromEnv)) {
    unique.push('JWT_SECRET: is required for HS256 (at least 32 characters)');
  }
  if (settings.JWT_ALGORITHM !== 'HS256') {
    for (const key of ['JWT_PRIVATE_KEY', 'JWT_PUBLIC_KEY'] as const) {
      if (settings[key] === undefined) unique.push(`${key}: is required for ${settings.JWT_ALGORITHM}`);
    }
  }
  if (settings.KAFKA_SASL_MECHANISM && (!settings.KAFKA_SASL_USERNAME || !settings.KAFKA_SASL_PASSWORD)) {
    unique.push('KAFKA_SASL_USERNAME/KAFKA_SASL_PASSWORD: required with KAFKA_SASL_MECHANISM');
  }
  if ((settings.SEED_ADMIN_EMAIL === undefined) !== (settings.SEED_ADMIN_PASSWORD === undefined)) {
    unique.push('SEED_ADMIN_EMAIL/SEED_ADMIN_PASSWORD: set both or neither');
  }
  if (unique.length > 0) throw new SettingsError(unique);

  // PEM keys usually arrive through the environment with escaped newlines.
  for (const key of ['JWT_PRIVATE_KEY', 'JWT_PUBLIC_KEY'] as const) {
    const pem = settings[key];
    if (pem) settings[key] = pem.replace(/\\n/g, '\n');
  }
  return Object.freeze(settings);
}

function redact(name: string, value: string): string {
  return /SECRET|PASSWORD|KEY/.test(name) ? '***' : value;
}

/** For entry points (main, worker): the settings, or the problems on stderr and exit code 78 (EX_CONFIG). */
export function loadSettingsOrExit(env: NodeJS.ProcessEnv = process.env): Settings {
  try {
    return loadSettings(env);
  } catch (error) {
    if (!(error instanceof SettingsError)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exit(78);
  }
}

/** Whether embedded stand-ins (PGlite, in-process Redis replacements, embedded Kafka) may be used. */
export function isEmbeddedAllowed(settings: Settings): boolean {
  return settings.APP_ENV === 'local' || settings.APP_ENV === 'test';
}
