import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { parse, parseAllDocuments } from 'yaml';
import { loadSettings, type Settings } from '../../app/core/settings/index.js';
import { build } from '../helpers/app.js';
import { buildWorker } from '../helpers/kafka.js';

/*
 * Docker and Kubernetes are not available where the tests run, so the deployment files are parsed and checked for
 * what would otherwise only fail on a deploy: the Dockerfile's shape, every compose environment's services, wiring and
 * settings (loadSettings() on exactly the environment each container gets), KRaft, pinned images, and the Kubernetes
 * manifests (settings from ConfigMap + Secret references, probes on routes the app serves, graceful termination).
 */

const root = fileURLToPath(new URL('../..', import.meta.url));
const buildDir = join(root, 'build');
const environments = ['local', 'staging', 'production'] as const;
type Environment = (typeof environments)[number];
const appServices = ['api', 'worker', 'migrate', 'topics'];
const oneShots = ['migrate', 'topics'];

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);
const obj = (value: unknown): Json => (isObject(value) ? value : {});
const arr = (value: unknown): unknown[] => (Array.isArray(value) ? value : []);
const str = (value: unknown): string => (value === undefined || value === null ? '' : String(value));
const readText = (path: string) => readFileSync(path, 'utf8');
const packageJson = JSON.parse(readText(join(root, 'package.json'))) as { scripts: Record<string, string> };

// ---------------------------------------------------------------------------------------------------------------
// Dockerfile

interface Instruction {
  keyword: string;
  args: string;
}
interface Stage {
  name: string;
  image: string;
  instructions: Instruction[];
}

/** Logical instructions (continuations joined, comments dropped) grouped by stage. */
function parseDockerfile(text: string): Stage[] {
  const logical: string[] = [];
  let current = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('#') || (line === '' && current === '')) continue;
    if (line.endsWith('\\')) {
      current += `${line.slice(0, -1)} `;
      continue;
    }
    current += line;
    if (current.trim()) logical.push(current.trim());
    current = '';
  }
  const stages: Stage[] = [];
  for (const line of logical) {
    const [keyword = '', ...rest] = line.split(/\s+/);
    const args = rest.join(' ');
    if (keyword.toUpperCase() === 'FROM') {
      const words = args.split(/\s+/).filter((w) => !w.startsWith('--'));
      const as = words.findIndex((w) => w.toUpperCase() === 'AS');
      stages.push({ image: words[0] ?? '', name: as >= 0 ? (words[as + 1] ?? '') : String(stages.length), instructions: [] });
      continue;
    }
    const stage = stages.at(-1);
    if (!stage) throw new Error(`Dockerfile: ${keyword} before the first FROM`);
    stage.instructions.push({ keyword: keyword.toUpperCase(), args });
  }
  return stages;
}

/** `ENV A=1 B="2"` (and the legacy `ENV A 1`) of a stage, later ones winning. */
function stageEnv(stage: Stage): Record<string, string> {
  const env: Record<string, string> = {};
  for (const { keyword, args } of stage.instructions) {
    if (keyword !== 'ENV') continue;
    if (!args.includes('=')) {
      const [name = '', ...value] = args.split(/\s+/);
      env[name] = value.join(' ');
      continue;
    }
    for (const match of args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|'[^']*'|\S+)/g)) {
      env[match[1] as string] = (match[2] as string).replace(/^["']|["']$/g, '');
    }
  }
  return env;
}

const runs = (stage: Stage) => stage.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args);
const aptPackages = (stage: Stage) =>
  runs(stage).flatMap((run) => [...run.matchAll(/apt-get install ([^&;|]+)/g)].flatMap((m) => (m[1] as string).split(/\s+/)))
    .filter((word) => word && !word.startsWith('-'));

/** A tag that names one release (x.y or x.y.z, optionally with a variant suffix), never a moving one. */
function imageTag(image: string): string | undefined {
  const slash = image.lastIndexOf('/');
  const colon = image.lastIndexOf(':');
  return colon > slash ? image.slice(colon + 1) : undefined;
}
const pinnedTag = /^\d+\.\d+(\.\d+)?(-[a-z0-9.]+)*$/;

// ---------------------------------------------------------------------------------------------------------------
// Compose

/** KEY=VALUE lines of a compose .env file. */
function parseDotenv(text: string): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq < 1) throw new Error(`.env: not KEY=VALUE: ${line}`);
    vars[line.slice(0, eq).trim()] = line.slice(eq + 1).trim().replace(/^(["'])(.*)\1$/, '$2');
  }
  return vars;
}

/** A value standing in for a secret the operator provides: long and URL-safe, so it passes every setting's rule. */
const placeholder = (name: string) => `placeholder-${name.toLowerCase().replace(/_/g, '-')}-0123456789abcdef`;

interface Reference {
  name: string;
  operator: string;
}

/**
 * Compose interpolation of one string: $$, $VAR, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}.
 * Values come from the folder's .env. A variable required with `:?` and left empty there (a secret) gets a placeholder:
 * the operator provides it, and compose refuses to start until they do. A variable without a default that the .env
 * does not list is a problem: the .env is the complete list of what an environment needs.
 */
function interpolate(value: string, dotenv: Record<string, string>, problems: string[], references: Reference[]): string {
  return value.replace(
    /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
    (whole, braced?: string, operator?: string, argument?: string, bare?: string) => {
      if (whole === '$$') return '$';
      const name = (braced ?? bare) as string;
      const op = operator ?? '';
      references.push({ name, operator: op });
      const listed = name in dotenv;
      const current = dotenv[name];
      if (op === ':-') return current || (argument ?? '');
      if (op === '-') return listed ? (current as string) : (argument ?? '');
      if (!listed) {
        problems.push(`\${${name}} is used but not listed in .env`);
        return '';
      }
      if (op === ':?') return current || placeholder(name);
      return current as string;
    },
  );
}

function interpolateDeep(value: unknown, dotenv: Record<string, string>, problems: string[], references: Reference[]): unknown {
  if (typeof value === 'string') return interpolate(value, dotenv, problems, references);
  if (Array.isArray(value)) return value.map((v) => interpolateDeep(v, dotenv, problems, references));
  if (isObject(value)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolateDeep(v, dotenv, problems, references)]));
  }
  return value;
}

