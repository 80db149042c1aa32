import { randomUUID } from 'node:crypto';
import t from 'tap';
import type { Actor } from '../../app/core/base/validator.js';
import { type OrderStatus, orderStatuses } from '../../app/orders/model.js';
import { createOrdersValidator, transitions } from '../../app/orders/validator.js';

/** The orders business rules: the status machine, who sees an order, list filters, one line per product. */

const validator = createOrdersValidator();

const owner: Actor = { id: randomUUID(), role: 'user' };
const stranger: Actor = { id: randomUUID(), role: 'user' };
const admin: Actor = { id: randomUUID(), role: 'admin' };

/** The only moves api.md allows. */
const ALLOWED = new Set(['pending->paid', 'pending->cancelled', 'paid->shipped']);

t.test('the status machine: every (from, to) pair of the four statuses', async (t) => {
  t.equal(orderStatuses.length, 4);
  let allowed = 0;
  for (const from of orderStatuses) {
    for (const to of orderStatuses) {
      const pair = `${from}->${to}`;
      if (ALLOWED.has(pair)) {
        allowed += 1;
        t.doesNotThrow(() => validator.assertTransition(from, to), `${pair} is allowed`);
      } else {
        t.throws(
          () => validator.assertTransition(from, to),
          { code: 'INVALID_TRANSITION', statusCode: 409, message: `An order cannot go from ${from} to ${to}` },
          `${pair} is INVALID_TRANSITION`,
        );
      }
    }
  }
  t.equal(allowed, 3, 'exactly three moves are allowed');
});

t.test('the transitions table says the same', async (t) => {
  t.same(transitions, { pending: ['paid', 'cancelled'], paid: ['shipped'], cancelled: [], shipped: [] });
  for (const from of Object.keys(transitions) as OrderStatus[]) {
    t.notOk(transitions[from].includes(from), `${from} never moves to itself`);
  }
});

t.test('canSee: the owner and admins see an order; anyone else is told NOT_FOUND', async (t) => {
  const order = { id: randomUUID(), userId: owner.id };
  t.doesNotThrow(() => validator.canSee(owner, order), 'the owner');
  t.doesNotThrow(() => validator.canSee(admin, order), 'an admin');
  t.throws(() => validator.canSee(stranger, order), { code: 'NOT_FOUND', statusCode: 404 }, 'another user: 404, not 403');
  t.throws(
    () => validator.canSee(stranger, order),
    { message: `order ${order.id} not found` },
    'the same words as for an order that does not exist',
  );
  t.throws(() => validator.canSee({ id: owner.id, role: 'user' }, { id: order.id, userId: stranger.id }), { code: 'NOT_FOUND' });
});

t.test('listFilter: users list their own orders; only admins choose a user', async (t) => {
  t.equal(validator.listFilter(owner, undefined), owner.id, 'a user without a filter gets its own orders');
  t.equal(validator.listFilter(owner, owner.id), owner.id, 'a user may name itself');
  t.throws(() => validator.listFilter(owner, stranger.id), { code: 'FORBIDDEN', statusCode: 403 }, 'but not another user');
  t.equal(validator.listFilter(admin, undefined), undefined, 'an admin without a filter: every order');
  t.equal(validator.listFilter(admin, owner.id), owner.id, 'an admin filtering by a user');
  t.equal(validator.listFilter(admin, admin.id), admin.id);
});

t.test('distinctProducts: a product may appear once per order', async (t) => {
  const a = randomUUID();
  const b = randomUUID();
  t.doesNotThrow(() => validator.distinctProducts({ items: [{ productId: a, quantity: 1 }] }));
  t.doesNotThrow(() => validator.distinctProducts({ items: [{ productId: a, quantity: 1 }, { productId: b, quantity: 1 }] }));
  t.throws(
    () => validator.distinctProducts({ items: [{ productId: a, quantity: 1 }, { productId: a, quantity: 2 }] }),
    { code: 'BAD_REQUEST', statusCode: 400, message: new RegExp(a) },
    'the same product twice is a 400 naming it',
  );
  t.throws(
    () =>
      validator.distinctProducts({
        items: [
          { productId: a, quantity: 1 },
          { productId: b, quantity: 1 },
          { productId: a, quantity: 1 },
        ],
      }),
    { code: 'BAD_REQUEST' },
    'also when the repeats are not next to each other',
  );
});
