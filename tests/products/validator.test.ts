import { randomBytes } from 'node:crypto';
import t from 'tap';
import { ProductsRepository } from '../../app/products/repository.js';
import { createProductsValidator } from '../../app/products/validator.js';
import { connectTestDatabase } from '../helpers/db.js';

/** The products business rules; skuIsFree asks the real repository on this file's own database. */

const { db } = await connectTestDatabase(t, 2);
const repository = new ProductsRepository(db);
const validator = createProductsValidator(repository);

const sku = () => `val-${randomBytes(4).toString('hex')}`;
const newProduct = (code: string) => repository.create({ sku: code, name: 'Validator Test', priceCents: 1, stock: 1 });

t.test('skuIsFree', async (t) => {
  t.test('a sku nobody holds is free', async (t) => {
    await t.resolves(validator.skuIsFree(sku()));
  });

  t.test('a sku a live product holds is SKU_TAKEN', async (t) => {
    const code = sku();
    await newProduct(code);
    await t.rejects(validator.skuIsFree(code), { code: 'SKU_TAKEN', statusCode: 409 });
    await t.rejects(validator.skuIsFree(code), { message: new RegExp(code) }, 'the message names the sku');
    await t.resolves(validator.skuIsFree(code.toUpperCase()), 'another case is another sku');
    await t.resolves(validator.skuIsFree(`${code}x`), 'a longer sku is free');
  });

  t.test('taken by the product itself is free when its id is the exception', async (t) => {
    const code = sku();
    const mine = await newProduct(code);
    const other = await newProduct(sku());
    await t.resolves(validator.skuIsFree(code, mine.id), 'keeping its own sku');
    await t.rejects(validator.skuIsFree(code, other.id), { code: 'SKU_TAKEN' }, 'another product taking it');
    await t.rejects(validator.skuIsFree(other.sku, mine.id), { code: 'SKU_TAKEN' }, 'taking the sku of another');
  });

  t.test('free again once its product is soft-deleted', async (t) => {
    const code = sku();
    const row = await newProduct(code);
    await repository.softDelete(row.id);
    await t.resolves(validator.skuIsFree(code));
  });
});