interface ComposeEnv {
  name: Environment;
  dir: string;
  text: string;
  dotenv: Record<string, string>;
  services: Record<string, Json>;
  problems: string[];
  references: Reference[];
}

function loadCompose(name: Environment): ComposeEnv {
  const dir = join(buildDir, name);
  const text = readText(join(dir, 'docker-compose.yml'));
  const dotenv = parseDotenv(readText(join(dir, '.env')));
  const problems: string[] = [];
  const references: Reference[] = [];
  const raw = obj(parse(text, { merge: true }));
  const services = obj(interpolateDeep(raw.services, dotenv, problems, references)) as Record<string, Json>;
  return { name, dir, text, dotenv, services, problems, references };
}

/** `environment` (mapping or list) over `env_file`: exactly what the container's process sees from compose. */
function containerEnv(compose: ComposeEnv, service: Json): Record<string, string> {
  const env: Record<string, string> = {};
  const files = arr(service.env_file).length ? arr(service.env_file) : service.env_file ? [service.env_file] : [];
  for (const file of files) {
    const path = typeof file === 'string' ? file : str(obj(file).path);
    Object.assign(env, parseDotenv(readText(resolve(compose.dir, path))));
  }
  const environment = service.environment;
  if (Array.isArray(environment)) {
    for (const entry of environment) {
      const [key = '', ...value] = str(entry).split('=');
      env[key] = value.join('=');
    }
  } else {
    for (const [key, value] of Object.entries(obj(environment))) env[key] = str(value);
  }
  return env;
}

const command = (service: Json) => (Array.isArray(service.command) ? service.command.map(str).join(' ') : str(service.command));
const kafkaServices = (compose: ComposeEnv) =>
  Object.entries(compose.services).filter(([, s]) => str(s.image).split(':')[0]?.endsWith('/kafka'));

/** Compose durations: 30s, 1m30s, 1500ms. */
function durationMs(value: unknown): number {
  let ms = 0;
  const units: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001 };
  for (const match of str(value).matchAll(/(\d+(?:\.\d+)?)(ms|us|h|m|s)/g)) {
    ms += Number(match[1]) * (units[match[2] as string] ?? 0);
  }
  return ms;
}

