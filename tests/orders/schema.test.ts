import { randomUUID } from 'node:crypto';
import t from 'tap';
import { Value } from 'typebox/value';
import { orderStatuses } from '../../app/orders/model.js';
import {
  CreateOrderSchema,
  IdempotencyHeadersSchema,
  OrderListQuerySchema,
  OrderPageSchema,
  OrderSchema,
  orderSortFields,
} from '../../app/orders/schema.js';
import { errorsOf } from '../helpers/schema.js';

/** Pure unit tests of the orders DTOs: what a route accepts and what it refuses, before any code runs. */

const line = (quantity = 1, productId: string = randomUUID()) => ({ productId, quantity });
const lines = (n: number) => Array.from({ length: n }, () => line());

t.test('CreateOrderSchema', async (t) => {
  t.ok(Value.Check(CreateOrderSchema, { items: [line()] }), 'one line');

  t.test('1..50 items', async (t) => {
    t.notOk(Value.Check(CreateOrderSchema, { items: [] }), 'no items');
    t.match(errorsOf(CreateOrderSchema, { items: [] }), [{ keyword: 'minItems', path: '/items' }]);
    t.ok(Value.Check(CreateOrderSchema, { items: lines(1) }), '1 item');
    t.ok(Value.Check(CreateOrderSchema, { items: lines(50) }), '50 items');
    t.notOk(Value.Check(CreateOrderSchema, { items: lines(51) }), '51 items');
    t.match(errorsOf(CreateOrderSchema, { items: lines(51) }), [{ keyword: 'maxItems', path: '/items' }]);
    t.notOk(Value.Check(CreateOrderSchema, {}), 'items is required');
    t.notOk(Value.Check(CreateOrderSchema, { items: line() }), 'items is an array, not one line');
  });

  t.test('quantity is an integer 1..1000', async (t) => {
    for (const quantity of [1, 2, 999, 1000]) t.ok(Value.Check(CreateOrderSchema, { items: [line(quantity)] }), `${quantity}`);
    for (const quantity of [0, -1, 1001, 1.5, 0.5]) {
      t.notOk(Value.Check(CreateOrderSchema, { items: [line(quantity)] }), `${quantity} is refused`);
      t.ok(errorsOf(CreateOrderSchema, { items: [line(quantity)] }).some((e) => e.path === '/items/0/quantity'), `${quantity} blames the quantity`);
    }
    t.notOk(Value.Check(CreateOrderSchema, { items: [{ productId: randomUUID(), quantity: '2' }] }), 'a string is not a quantity');
    t.notOk(Value.Check(CreateOrderSchema, { items: [{ productId: randomUUID() }] }), 'quantity is required');
  });

  t.test('productId is a uuid', async (t) => {
    for (const productId of ['not-a-uuid', '', '123', `${randomUUID()}x`, randomUUID().replace(/-/g, '')]) {
      t.notOk(Value.Check(CreateOrderSchema, { items: [line(1, productId)] }), `'${productId}' is refused`);
      t.ok(errorsOf(CreateOrderSchema, { items: [line(1, productId)] }).some((e) => e.path === '/items/0/productId'));
    }
    t.notOk(Value.Check(CreateOrderSchema, { items: [{ quantity: 1 }] }), 'productId is required');
    t.notOk(Value.Check(CreateOrderSchema, { items: [{ productId: 42, quantity: 1 }] }), 'a number is not an id');
  });

  t.test('unknown fields are refused, on the order and on a line', async (t) => {
    t.notOk(Value.Check(CreateOrderSchema, { items: [line()], userId: randomUUID() }), 'the order cannot name its user');
    t.ok(errorsOf(CreateOrderSchema, { items: [line()], totalCents: 1 }).some((e) => e.keyword === 'additionalProperties'));
    t.notOk(Value.Check(CreateOrderSchema, { items: [{ ...line(), unitPriceCents: 1 }] }), 'nor choose its price');
    t.ok(
      errorsOf(CreateOrderSchema, { items: [{ ...line(), unitPriceCents: 1 }] }).some(
        (e) => e.keyword === 'additionalProperties' && e.path === '/items/0',
      ),
    );
  });
});

t.test('IdempotencyHeadersSchema: the Idempotency-Key header is required, 1..128 characters', async (t) => {
  const headers = (key: unknown) => ({ 'idempotency-key': key, 'authorization': 'Bearer x', 'content-type': 'application/json' });
  t.ok(Value.Check(IdempotencyHeadersSchema, headers('a')), '1 character');
  t.ok(Value.Check(IdempotencyHeadersSchema, headers('k'.repeat(128))), '128 characters');
  t.ok(Value.Check(IdempotencyHeadersSchema, headers(randomUUID())), 'a uuid');
  t.notOk(Value.Check(IdempotencyHeadersSchema, headers('')), 'empty');
  t.match(errorsOf(IdempotencyHeadersSchema, headers('')), [{ keyword: 'minLength', path: '/idempotency-key' }]);
  t.notOk(Value.Check(IdempotencyHeadersSchema, headers('k'.repeat(129))), '129 characters');
  t.match(errorsOf(IdempotencyHeadersSchema, headers('k'.repeat(129))), [{ keyword: 'maxLength', path: '/idempotency-key' }]);
  t.notOk(Value.Check(IdempotencyHeadersSchema, { authorization: 'Bearer x' }), 'missing');
  t.match(errorsOf(IdempotencyHeadersSchema, { authorization: 'Bearer x' }), [{ keyword: 'required' }]);
  t.ok(Value.Check(IdempotencyHeadersSchema, headers('x')), 'other headers are allowed next to it');
});

