import { type Actor, canSee } from '../core/base/validator.js';
import { BadRequestError, ForbiddenError, InvalidTransitionError, NotFoundError } from '../core/base/errors.js';
import type { OrderRow, OrderStatus } from './model.js';
import type { CreateOrder } from './schema.js';

/** The order status machine: every move not listed here is INVALID_TRANSITION. */
export const transitions: Record<OrderStatus, readonly OrderStatus[]> = {
  pending: ['paid', 'cancelled'],
  paid: ['shipped'],
  cancelled: [],
  shipped: [],
};

export function createOrdersValidator() {
  return {
    assertTransition(from: OrderStatus, to: OrderStatus) {
      if (!transitions[from].includes(to)) throw new InvalidTransitionError(from, to);
    },

    /** Owner or admin; anyone else is told the order does not exist. */
    canSee(actor: Actor, order: Pick<OrderRow, 'id' | 'userId'>) {
      if (!canSee(actor, order.userId)) throw new NotFoundError(`order ${order.id} not found`);
    },

    /** Only admins filter by another user. */
    listFilter(actor: Actor, userId: string | undefined): string | undefined {
      if (actor.role === 'admin') return userId;
      if (userId !== undefined && userId !== actor.id) throw new ForbiddenError('Only an admin may list the orders of another user');
      return actor.id;
    },

    /** One line per product: a product listed twice is a client mistake, not a quantity to add up. */
    distinctProducts(input: CreateOrder) {
      const seen = new Set<string>();
      for (const item of input.items) {
        if (seen.has(item.productId)) throw new BadRequestError(`Product ${item.productId} is listed more than once`);
        seen.add(item.productId);
      }
    },
  };
}

export type OrdersValidator = ReturnType<typeof createOrdersValidator>;