function mustLoad(env: Record<string, string | undefined>): { settings?: Settings; error?: string } {
  try {
    return { settings: loadSettings(env) };
  } catch (error) {
    return { error: (error as Error).message };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Kubernetes

const k8sDir = join(buildDir, 'production', 'k8s');
const manifests = readdirSync(k8sDir)
  .filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))
  .flatMap((file) =>
    parseAllDocuments(readText(join(k8sDir, file))).map((doc) => {
      if (doc.errors.length) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join('; ')}`);
      return { file, doc: obj(doc.toJS()) };
    }),
  )
  .filter(({ doc }) => doc.kind);
const ofKind = (kind: string) => manifests.filter(({ doc }) => doc.kind === kind).map(({ doc }) => doc);
const named = (kind: string, name: string) => ofKind(kind).find((d) => obj(d.metadata).name === name);
const podSpec = (workload: Json) => obj(obj(obj(workload.spec).template).spec);
const containers = (workload: Json) => arr(podSpec(workload).containers).map(obj);
const labelsMatch = (selector: unknown, labels: unknown) =>
  Object.keys(obj(selector)).length > 0 && Object.entries(obj(selector)).every(([k, v]) => obj(labels)[k] === v);

/** The documented `kubectl create secret generic NAME --from-literal=KEY=VALUE ...` command: name and placeholder values. */
function documentedSecret(): { name: string; values: Record<string, string> } {
  const readme = readText(join(k8sDir, 'README.md'));
  const name = /create secret generic\s+([a-z0-9-]+)/.exec(readme)?.[1] ?? '';
  const values: Record<string, string> = {};
  for (const m of readme.matchAll(/--from-literal=([A-Za-z0-9_]+)=(?:'([^']*)'|"([^"]*)"|(\S+))/g)) {
    values[m[1] as string] = (m[2] ?? m[3] ?? m[4]) as string;
  }
  return { name, values };
}

/** The environment a Kubernetes container gets: ConfigMaps, Secrets (documented placeholder values) and literals. */
function k8sEnv(container: Json, problems: string[]): Record<string, string> {
  const secret = documentedSecret();
  const env: Record<string, string> = {};
  const configMap = (name: string) => {
    const found = named('ConfigMap', name);
    if (!found) problems.push(`ConfigMap ${name} is referenced but not defined`);
    return obj(found?.data);
  };
  const secretValues = (name: string) => {
    if (name !== secret.name) problems.push(`Secret ${name} is referenced but README documents ${secret.name}`);
    return secret.values;
  };
  for (const from of arr(container.envFrom).map(obj)) {
    if (from.configMapRef) Object.assign(env, configMap(str(obj(from.configMapRef).name)));
    if (from.secretRef) Object.assign(env, secretValues(str(obj(from.secretRef).name)));
  }
  for (const entry of arr(container.env).map(obj)) {
    const name = str(entry.name);
    const source = obj(entry.valueFrom);
    if ('value' in entry) env[name] = str(entry.value);
    else if (source.configMapKeyRef) {
      const ref = obj(source.configMapKeyRef);
      const data = configMap(str(ref.name));
      if (!(str(ref.key) in data)) problems.push(`${name}: ConfigMap ${str(ref.name)} has no key ${str(ref.key)}`);
      env[name] = str(data[str(ref.key)]);
    } else if (source.secretKeyRef) {
      const ref = obj(source.secretKeyRef);
      const values = secretValues(str(ref.name));
      if (!(str(ref.key) in values)) problems.push(`${name}: key ${str(ref.key)} is not in the documented kubectl create secret command`);
      env[name] = str(values[str(ref.key)]);
    }
  }
  return env;
}

function preStopMs(container: Json): number {
  const preStop = obj(obj(container.lifecycle).preStop);
  const sleep = obj(preStop.sleep).seconds;
  if (sleep !== undefined) return Number(sleep) * 1000;
  const cmd = arr(obj(preStop.exec).command).map(str).join(' ');
  const seconds = /\bsleep\s+(\d+(?:\.\d+)?)/.exec(cmd)?.[1];
  return seconds ? Number(seconds) * 1000 : 0;
}

// Paths the deployment files probe or scrape, per process; each is requested from a real api / worker at the end.
type Role = 'api' | 'worker';
const probedPaths: Record<Role, Map<string, string[]>> = { api: new Map(), worker: new Map() };
const probed = (role: Role, path: string, where: string) =>
  probedPaths[role].set(path, [...(probedPaths[role].get(path) ?? []), where]);

/** `fetch('http://127.0.0.1:PORT/health/...')` in a compose health check: the port and path it probes. */
function healthUrl(test: string): { port: number; path: string } | undefined {
  const match = /https?:\/\/(?:127\.0\.0\.1|localhost):(\d+)(\/[\w/-]*)/.exec(test);
  return match ? { port: Number(match[1]), path: match[2] as string } : undefined;
}

// ---------------------------------------------------------------------------------------------------------------

const dockerfile = readText(join(buildDir, 'Dockerfile'));
const stages = parseDockerfile(dockerfile);
const runtime = stages.at(-1) as Stage;

t.test('Dockerfile: multi-stage, no CMD, a slim non-root runtime with a liveness HEALTHCHECK', async (t) => {
  t.ok(stages.length >= 2, `multi-stage (${stages.length} stages)`);
  const all = stages.flatMap((s) => s.instructions);
  t.same(all.filter((i) => i.keyword === 'CMD'), [], 'no CMD in any stage: each compose file / manifest sets the command');
  t.same(all.filter((i) => i.keyword === 'ENTRYPOINT'), [], 'no ENTRYPOINT that would run something by itself');

  const names = new Set<string>();
  for (const stage of stages) {
    if (!names.has(stage.image)) {
      const tag = imageTag(stage.image);
      t.match(tag, pinnedTag, `base image ${stage.image} is pinned to an exact version`);
      t.not(tag, 'latest');
    }
    names.add(stage.name);
  }
  const node = stages.map((s) => s.image).filter((i) => i.startsWith('node:'));
  t.ok(node.length > 0, 'built on the official node image');
  for (const image of node) {
    t.equal(imageTag(image)?.split('.')[0], process.versions.node.split('.')[0], `${image}: the Node major the project runs on`);
  }
  for (const from of all.filter((i) => i.keyword === 'COPY' && i.args.includes('--from='))) {
    const stage = /--from=(\S+)/.exec(from.args)?.[1] ?? '';
    t.ok(names.has(stage), `COPY --from=${stage} names a stage`);
  }

  const buildStage = stages.find((s) => s.name === 'build');
  t.ok(buildStage, 'a stage named build (build/local develops in it)');
  if (buildStage) {
    t.equal(stageEnv(buildStage).CKJS_LINKING, 'dynamic', 'the Kafka client builds librdkafka linked to the Debian libraries');
    t.ok(runs(buildStage).some((r) => /\bnpm ci\b/.test(r)), 'npm ci from the lockfile');
    t.ok(runs(buildStage).some((r) => /\bnpm run build\b/.test(r)), 'compiles the TypeScript');
  }

  t.equal(runtime.name, 'runtime', 'the last stage is the runtime');
  const user = runtime.instructions.filter((i) => i.keyword === 'USER').at(-1)?.args.split(':')[0];
  t.ok(user && user !== 'root' && user !== '0', `runtime runs as a non-root user (${user})`);
  const env = stageEnv(runtime);
  t.equal(env.NODE_ENV, 'production');
  t.equal(env.NPM_CONFIG_IGNORE_SCRIPTS, 'true', 'npm run db:migrate runs no pre-hook (no compiler in the image)');
  t.ok(runtime.instructions.some((i) => i.keyword === 'EXPOSE' && i.args.split(/\s+/).includes('3000')), 'EXPOSE 3000');

  const healthcheck = runtime.instructions.find((i) => i.keyword === 'HEALTHCHECK');
  const path = /\/health\/[a-z]+/.exec(healthcheck?.args ?? '')?.[0];
  t.equal(path, '/health/live', 'HEALTHCHECK probes liveness');
  if (path) probed('api', path, 'Dockerfile HEALTHCHECK');

  // Compiled in the build stage, never rebuilt where there is no compiler.
  const packages = aptPackages(runtime);
  t.same(packages.filter((p) => /-dev$|^g\+\+$|^gcc$|^make$|^build-essential$|^python3$/.test(p)), [], 'no compilers or -dev packages');
  t.same(runs(runtime).filter((r) => /\bnpm (ci|install|i|rebuild)\b/.test(r)), [], 'no npm install in the runtime stage');
  // The runtime library of every -dev package the addon was linked against.
  const runtimeOf: Record<string, string> = {
    'libssl-dev': 'libssl3',
    'libsasl2-dev': 'libsasl2-2',
    'zlib1g-dev': 'zlib1g',
    'libzstd-dev': 'libzstd1',
    'liblz4-dev': 'liblz4-1',
    'libcurl4-openssl-dev': 'libcurl4',
  };
  for (const dev of buildStage ? aptPackages(buildStage).filter((p) => p.endsWith('-dev')) : []) {
    t.ok(runtimeOf[dev], `${dev}: its runtime package is known to this test`);
    t.ok(packages.includes(runtimeOf[dev] ?? dev), `runtime installs ${runtimeOf[dev]} (for ${dev})`);
  }
  const copies = runtime.instructions.filter((i) => i.keyword === 'COPY').map((i) => i.args);
  for (const needed of ['node_modules', 'dist', 'drizzle', 'package.json']) {
    t.ok(copies.some((c) => c.includes(`/app/${needed}`)), `runtime gets ${needed}`);
  }
});

t.test('.dockerignore keeps host builds out and lets the sources in', async (t) => {
  const patterns = readText(join(root, '.dockerignore')).split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  for (const needed of ['node_modules', 'dist', '.git']) t.ok(patterns.includes(needed), `${needed} is ignored`);
  const sources = stages
    .flatMap((s) => s.instructions)
    .filter((i) => i.keyword === 'COPY' && !i.args.includes('--from='))
    .flatMap((i) => i.args.split(/\s+/).filter((w) => !w.startsWith('--')).slice(0, -1));
  t.ok(sources.length > 0);
  for (const source of sources) {
    t.ok(existsSync(join(root, source)), `${source} exists in the repository`);
    t.notOk(patterns.some((p) => p === source || p === `${source}/` || p === source.split('/')[0]), `${source} is not ignored`);
  }
});

for (const name of environments) {
  t.test(`compose: build/${name}`, async (t) => {
    const compose = loadCompose(name);
    const { services } = compose;
    t.ok(existsSync(join(compose.dir, 'README.md')), 'has a README.md');
    t.same(compose.problems, [], 'every interpolated variable is listed in .env');
    t.notMatch(compose.text.toLowerCase(), 'zookeeper', 'no ZooKeeper');
    t.notMatch(readText(join(compose.dir, '.env')).toLowerCase(), 'zookeeper');

    for (const service of [...appServices, 'postgres', 'redis']) t.ok(services[service], `service ${service}`);
    const kafkas = kafkaServices(compose);
    t.ok(kafkas.length >= 1, `Kafka (${kafkas.map(([n]) => n).join(', ')})`);
    const stageNames = stages.map((s) => s.name);
    const deployed = name !== 'local';

    // Images: ours from build/Dockerfile, everyone else's pinned.
    for (const [serviceName, service] of Object.entries(services)) {
      const image = str(service.image);
      const tag = imageTag(image);
      t.ok(tag && tag !== 'latest', `${serviceName}: image ${image} has a tag other than latest`);
      if (service.build) {
        const buildSection = obj(service.build);
        t.equal(resolve(compose.dir, str(buildSection.context)), resolve(root), `${serviceName}: built from the repository root`);
        t.equal(str(buildSection.dockerfile), 'build/Dockerfile');
        t.equal(buildSection.target, deployed ? 'runtime' : 'build', `${serviceName}: stage ${str(buildSection.target)}`);
        t.ok(stageNames.includes(str(buildSection.target)), 'the target is a stage of the Dockerfile');
      } else {
        t.match(tag, pinnedTag, `${serviceName}: ${image} is pinned to a version`);
      }
    }
    for (const service of appServices) t.ok(services[service]?.build, `${service} runs our image`);

    // Ordering: migrations and topics first, then the app, once every dependency is healthy.
    const condition = (service: string, dependency: string) => str(obj(obj(services[service]?.depends_on)[dependency]).condition);
    for (const service of ['api', 'worker']) {
      for (const oneShot of oneShots) t.equal(condition(service, oneShot), 'service_completed_successfully', `${service} waits for ${oneShot}`);
      for (const dependency of ['postgres', 'redis', ...kafkas.map(([n]) => n)]) {
        t.equal(condition(service, dependency), 'service_healthy', `${service} waits for ${dependency} to be healthy`);
      }
    }
    t.equal(condition('migrate', 'postgres'), 'service_healthy', 'migrate waits for postgres');
    for (const [kafka] of kafkas) t.equal(condition('topics', kafka), 'service_healthy', `topics waits for ${kafka}`);

    // Health checks of the long-running services.
    const healthTest = (service: string) => arr(obj(services[service]?.healthcheck).test).map(str).join(' ');
    t.match(healthTest('postgres'), /pg_isready/, 'postgres: pg_isready');
    t.match(healthTest('redis'), /redis-cli ping/, 'redis: redis-cli ping');
    for (const [kafka] of kafkas) t.match(healthTest(kafka), /kafka-broker-api-versions\.sh --bootstrap-server/, `${kafka}: broker API check`);
    // api and worker: an HTTP check on the port their settings listen on (compared below), one path for both.
    const probes: Partial<Record<Role, { port: number; path: string }>> = {};
    for (const service of ['api', 'worker'] as const) {
      t.notOk(obj(services[service]?.healthcheck).disable, `${service}: health check on`);
      probes[service] = healthUrl(healthTest(service));
      t.ok(probes[service], `${service}: an HTTP health check`);
      if (probes[service]) probed(service, probes[service].path, `build/${name} ${service} healthcheck`);
    }
    t.equal(probes.worker?.path, probes.api?.path, 'api and worker are checked on the same health route');
    if (deployed) {
      // The runtime image's HEALTHCHECK would fail where no HTTP server runs.
      for (const service of oneShots) t.equal(obj(services[service]?.healthcheck).disable, true, `${service}: image HEALTHCHECK off`);
    }

    // Commands.
    if (deployed) {
      t.equal(command(services.api as Json), 'node dist/main.js');
      t.equal(command(services.worker as Json), 'node dist/worker.js');
      t.equal(command(services.migrate as Json), 'npm run db:migrate');
      t.equal(command(services.topics as Json), 'npm run kafka:topics');
      t.equal(packageJson.scripts['db:migrate'], 'node dist/migrate.js');
      t.equal(packageJson.scripts['kafka:topics'], 'node dist/kafka-topics.js');
      for (const source of ['main.ts', 'worker.ts', 'migrate.ts', 'kafka-topics.ts']) t.ok(existsSync(join(root, 'app', source)), `app/${source}`);
    } else {
      t.equal(command(services.api as Json), 'npm run dev');
      t.match(packageJson.scripts.dev, /tsx watch app\/main\.ts/);
      for (const service of appServices.filter((s) => s !== 'api')) {
        const file = /app\/[\w/-]+\.ts/.exec(command(services[service] as Json))?.[0];
        t.ok(file && existsSync(join(root, file)), `${service} runs ${file}`);
      }
      t.match(command(services.worker as Json), /tsx watch app\/worker\.ts/);
      const mounts = arr(services.api?.volumes).map(str);
      t.ok(mounts.some((m) => m.startsWith('../../app:/app/app')), 'app/ is bind-mounted so edits reload');
    }

    // Settings: exactly the environment each app container gets must load, pointing at the compose services.
    const shutdownMs: Record<string, number> = {};
    for (const service of appServices) {
      const env = containerEnv(compose, services[service] as Json);
      if (service === 'worker') t.ok(env.WORKER_PORT, `worker: WORKER_PORT is set explicitly (${env.WORKER_PORT})`);
      const { settings, error } = mustLoad(env);
      t.notOk(error, `${service}: loadSettings accepts its environment${error ? `\n${error}` : ''}`);
      if (!settings) continue;
      t.equal(settings.APP_ENV, name, `${service}: APP_ENV=${name}`);
      t.ok(settings.DATABASE_URL && settings.REDIS_URL && settings.KAFKA_BROKERS, `${service}: no embedded fallback`);
      t.ok(services[new URL(settings.DATABASE_URL ?? 'x:').hostname], `${service}: DATABASE_URL points at a compose service`);
      t.ok(services[new URL(settings.REDIS_URL ?? 'x:').hostname], `${service}: REDIS_URL points at a compose service`);
      const brokers = (settings.KAFKA_BROKERS ?? '').split(',');
      for (const broker of brokers) {
        const [host = ''] = broker.split(':');
        const advertised = str(obj(services[host]?.environment).KAFKA_ADVERTISED_LISTENERS);
        t.ok(advertised.includes(`//${broker}`), `${service}: broker ${broker} is a Kafka service advertising that address`);
      }
      t.ok(settings.KAFKA_TOPIC_REPLICATION <= kafkas.length, `${service}: replication ${settings.KAFKA_TOPIC_REPLICATION} <= ${kafkas.length} brokers`);
      t.equal(settings.HOST, '0.0.0.0', `${service}: listens on every interface of the container`);
      shutdownMs[service] = settings.SHUTDOWN_GRACE_MS;
      if (service === 'api') t.equal(probes.api?.port, settings.PORT, `api: health check on its PORT ${settings.PORT}`);
      if (service === 'worker') {
        const replicas = Number(obj(services.worker?.deploy).replicas ?? 1);
        t.ok(replicas <= settings.KAFKA_TOPIC_PARTITIONS, `worker replicas ${replicas} <= ${settings.KAFKA_TOPIC_PARTITIONS} partitions`);
        const port = settings.WORKER_PORT;
        t.equal(probes.worker?.port, port, `worker: health check on its WORKER_PORT ${port}`);
        // Metrics: on the host's loopback in local; deployed, only on the compose network (for a Prometheus there).
        const published = arr(services.worker?.ports).map(str);
        if (deployed) {
          t.same(published, [], 'worker: not published on the host');
          t.ok(arr(services.worker?.expose).map(str).includes(String(port)), `worker: expose ${port} (scraped on the compose network)`);
        } else {
          t.ok(published.some((p) => p.startsWith('127.0.0.1:') && p.endsWith(`:${port}`)), `worker: ${port} published on 127.0.0.1`);
        }
      }
    }

    // KRaft: every node broker + controller, the quorum = exactly the Kafka services, one cluster id.
    const voters = new Set<string>();
    const clusterIds = new Set<string>();
    const nodeIds = new Set<string>();
    for (const [kafka, service] of kafkas) {
      const env = obj(service.environment);
      t.same(str(env.KAFKA_PROCESS_ROLES).split(',').sort(), ['broker', 'controller'], `${kafka}: KRaft combined mode`);
      t.ok(str(env.CLUSTER_ID).length >= 22, `${kafka}: CLUSTER_ID`);
      clusterIds.add(str(env.CLUSTER_ID));
      nodeIds.add(str(env.KAFKA_NODE_ID));
      str(env.KAFKA_CONTROLLER_QUORUM_VOTERS).split(',').forEach((v) => voters.add(v));
      const controller = str(env.KAFKA_CONTROLLER_LISTENER_NAMES);
      t.ok(controller, `${kafka}: KAFKA_CONTROLLER_LISTENER_NAMES`);
      t.match(str(env.KAFKA_LISTENERS), `${controller}://`, `${kafka}: listens on the controller listener`);
      t.notMatch(str(env.KAFKA_ADVERTISED_LISTENERS), `${controller}://`, `${kafka}: never advertises the controller listener`);
      const protocols = str(env.KAFKA_LISTENER_SECURITY_PROTOCOL_MAP).split(',').map((p) => p.split(':')[0]);
      for (const listener of str(env.KAFKA_LISTENERS).split(',').map((l) => l.split(':')[0])) {
        t.ok(protocols.includes(listener), `${kafka}: ${listener} has a security protocol`);
      }
      // Internal topics (consumer offsets!) cannot be created with more replicas than brokers; Kafka's default is 3.
      for (const key of ['KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR', 'KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR']) {
        t.ok(Number(env[key] ?? 3) <= kafkas.length, `${kafka}: ${key} fits ${kafkas.length} broker(s)`);
      }
      const minIsr = Number(env.KAFKA_MIN_INSYNC_REPLICAS ?? 1);
      const replication = Number(env.KAFKA_DEFAULT_REPLICATION_FACTOR ?? 1);
      t.ok(minIsr === 1 || minIsr < replication, `${kafka}: min.insync.replicas ${minIsr} leaves room for one broker down`);
    }
    t.equal(clusterIds.size, 1, 'one cluster id');
    t.equal(nodeIds.size, kafkas.length, 'distinct node ids');
    t.same([...voters].sort(), kafkas.map(([kafka, s]) => `${str(obj(s.environment).KAFKA_NODE_ID)}@${kafka}:9093`).sort(), 'quorum voters = the Kafka services');

    if (!deployed) {
      for (const [serviceName, service] of Object.entries(services)) {
        for (const port of arr(service.ports).map(str)) t.match(port, /^127\.0\.0\.1:/, `${serviceName}: ${port} published on loopback only`);
      }
      return;
    }

    // Deployed environments: limits, restart policies, graceful stop, no published data stores, no committed secrets.
    for (const [serviceName, service] of Object.entries(services)) {
      const limits = obj(obj(obj(service.deploy).resources).limits);
      t.ok(limits.cpus && limits.memory, `${serviceName}: cpu and memory limits`);
      const restart = str(service.restart);
      if (oneShots.includes(serviceName)) t.equal(restart, 'no', `${serviceName}: runs once`);
      else t.match(restart, /^(unless-stopped|always)$/, `${serviceName}: restarted`);
      if (!appServices.includes(serviceName)) t.notOk(service.ports, `${serviceName}: not published on the host`);
    }
    for (const service of appServices) t.equal(services[service]?.init, true, `${service}: init forwards signals`);
    for (const service of ['api', 'worker']) {
      const stopMs = durationMs(services[service]?.stop_grace_period);
      t.ok(stopMs > (shutdownMs[service] ?? Infinity), `${service}: stop_grace_period ${stopMs} ms > SHUTDOWN_GRACE_MS ${shutdownMs[service]}`);
    }
    for (const [key, value] of Object.entries(compose.dotenv)) {
      if (/PASSWORD|SECRET|TOKEN/.test(key)) t.equal(value, '', `.env: ${key} has no value in the repository`);
    }
    // An empty variable must either be required (`:?`, compose fails loudly) or have a default.
    for (const { name: variable, operator } of compose.references) {
      if (compose.dotenv[variable] === '' && operator === '') t.fail(`\${${variable}} is empty in .env and neither required nor defaulted`);
    }
    t.ok(compose.references.some((r) => r.name === 'JWT_SECRET' && r.operator === ':?'), 'JWT_SECRET is required with ${JWT_SECRET:?...}');
  });
}