t.test('OrderListQuerySchema', async (t) => {
  const page = { limit: 20, offset: 0 };
  t.ok(Value.Check(OrderListQuerySchema, page), 'limit and offset');
  t.same(Value.Default(OrderListQuerySchema, {}), { limit: 20, offset: 0 }, 'limit and offset default to 20 and 0');

  t.test('status is one of the four statuses', async (t) => {
    t.same([...orderStatuses], ['pending', 'paid', 'cancelled', 'shipped']);
    for (const status of orderStatuses) t.ok(Value.Check(OrderListQuerySchema, { ...page, status }), status);
    for (const status of ['refunded', 'PENDING', '', 'pending,paid']) {
      t.notOk(Value.Check(OrderListQuerySchema, { ...page, status }), `'${status}' is refused`);
    }
  });

  t.test('userId is a uuid', async (t) => {
    t.ok(Value.Check(OrderListQuerySchema, { ...page, userId: randomUUID() }));
    for (const userId of ['me', '', '1', 'not-a-uuid']) {
      t.notOk(Value.Check(OrderListQuerySchema, { ...page, userId }), `'${userId}' is refused`);
    }
  });

  t.test('sort is limited to the whitelist, ascending or descending', async (t) => {
    t.same([...orderSortFields].sort(), ['createdAt', 'total']);
    for (const field of orderSortFields) {
      t.ok(Value.Check(OrderListQuerySchema, { ...page, sort: field }), field);
      t.ok(Value.Check(OrderListQuerySchema, { ...page, sort: `-${field}` }), `-${field}`);
    }
    for (const sort of ['status', 'userId', 'idempotencyKey', 'totalCents', '--total', '+total', 'total,createdAt', '']) {
      t.notOk(Value.Check(OrderListQuerySchema, { ...page, sort }), `'${sort}' is refused`);
    }
  });

  t.test('limit 1..100, offset >= 0; unknown query fields are refused', async (t) => {
    t.ok(Value.Check(OrderListQuerySchema, { limit: 1, offset: 0 }));
    t.ok(Value.Check(OrderListQuerySchema, { limit: 100, offset: 500 }));
    t.notOk(Value.Check(OrderListQuerySchema, { limit: 0, offset: 0 }), 'limit 0');
    t.notOk(Value.Check(OrderListQuerySchema, { limit: 101, offset: 0 }), 'limit 101');
    t.notOk(Value.Check(OrderListQuerySchema, { limit: 20, offset: -1 }), 'offset -1');
    t.notOk(Value.Check(OrderListQuerySchema, { ...page, q: 'x' }), 'q is not a field of this list');
    t.notOk(Value.Check(OrderListQuerySchema, { ...page, idempotencyKey: 'k' }), 'nor is idempotencyKey');
  });
});

t.test('OrderSchema is the api.md order, nothing internal', async (t) => {
  t.same(Object.keys(OrderSchema.properties).sort(), ['createdAt', 'id', 'items', 'status', 'totalCents', 'updatedAt', 'userId', 'version']);
  t.notOk('idempotencyKey' in OrderSchema.properties, 'the idempotency key is not echoed');
  t.notOk('deletedAt' in OrderSchema.properties);

  const order = {
    id: randomUUID(),
    userId: randomUUID(),
    status: 'pending',
    items: [{ productId: randomUUID(), quantity: 2, unitPriceCents: 1250 }],
    totalCents: 2500,
    version: 1,
    createdAt: '2024-01-01T00:00:00.000Z',
    updatedAt: '2024-01-01T00:00:00.000Z',
  };
  t.ok(Value.Check(OrderSchema, order), 'an order DTO is valid');
  t.notOk(Value.Check(OrderSchema, { ...order, status: 'refunded' }), 'an unknown status is not');
  t.notOk(Value.Check(OrderSchema, { ...order, id: 'x' }), 'nor a malformed id');
  t.notOk(Value.Check(OrderSchema, { ...order, items: [{ productId: randomUUID(), quantity: 2 }] }), 'an item carries its unit price');
  t.ok(Value.Check(OrderPageSchema, { items: [order], total: 1, limit: 20, offset: 0 }), 'a page of orders');
});
