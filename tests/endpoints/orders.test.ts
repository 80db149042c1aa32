import { randomBytes, randomUUID } from 'node:crypto';
import t from 'tap';
import { build } from '../helpers/app.js';
import { createProduct, orderRequest } from '../helpers/catalog.js';
import { expectError, ISO_UTC, type Page } from '../helpers/http.js';
import { createAdmin, createUser, type TestUser } from '../helpers/users.js';

/** /v1/orders as api.md writes it, through app.inject(), on PostgreSQL + Redis and on the embedded stand-ins. */

interface Order {
  id: string;
  userId: string;
  status: 'pending' | 'paid' | 'cancelled' | 'shipped';
  items: { productId: string; quantity: number; unitPriceCents: number }[];
  totalCents: number;
  version: number;
  createdAt: string;
  updatedAt?: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ORDER_FIELDS = ['createdAt', 'id', 'items', 'status', 'totalCents', 'userId', 'version'];

const newKey = () => randomBytes(8).toString('hex');

for (const embedded of [false, true]) {
  t.test(embedded ? 'embedded (PGlite, stand-ins)' : 'PostgreSQL + Redis', async (t) => {
    const app = await build(t, { embedded });
    const admin = await createAdmin(app);

    const stockOf = async (productId: string) => {
      const response = await app.inject({ method: 'GET', url: `/v1/products/${productId}` });
      return (response.json() as { stock: number }).stock;
    };
    const place = async (user: TestUser, items: { productId: string; quantity: number }[], key = newKey()) => {
      const response = await app.inject(orderRequest(user, items, key));
      if (response.statusCode !== 201) throw new Error(`order failed: ${response.statusCode} ${response.body}`);
      return response.json() as Order;
    };
    const get = (user: TestUser | undefined, url: string) =>
      app.inject({ method: 'GET', url: `/v1/orders${url}`, headers: user?.auth ?? {} });
    const post = (user: TestUser | undefined, url: string) =>
      app.inject({ method: 'POST', url: `/v1/orders${url}`, headers: user?.auth ?? {} });
    const countOrders = async (user: TestUser) => ((await get(user, '')).json() as Page<Order>).total;
    const setCheckout = (user: TestUser, flag: { enabled: boolean; rolloutPercent: number; allowUserIds?: string[] }) =>
      app.inject({ method: 'PUT', url: '/v1/feature-flags/orders.checkout', headers: user.auth, payload: flag });

    t.test('POST / places an order: 201 with exactly the api.md fields', async (t) => {
      const buyer = await createUser(app, 'buyer');
      const a = await createProduct(app, admin, { priceCents: 1250, stock: 10 });
      const b = await createProduct(app, admin, { priceCents: 399, stock: 5 });
      const response = await app.inject(
        orderRequest(buyer, [
          { productId: a.id, quantity: 2 },
          { productId: b.id, quantity: 5 },
        ]),
      );
      t.equal(response.statusCode, 201, response.body);
      t.match(response.headers['content-type'], /^application\/json/);
      const order = response.json() as Order;
      t.same(
        Object.keys(order)
          .filter((k) => k !== 'updatedAt')
          .sort(),
        ORDER_FIELDS,
        'id, userId, status, items, totalCents, version, createdAt (and at most updatedAt besides)',
      );
      t.match(order, { userId: buyer.id, status: 'pending', version: 1, totalCents: 2 * 1250 + 5 * 399 });
      t.match(order.id, UUID);
      t.match(order.createdAt, ISO_UTC);
      if (order.updatedAt !== undefined) t.match(order.updatedAt, ISO_UTC);
      t.same(
        [...order.items].sort((x, y) => x.productId.localeCompare(y.productId)),
        [
          { productId: a.id, quantity: 2, unitPriceCents: 1250 },
          { productId: b.id, quantity: 5, unitPriceCents: 399 },
        ].sort((x, y) => x.productId.localeCompare(y.productId)),
        'each item carries exactly productId, quantity and the unit price',
      );
      t.equal(await stockOf(a.id), 8, 'stock taken');
      t.equal(await stockOf(b.id), 0, 'all of it');

      const read = await get(buyer, `/${order.id}`);
      t.same(read.json(), order, 'GET /:id answers the same order');
    });

    t.test('the same Idempotency-Key again: 200 with the same order, stock taken once', async (t) => {
      const buyer = await createUser(app, 'idem');
      const product = await createProduct(app, admin, { stock: 10 });
      const key = `retry-${newKey()}`;
      const first = await app.inject(orderRequest(buyer, [{ productId: product.id, quantity: 4 }], key));
      const second = await app.inject(orderRequest(buyer, [{ productId: product.id, quantity: 4 }], key));
      t.equal(first.statusCode, 201);
      t.equal(second.statusCode, 200, 'a repeat answers 200');
      t.same(second.json(), first.json(), 'with the same order');
      t.equal(await stockOf(product.id), 6, 'stock taken once');
      t.equal(await countOrders(buyer), 1, 'one order');

      const other = await createUser(app, 'idem-other');
      const theirs = await app.inject(orderRequest(other, [{ productId: product.id, quantity: 1 }], key));
      t.equal(theirs.statusCode, 201, 'the same key of another user is another order');
      t.not(theirs.json().id, first.json().id);
    });

    t.test('the Idempotency-Key header is required, 1..128 characters', async (t) => {
      const buyer = await createUser(app, 'key');
      const product = await createProduct(app, admin, { stock: 10 });
      const items = [{ productId: product.id, quantity: 1 }];

      const missing = await app.inject({ method: 'POST', url: '/v1/orders', headers: buyer.auth, payload: { items } });
      const body = expectError(t, missing, 400, 'VALIDATION_ERROR');
      t.ok(body.details?.some((d) => d.field.includes('idempotency-key')), 'the details name the header');
      expectError(t, await app.inject(orderRequest(buyer, items, 'k'.repeat(129))), 400, 'VALIDATION_ERROR');
      expectError(t, await app.inject(orderRequest(buyer, items, '')), 400, 'VALIDATION_ERROR');
      t.equal(await stockOf(product.id), 10, 'nothing taken by the refused requests');
      t.equal(await countOrders(buyer), 0);

      t.equal((await app.inject(orderRequest(buyer, items, 'k'.repeat(128)))).statusCode, 201, '128 characters are fine');
      t.equal((await app.inject(orderRequest(buyer, items, 'x'))).statusCode, 201, 'so is 1');
      t.equal(await stockOf(product.id), 8);
    });

    t.test('invalid bodies are 400 and change nothing', async (t) => {
      const buyer = await createUser(app, 'body');
      const product = await createProduct(app, admin, { stock: 2000 });
      const line = (quantity: unknown, productId: unknown = product.id) => ({ productId, quantity });
      const send = (payload: unknown) => app.inject({ ...orderRequest(buyer, []), payload: payload as object });

      const cases: [string, unknown][] = [
        ['0 items', { items: [] }],
        ['51 items', { items: Array.from({ length: 51 }, () => line(1, randomUUID())) }],
        ['quantity 0', { items: [line(0)] }],
        ['quantity 1001', { items: [line(1001)] }],
        ['quantity -1', { items: [line(-1)] }],
        ['fractional quantity', { items: [line(1.5)] }],
        ['quantity as a string', { items: [line('1')] }],
        ['malformed productId', { items: [line(1, 'not-a-uuid')] }],
        ['no items field', {}],
        ['an unknown field on the order', { items: [line(1)], totalCents: 1 }],
        ['an unknown field on a line', { items: [{ ...line(1), unitPriceCents: 1 }] }],
      ];
      for (const [name, payload] of cases) {
        const body = expectError(t, await send(payload), 400, 'VALIDATION_ERROR');
        t.ok(body.details && body.details.length > 0, `${name}: details say which field and rule`);
      }
      expectError(t, await send({ items: [line(2), line(3)] }), 400, 'BAD_REQUEST');

      t.equal(await stockOf(product.id), 2000, 'no stock taken');
      t.equal(await countOrders(buyer), 0, 'no order written');

      const limits = await send({ items: [line(1000)] });
      t.equal(limits.statusCode, 201, 'quantity 1000 is accepted');
      const fifty = await send({ items: [line(1), ...Array.from({ length: 49 }, () => line(1, randomUUID()))] });
      expectError(t, fifty, 422, 'UNKNOWN_PRODUCT'); // 50 lines pass validation; their products do not exist
    });

    t.test('no token: 401; a bad token: 401', async (t) => {
      const product = await createProduct(app, admin, { stock: 5 });
      const items = [{ productId: product.id, quantity: 1 }];
      const none = await app.inject({ method: 'POST', url: '/v1/orders', headers: { 'idempotency-key': newKey() }, payload: { items } });
      expectError(t, none, 401, 'UNAUTHORIZED');
      const bad = await app.inject({
        method: 'POST',
        url: '/v1/orders',
        headers: { 'idempotency-key': newKey(), 'authorization': 'Bearer not.a.token' },
        payload: { items },
      });
      t.equal(bad.statusCode, 401);
      expectError(t, await get(undefined, ''), 401, 'UNAUTHORIZED');
      expectError(t, await get(undefined, `/${randomUUID()}`), 401, 'UNAUTHORIZED');
      expectError(t, await post(undefined, `/${randomUUID()}/cancel`), 401, 'UNAUTHORIZED');
      expectError(t, await post(undefined, `/${randomUUID()}/ship`), 401, 'UNAUTHORIZED');
      t.equal(await stockOf(product.id), 5);
    });

    t.test('feature flag orders.checkout: off → 403 FEATURE_DISABLED; the allow-list opens it for one user', async (t) => {
      const buyer = await createUser(app, 'flag');
      const other = await createUser(app, 'flag-other');
      const product = await createProduct(app, admin, { stock: 10 });
      const items = [{ productId: product.id, quantity: 1 }];
      t.teardown(async () => {
        const restored = await setCheckout(admin, { enabled: true, rolloutPercent: 100 });
        if (restored.statusCode !== 200) throw new Error(`could not restore the flag: ${restored.body}`);
      });

      t.equal((await app.inject(orderRequest(buyer, items))).statusCode, 201, 'on by default');

      t.equal((await setCheckout(admin, { enabled: false, rolloutPercent: 100 })).statusCode, 200);
      const off = await app.inject(orderRequest(buyer, items));
      const body = expectError(t, off, 403, 'FEATURE_DISABLED');
      t.match(body.message, /orders\.checkout/);
      expectError(t, await app.inject(orderRequest(admin, items)), 403, 'FEATURE_DISABLED');
      t.equal(await stockOf(product.id), 9, 'a refused order takes no stock');
      t.equal((await get(buyer, '')).statusCode, 200, 'reading orders is not gated');

      const allowed = await setCheckout(admin, { enabled: true, rolloutPercent: 0, allowUserIds: [buyer.id] });
      t.equal(allowed.statusCode, 200);
      t.equal((await app.inject(orderRequest(buyer, items))).statusCode, 201, 'the allow-listed user may order');
      expectError(t, await app.inject(orderRequest(other, items)), 403, 'FEATURE_DISABLED');
      t.equal(await stockOf(product.id), 8);

      t.equal((await setCheckout(admin, { enabled: true, rolloutPercent: 100 })).statusCode, 200);
      t.equal((await app.inject(orderRequest(other, items))).statusCode, 201, 'back on for everyone');
    });

    t.test('not enough stock: 409 INSUFFICIENT_STOCK and nothing changes', async (t) => {
      const buyer = await createUser(app, 'stock');
      const plenty = await createProduct(app, admin, { stock: 10 });
      const scarce = await createProduct(app, admin, { stock: 2 });
      const response = await app.inject(
        orderRequest(buyer, [
          { productId: plenty.id, quantity: 1 },
          { productId: scarce.id, quantity: 3 },
        ]),
      );
      const body = expectError(t, response, 409, 'INSUFFICIENT_STOCK');
      t.match(body.message, scarce.id, 'the message names the product');
      t.equal(await stockOf(plenty.id), 10, 'the other product keeps its stock');
      t.equal(await stockOf(scarce.id), 2);
      t.equal(await countOrders(buyer), 0, 'no order');
    });

    t.test('unknown or deleted product: 422 UNKNOWN_PRODUCT and nothing changes', async (t) => {
      const buyer = await createUser(app, 'unknown');
      const live = await createProduct(app, admin, { stock: 10 });
      const gone = await createProduct(app, admin, { stock: 10 });
      const deleted = await app.inject({ method: 'DELETE', url: `/v1/products/${gone.id}`, headers: admin.auth });
      t.equal(deleted.statusCode, 204);

      const unknown = randomUUID();
      const first = await app.inject(
        orderRequest(buyer, [
          { productId: live.id, quantity: 1 },
          { productId: unknown, quantity: 1 },
        ]),
      );
      t.match(expectError(t, first, 422, 'UNKNOWN_PRODUCT').message, unknown);
      const second = await app.inject(
        orderRequest(buyer, [
          { productId: live.id, quantity: 1 },
          { productId: gone.id, quantity: 1 },
        ]),
      );
      expectError(t, second, 422, 'UNKNOWN_PRODUCT');
      t.equal(await stockOf(live.id), 10);
      t.equal(await countOrders(buyer), 0);
    });

    t.test('GET / lists', async (t) => {
      const alice = await createUser(app, 'alice');
      const bob = await createUser(app, 'bob');
      const product = await createProduct(app, admin, { stock: 100 });
      const line = [{ productId: product.id, quantity: 1 }];
      const a1 = await place(alice, line);
      const a2 = await place(alice, line);
      const b1 = await place(bob, line);
      t.equal((await post(alice, `/${a1.id}/cancel`)).statusCode, 200);

      t.test('a user sees its own orders only', async (t) => {
        const response = await get(alice, '');
        t.equal(response.statusCode, 200);
        const page = response.json() as Page<Order>;
        t.same(page.items.map((o) => o.id).sort(), [a1.id, a2.id].sort());
        t.match(page, { total: 2, limit: 20, offset: 0 });
        t.same(page.items.find((o) => o.id === a2.id), a2, 'list items are whole orders');
        t.same((await get(bob, '')).json().items.map((o: Order) => o.id), [b1.id]);
        t.equal((await get(alice, `?userId=${alice.id}`)).statusCode, 200, 'a user may name itself');
      });

      t.test('a non-admin asking for another user\'s orders: 403', async (t) => {
        expectError(t, await get(alice, `?userId=${bob.id}`), 403, 'FORBIDDEN');
      });

      t.test('an admin sees all, ?userId= filters', async (t) => {
        const all = (await get(admin, '?limit=100')).json() as Page<Order>;
        for (const id of [a1.id, a2.id, b1.id]) t.ok(all.items.some((o) => o.id === id), `includes ${id}`);
        const bobs = (await get(admin, `?userId=${bob.id}`)).json() as Page<Order>;
        t.same(bobs.items.map((o) => o.id), [b1.id]);
        t.equal(bobs.total, 1);
        const alices = (await get(admin, `?userId=${alice.id}&status=pending`)).json() as Page<Order>;
        t.same(alices.items.map((o) => o.id), [a2.id], 'userId and status together');
      });

      t.test('?status= filters', async (t) => {
        const cancelled = (await get(alice, '?status=cancelled')).json() as Page<Order>;
        t.same(cancelled.items.map((o) => o.id), [a1.id]);
        t.equal(cancelled.items[0]?.status, 'cancelled');
        const pending = (await get(alice, '?status=pending')).json() as Page<Order>;
        t.same(pending.items.map((o) => o.id), [a2.id]);
        t.same((await get(alice, '?status=shipped')).json(), { items: [], total: 0, limit: 20, offset: 0 });
      });

      t.test('pagination and sort', async (t) => {
        const first = (await get(alice, '?limit=1&sort=createdAt')).json() as Page<Order>;
        t.same(first.items.map((o) => o.id), [a1.id]);
        t.match(first, { total: 2, limit: 1, offset: 0 });
        const second = (await get(alice, '?limit=1&offset=1&sort=createdAt')).json() as Page<Order>;
        t.same(second.items.map((o) => o.id), [a2.id]);
        const newest = (await get(alice, '?sort=-createdAt')).json() as Page<Order>;
        t.same(newest.items.map((o) => o.id), [a2.id, a1.id]);
      });

      t.test('bad query values: 400', async (t) => {
        for (const query of ['?status=refunded', '?userId=not-a-uuid', '?sort=status', '?sort=price', '?limit=0', '?limit=101', '?offset=-1', '?q=x']) {
          expectError(t, await get(alice, query), 400, 'VALIDATION_ERROR');
        }
      });
    });

    t.test('GET /:id', async (t) => {
      const owner = await createUser(app, 'owner');
      const stranger = await createUser(app, 'stranger');
      const product = await createProduct(app, admin, { stock: 10 });
      const order = await place(owner, [{ productId: product.id, quantity: 1 }]);

      const mine = await get(owner, `/${order.id}`);
      t.equal(mine.statusCode, 200);
      t.same(mine.json(), order);
      const byAdmin = await get(admin, `/${order.id}`);
      t.equal(byAdmin.statusCode, 200, 'an admin reads any order');
      t.same(byAdmin.json(), order);

      const theirs = expectError(t, await get(stranger, `/${order.id}`), 404, 'NOT_FOUND');
      const missingId = randomUUID();
      const missing = expectError(t, await get(stranger, `/${missingId}`), 404, 'NOT_FOUND');
      t.equal(theirs.message.replace(order.id, '<id>'), missing.message.replace(missingId, '<id>'), 'indistinguishable from a missing order');
      expectError(t, await get(owner, '/not-a-uuid'), 400, 'VALIDATION_ERROR');
    });

    t.test('POST /:id/cancel', async (t) => {
      const owner = await createUser(app, 'cancel');
      const stranger = await createUser(app, 'cancel-other');
      const product = await createProduct(app, admin, { stock: 10 });
      const line = [{ productId: product.id, quantity: 3 }];

      t.test('the owner cancels a pending order: 200 cancelled, stock restored', async (t) => {
        const order = await place(owner, line);
        t.equal(await stockOf(product.id), 7);
        const response = await post(owner, `/${order.id}/cancel`);
        t.equal(response.statusCode, 200);
        t.match(response.json(), { id: order.id, status: 'cancelled', version: 2, items: order.items, totalCents: order.totalCents });
        t.equal(await stockOf(product.id), 10, 'stock restored, and the product read says so at once');
        expectError(t, await post(owner, `/${order.id}/cancel`), 409, 'INVALID_TRANSITION');
        t.equal(await stockOf(product.id), 10, 'a second cancel restores nothing');
      });

      t.test('another user: 404 and the order stays pending', async (t) => {
        const order = await place(owner, line);
        expectError(t, await post(stranger, `/${order.id}/cancel`), 404, 'NOT_FOUND');
        t.match((await get(owner, `/${order.id}`)).json(), { status: 'pending', version: 1 });
        t.equal(await stockOf(product.id), 7);
        t.equal((await post(owner, `/${order.id}/cancel`)).statusCode, 200);
        // Once it is cancelled, a stranger still gets 404, not a 409 that would reveal the order.
        expectError(t, await post(stranger, `/${order.id}/cancel`), 404, 'NOT_FOUND');
      });

      t.test('an admin may cancel', async (t) => {
        const order = await place(owner, line);
        const response = await post(admin, `/${order.id}/cancel`);
        t.equal(response.statusCode, 200);
        t.match(response.json(), { status: 'cancelled', userId: owner.id });
        t.equal(await stockOf(product.id), 10);
      });

      t.test('from paid: 409 INVALID_TRANSITION, stock stays taken', async (t) => {
        const order = await place(owner, line);
        await app.orders.markPaid(order.id);
        expectError(t, await post(owner, `/${order.id}/cancel`), 409, 'INVALID_TRANSITION');
        expectError(t, await post(admin, `/${order.id}/cancel`), 409, 'INVALID_TRANSITION');
        t.match((await get(owner, `/${order.id}`)).json(), { status: 'paid', version: 2 });
        t.equal(await stockOf(product.id), 7);
        await app.orders.ship(order.id); // leave the stock accounting of this product as it is
      });

      t.test('unknown and malformed ids', async (t) => {
        expectError(t, await post(owner, `/${randomUUID()}/cancel`), 404, 'NOT_FOUND');
        expectError(t, await post(owner, '/not-a-uuid/cancel'), 400, 'VALIDATION_ERROR');
      });

      t.test('a body with unknown fields is rejected (400) and the order is not cancelled', async (t) => {
        const order = await place(owner, line);
        const response = await app.inject({
          method: 'POST',
          url: `/v1/orders/${order.id}/cancel`,
          headers: owner.auth,
          payload: { reason: 'changed my mind' },
        });
        t.equal(response.statusCode, 400, 'api.md: unknown JSON fields in bodies are rejected (400)');
        t.match((await get(owner, `/${order.id}`)).json(), { status: 'pending' });
        await post(owner, `/${order.id}/cancel`); // put the stock back for the next tests
      });
    });

    t.test('POST /:id/ship', async (t) => {
      const owner = await createUser(app, 'ship');
      const product = await createProduct(app, admin, { stock: 10 });
      const line = [{ productId: product.id, quantity: 1 }];

      t.test('an admin ships a paid order: 200 shipped', async (t) => {
        const order = await place(owner, line);
        await app.orders.markPaid(order.id);
        const response = await post(admin, `/${order.id}/ship`);
        t.equal(response.statusCode, 200);
        t.match(response.json(), { id: order.id, status: 'shipped', version: 3, userId: owner.id });
        t.match((await get(owner, `/${order.id}`)).json(), { status: 'shipped', version: 3 });
        expectError(t, await post(admin, `/${order.id}/ship`), 409, 'INVALID_TRANSITION');
      });

      t.test('a non-admin, even the owner: 403', async (t) => {
        const order = await place(owner, line);
        await app.orders.markPaid(order.id);
        expectError(t, await post(owner, `/${order.id}/ship`), 403, 'FORBIDDEN');
        t.match((await get(owner, `/${order.id}`)).json(), { status: 'paid', version: 2 }, 'not shipped');
      });

      t.test('from pending: 409 INVALID_TRANSITION', async (t) => {
        const order = await place(owner, line);
        expectError(t, await post(admin, `/${order.id}/ship`), 409, 'INVALID_TRANSITION');
        t.match((await get(owner, `/${order.id}`)).json(), { status: 'pending', version: 1 });
      });

      t.test('a body with unknown fields is rejected (400) and the order is not shipped', async (t) => {
        const order = await place(owner, line);
        await app.orders.markPaid(order.id);
        const response = await app.inject({
          method: 'POST',
          url: `/v1/orders/${order.id}/ship`,
          headers: admin.auth,
          payload: { carrier: 'ups' },
        });
        t.equal(response.statusCode, 400, 'api.md: unknown JSON fields in bodies are rejected (400)');
        t.match((await get(owner, `/${order.id}`)).json(), { status: 'paid' });
      });

      t.test('from cancelled: 409; unknown id: 404; malformed id: 400', async (t) => {
        const order = await place(owner, line);
        t.equal((await post(owner, `/${order.id}/cancel`)).statusCode, 200);
        expectError(t, await post(admin, `/${order.id}/ship`), 409, 'INVALID_TRANSITION');
        expectError(t, await post(admin, `/${randomUUID()}/ship`), 404, 'NOT_FOUND');
        expectError(t, await post(admin, '/not-a-uuid/ship'), 400, 'VALIDATION_ERROR');
      });
    });
  });
}
