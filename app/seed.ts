// `npm run seed`: the SEED_ADMIN_* admin and a small sample catalog, on the database of DATABASE_URL (or the
// embedded PGlite folder in local). Idempotent: what exists is left exactly as it is (no update, no version bump),
// so running it twice, or against a database people already use, changes nothing the second time.
// It needs only the database: the admin's users.registered.v1 event goes to the outbox, and the relay of the
// running service publishes it. Exit codes: 0 done, 78 invalid settings, 1 failure (one line on stderr).
import pino from 'pino';
import { Value } from 'typebox/value';
import { safeUrl } from './core/adapter/postgres.js';
import { SkuTakenError } from './core/base/errors.js';
import { migrationsFolder, openDatabase } from './core/database.js';
import { createCache, createMemoryCacheStore } from './core/service/cache.js';
import { createOutbox } from './core/service/outbox/service.js';
import { loadSettingsOrExit } from './core/settings/index.js';
import { ProductsRepository } from './products/repository.js';
import { type CreateProduct, CreateProductSchema } from './products/schema.js';
import { createProductsService } from './products/service.js';
import { createProductsValidator } from './products/validator.js';
import { UsersRepository } from './users/repository.js';
import { createUserWriter } from './users/service.js';
import { createUsersValidator } from './users/validator.js';

/** The sample catalog. SKUs are the identity: a product whose SKU is live already is not touched. */
const sampleCatalog: CreateProduct[] = [
  { sku: 'SEED-MUG-001', name: 'Stoneware mug', description: '350 ml, dishwasher safe', priceCents: 1200, stock: 120 },
  { sku: 'SEED-TEE-001', name: 'Cotton T-shirt', description: 'Organic cotton, unisex, size M', priceCents: 1900, stock: 80 },
  { sku: 'SEED-CAP-001', name: 'Baseball cap', priceCents: 1500, stock: 60 },
  { sku: 'SEED-BAG-001', name: 'Canvas tote bag', description: '10 litres, inner pocket', priceCents: 1400, stock: 150 },
  { sku: 'SEED-NBK-001', name: 'Dotted notebook', description: 'A5, 160 pages', priceCents: 900, stock: 200 },
  { sku: 'SEED-PEN-001', name: 'Gel pen, black', priceCents: 250, stock: 500 },
  { sku: 'SEED-BTL-001', name: 'Steel water bottle', description: '750 ml, keeps cold for 24 h', priceCents: 2400, stock: 45 },
  { sku: 'SEED-STK-001', name: 'Sticker pack', description: 'Ten vinyl stickers', priceCents: 500, stock: 300 },
  { sku: 'SEED-HOD-001', name: 'Hooded sweatshirt', description: 'Heavyweight fleece, size L', priceCents: 4900, stock: 25 },
  { sku: 'SEED-LMP-001', name: 'Desk lamp', description: 'LED, three brightness levels', priceCents: 3900, stock: 0 },
];

const settings = loadSettingsOrExit();
const where = settings.DATABASE_URL ? safeUrl(settings.DATABASE_URL) : `embedded PGlite (${settings.PGLITE_DATA_DIR})`;
const out = (line: string) => process.stdout.write(`${line}\n`);

try {
  const connection = await openDatabase(settings);
  try {
    // As start-up does: local/test migrate first, deployments run `npm run db:migrate` before anything else.
    if (settings.DB_MIGRATE_ON_START) await connection.migrate(migrationsFolder);
    const { db } = connection;
    // Logs (none expected) to stderr: stdout carries the result.
    const log = pino({ level: settings.LOG_LEVEL }, pino.destination(2));
    out(`seed: ${where}`);

    const { SEED_ADMIN_EMAIL: email, SEED_ADMIN_PASSWORD: password } = settings;
    if (email && password) {
      const users = new UsersRepository(db);
      // Never started: the rows it writes are published by the relay of the running service.
      const outbox = createOutbox({
        db,
        log,
        publish: () => Promise.reject(new Error('the seed does not publish')),
        pollMs: settings.OUTBOX_POLL_MS,
        batchSize: settings.OUTBOX_BATCH_SIZE,
      });
      const writer = createUserWriter({ db, repository: users, validator: createUsersValidator(users), outbox });
      const outcome = await writer.ensureAdmin(email, password);
      const said = { created: 'created', promoted: 'already there, promoted to admin', present: 'already there' };
      out(`  admin ${email}: ${said[outcome]}`);
    } else {
      out('  admin: skipped (SEED_ADMIN_EMAIL and SEED_ADMIN_PASSWORD are not set)');
    }

    const repository = new ProductsRepository(db);
    // create() does not touch the cache; the service wants one, and this process's own is enough.
    const products = createProductsService({
      db,
      repository,
      validator: createProductsValidator(repository),
      cache: createCache(createMemoryCacheStore(100), log),
    });
    const created: string[] = [];
    const present: string[] = [];
    // The same rules as POST /v1/products: its body schema, then the service.
    const invalid = sampleCatalog.filter((item): boolean => !Value.Check(CreateProductSchema, item)).map((item) => item.sku);
    if (invalid.length > 0) throw new Error(`sample products break the product schema: ${invalid.join(', ')}`);
    for (const item of sampleCatalog) {
      if (await repository.findBySku(item.sku)) {
        present.push(item.sku);
        continue;
      }
      try {
        await products.create(item);
        created.push(item.sku);
      } catch (error) {
        // Another seed run created it in between.
        if (!(error instanceof SkuTakenError)) throw error;
        present.push(item.sku);
      }
    }
    out(`  products: ${created.length} created, ${present.length} already there`);
    if (created.length > 0) out(`    created: ${created.join(', ')}`);
    if (present.length > 0) out(`    already there: ${present.join(', ')}`);
  } finally {
    await connection.close();
  }
} catch (error) {
  // 42P01 undefined_table: a database nobody migrated yet.
  const hint = (error as { code?: string }).code === '42P01' ? ' (run `npm run db:migrate` first)' : '';
  process.stderr.write(`seed: failed on ${where}: ${(error as Error).message.split('\n')[0]}${hint}\n`);
  process.exit(1);
}