t.test('compose: production runs a 3-node KRaft cluster with replication 3', async (t) => {
  const compose = loadCompose('production');
  const kafkas = kafkaServices(compose);
  t.equal(kafkas.length, 3);
  for (const [kafka, service] of kafkas) {
    const env = obj(service.environment);
    t.equal(Number(env.KAFKA_DEFAULT_REPLICATION_FACTOR), 3, `${kafka}: default replication 3`);
    t.equal(Number(env.KAFKA_MIN_INSYNC_REPLICAS), 2, `${kafka}: min.insync.replicas 2`);
  }
  const settings = loadSettings(containerEnv(compose, compose.services.api as Json));
  t.equal(settings.KAFKA_TOPIC_REPLICATION, 3, 'the service creates its topics with 3 replicas');
});

t.test('Kubernetes manifests', async (t) => {
  t.same(ofKind('Secret'), [], 'no Secret manifest (values never live in the repository)');
  t.notMatch(manifests.map(({ doc }) => JSON.stringify(doc)).join('\n').toLowerCase(), 'zookeeper');
  const secret = documentedSecret();
  t.ok(secret.name, `README documents kubectl create secret generic ${secret.name}`);
  const configMap = obj(ofKind('ConfigMap')[0]?.data);
  for (const key of Object.keys(configMap)) t.notMatch(key, /PASSWORD|SECRET|_URL$/, `ConfigMap: ${key} is not a secret`);

  const podLabels = (workload: Json) => obj(obj(obj(workload.spec).template).metadata).labels;
  const deployments = Object.fromEntries(ofKind('Deployment').map((d) => [str(obj(podLabels(d))['app.kubernetes.io/component']), d]));
  t.ok(deployments.api, 'api Deployment');
  t.ok(deployments.worker, 'worker Deployment');
  const jobs = ofKind('Job');
  t.ok(jobs.some((j) => containers(j).some((c) => arr(c.command).map(str).join(' ') === 'npm run db:migrate')), 'a Job runs npm run db:migrate');

  const images = new Set<string>();
  const settingsOf: Record<string, Settings> = {};
  for (const workload of [...Object.values(deployments), ...jobs]) {
    const workloadName = str(obj(workload.metadata).name);
    const pod = podSpec(workload);
    const security = obj(pod.securityContext);
    t.equal(security.runAsNonRoot, true, `${workloadName}: runAsNonRoot`);
    t.ok(Number(security.runAsUser) > 0, `${workloadName}: a numeric non-root uid the kubelet can verify`);
    for (const container of containers(workload)) {
      images.add(str(container.image));
      const resources = obj(container.resources);
      for (const kind of ['requests', 'limits']) t.ok(obj(resources[kind]).cpu && obj(resources[kind]).memory, `${workloadName}: ${kind}`);
      const problems: string[] = [];
      const env = k8sEnv(container, problems);
      t.same(problems, [], `${workloadName}: every ConfigMap/Secret reference resolves`);
      const { settings, error } = mustLoad(env);
      t.notOk(error, `${workloadName}: loadSettings accepts ConfigMap + Secret${error ? `\n${error}` : ''}`);
      if (settings) {
        t.equal(settings.APP_ENV, 'production');
        settingsOf[workloadName] = settings;
      }
    }
  }
  t.equal(images.size, 1, 'one image for every workload');
  const [image = ''] = images;
  t.match(imageTag(image), /^\d+\.\d+\.\d+$/, `image ${image} is pinned to a release`);
  t.match(readText(join(k8sDir, 'README.md')), image, 'README names the image placeholder to replace');

  // api: probes on the routes, graceful termination, Service, HPA, PDB.
  const api = deployments.api as Json;
  const apiName = str(obj(api.metadata).name);
  const apiSettings = settingsOf[apiName];
  const apiContainer = containers(api)[0] ?? {};
  /** A container port by number or by name. */
  const portIn = (container: Json, port: unknown) =>
    typeof port === 'number' ? port : Number(arr(container.ports).map(obj).find((p) => p.name === port)?.containerPort);
  const portOf = (port: unknown) => portIn(apiContainer, port);
  const expectedProbes = [['livenessProbe', '/health/live'], ['readinessProbe', '/health/ready'], ['startupProbe', '/health/live']] as const;
  /** Probes on the expected routes and port, and Prometheus scrape annotations on that port, of one Deployment. */
  const checkHttp = (role: Role, workload: Json, port: number | undefined) => {
    const container = containers(workload)[0] ?? {};
    for (const [kind, expected] of expectedProbes) {
      const httpGet = obj(obj(container[kind]).httpGet);
      t.equal(httpGet.path, expected, `${role} ${kind} on ${expected}`);
      t.equal(portIn(container, httpGet.port), port, `${role} ${kind} on the port it listens on (${port})`);
      if (httpGet.path) probed(role, str(httpGet.path), `k8s ${role} ${kind}`);
    }
    const annotations = obj(obj(obj(obj(workload.spec).template).metadata).annotations);
    t.equal(annotations['prometheus.io/scrape'], 'true', `${role}: Prometheus scrape annotation`);
    t.equal(Number(annotations['prometheus.io/port']), port, `${role}: scraped on the port it listens on (${port})`);
    t.equal(annotations['prometheus.io/path'], '/metrics', `${role}: scraped on /metrics`);
    if (annotations['prometheus.io/path']) probed(role, str(annotations['prometheus.io/path']), `k8s ${role} scrape annotation`);
  };
  checkHttp('api', api, apiSettings?.PORT);
  const grace = Number(podSpec(api).terminationGracePeriodSeconds ?? 30) * 1000;
  const needed = (apiSettings?.SHUTDOWN_GRACE_MS ?? Infinity) + preStopMs(apiContainer);
  t.ok(preStopMs(apiContainer) > 0, 'api: preStop pause so endpoints drain before SIGTERM');
  t.ok(grace > needed, `api: terminationGracePeriodSeconds ${grace} ms > SHUTDOWN_GRACE_MS + preStop ${needed} ms`);

  const apiLabels = podLabels(api);
  const service = ofKind('Service').find((s) => labelsMatch(obj(s.spec).selector, apiLabels));
  t.ok(service, 'a Service selects the api pods');
  for (const port of arr(obj(service?.spec).ports).map(obj)) t.equal(portOf(port.targetPort), apiSettings?.PORT, 'Service targets the app port');
  const hpaFor = (deployment: Json) => ofKind('HorizontalPodAutoscaler').find((h) => obj(obj(h.spec).scaleTargetRef).name === obj(deployment.metadata).name);
  const apiHpa = obj(hpaFor(api)?.spec);
  t.equal(hpaFor(api)?.apiVersion, 'autoscaling/v2', 'api HPA (autoscaling/v2)');
  t.ok(Number(apiHpa.minReplicas) >= 2, 'api: at least 2 replicas');
  const pdbFor = (labels: unknown) => ofKind('PodDisruptionBudget').find((p) => labelsMatch(obj(obj(p.spec).selector).matchLabels, labels));
  const apiPdb = obj(pdbFor(apiLabels)?.spec);
  t.ok(pdbFor(apiLabels), 'a PodDisruptionBudget covers the api pods');
  t.ok(apiPdb.minAvailable === undefined || Number(apiPdb.minAvailable) < Number(apiHpa.minReplicas), 'the api PDB lets a drain proceed');
  // Readiness on /health/ready makes every pod unready during a Kafka outage; the PDB must still let drains evict them.
  t.equal(apiPdb.unhealthyPodEvictionPolicy, 'AlwaysAllow', 'the api PDB lets unready pods be evicted');

  // worker: never more consumers than partitions; terminates after its in-flight messages.
  const worker = deployments.worker as Json;
  const workerName = str(obj(worker.metadata).name);
  const workerSettings = settingsOf[workerName];
  const partitions = workerSettings?.KAFKA_TOPIC_PARTITIONS ?? 0;
  t.equal(partitions, 6, 'production topics have 6 partitions');
  const workerHpa = obj(hpaFor(worker)?.spec);
  t.ok(Number(workerHpa.maxReplicas) <= partitions, `worker HPA maxReplicas ${str(workerHpa.maxReplicas)} <= ${partitions} partitions`);
  t.ok(Number(obj(worker.spec).replicas ?? 1) <= partitions, 'worker replicas <= partitions');
  t.ok(pdbFor(podLabels(worker)), 'a PodDisruptionBudget covers the workers');
  t.equal(obj(pdbFor(podLabels(worker))?.spec).unhealthyPodEvictionPolicy, 'AlwaysAllow', 'the worker PDB lets unready pods be evicted');
  const workerContainer = containers(worker)[0] ?? {};
  const workerGrace = Number(podSpec(worker).terminationGracePeriodSeconds ?? 30) * 1000;
  t.ok(workerGrace > (workerSettings?.SHUTDOWN_GRACE_MS ?? Infinity) + preStopMs(workerContainer), 'worker: grace period > SHUTDOWN_GRACE_MS');
  // app/worker.ts listens on WORKER_PORT for /health/* and /metrics: a named port, probes and scraping there.
  t.equal(portIn(workerContainer, 'http-metrics'), workerSettings?.WORKER_PORT, `worker: containerPort http-metrics = WORKER_PORT`);
  checkHttp('worker', worker, workerSettings?.WORKER_PORT);
});

