import t from 'tap';
import { build } from '../helpers/app.js';
import { createProduct, orderRequest } from '../helpers/catalog.js';
import { createAdmin, createUser } from '../helpers/users.js';

for (const embedded of [false, true]) {
  t.test(`${embedded ? 'embedded (PGlite, stand-ins)' : 'PostgreSQL + Redis'}`, async (t) => {
    const app = await build(t, { embedded });
    const admin = await createAdmin(app);

    t.test('20 concurrent orders for a stock of 5: exactly 5 succeed, stock ends at 0', async (t) => {
      const product = await createProduct(app, admin, { stock: 5 });
      const buyers = await Promise.all(Array.from({ length: 20 }, () => createUser(app, 'buyer')));
      const line = [{ productId: product.id, quantity: 1 }];
      const answers = await Promise.all(buyers.map((buyer) => app.inject(orderRequest(buyer, line))));
      const statuses = answers.map((a) => a.statusCode);
      t.equal(statuses.filter((s) => s === 201).length, 5, '5 orders created');
      t.equal(statuses.filter((s) => s === 409).length, 15, '15 refused');
      t.ok(answers.filter((a) => a.statusCode === 409).every((a) => a.json().code === 'INSUFFICIENT_STOCK'));
      const after = await app.inject({ method: 'GET', url: `/v1/products/${product.id}` });
      t.equal(after.json().stock, 0, 'final stock is 0, never negative');
    });

    t.test('10 concurrent POSTs with one Idempotency-Key: one order, one decrement', async (t) => {
      const product = await createProduct(app, admin, { stock: 100 });
      const buyer = await createUser(app, 'idem');
      const request = orderRequest(buyer, [{ productId: product.id, quantity: 3 }], 'same-key-1');
      const answers = await Promise.all(Array.from({ length: 10 }, () => app.inject(request)));
      const ids = new Set(answers.map((a) => a.json().id));
      t.equal(ids.size, 1, 'every answer carries the same order id');
      t.same(answers.map((a) => a.statusCode).sort(), [200, 200, 200, 200, 200, 200, 200, 200, 200, 201]);
      const after = await app.inject({ method: 'GET', url: `/v1/products/${product.id}` });
      t.equal(after.json().stock, 97, 'stock taken once');
      const mine = await app.inject({ method: 'GET', url: '/v1/orders', headers: buyer.auth });
      t.equal(mine.json().total, 1, 'one order exists');
    });
  });
}