t.test('every probed path is a route the api / the worker serves', async (t) => {
  const apps = { api: await build(t), worker: await buildWorker(t) };
  // The worker app really is the worker: no API routes (so a path it answers is one the worker itself serves).
  t.equal((await apps.worker.inject({ method: 'GET', url: '/v1/products' })).statusCode, 404, 'the worker serves no API routes');
  for (const role of ['api', 'worker'] as const) {
    const paths = probedPaths[role];
    t.ok(paths.size >= 3, `${role}: probed ${[...paths.keys()].join(', ')}`);
    for (const [path, where] of paths) {
      const response = await apps[role].inject({ method: 'GET', url: path });
      t.equal(response.statusCode, 200, `${role} ${path} (${where.join(', ')}) answers 200`);
    }
  }
});

t.test('the test helpers see what compose would', async (t) => {
  const problems: string[] = [];
  const refs: Reference[] = [];
  const env = { SET: 'v', EMPTY: '' };
  t.equal(interpolate('a$${SET}b', env, problems, refs), 'a${SET}b', '$$ escapes');
  t.equal(interpolate('${SET}-${EMPTY:-d}-${EMPTY-d}-${NONE:-x}', env, problems, refs), 'v-d--x');
  t.equal(interpolate('${EMPTY:?required}', env, problems, refs), placeholder('EMPTY'), 'a required empty value is a placeholder');
  t.same(problems, []);
  interpolate('${NONE}', env, problems, refs);
  t.same(problems, ['${NONE} is used but not listed in .env']);
  t.equal(durationMs('1m30s'), 90_000);
});

t.test('the image build runs the install hooks with the files they need', async (t) => {
  const dockerfile = readText(join(buildDir, 'Dockerfile'));
  const install = dockerfile.indexOf('RUN npm ci');
  t.ok(install > 0, 'the build stage installs with npm ci');
  const postinstall = packageJson.scripts.postinstall;
  if (!postinstall) return;
  for (const file of postinstall.match(/scripts\/[\w./-]+/g) ?? []) {
    const copy = dockerfile.search(new RegExp(`COPY\\s+(\\S+\\s+)*(${file.replace(/[.]/g, '\\.')}|scripts/?)\\s`));
    t.ok(copy > 0 && copy < install, `${file} (postinstall) is copied before npm ci`);
  }
});
