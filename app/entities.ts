import type { FastifyPluginAsync } from 'fastify';
import orders from './orders/index.js';
import products from './products/index.js';
import users from './users/index.js';
// gen:entity inserts the import of a new entity above this line.

/**
 * The one place entities are registered: app.ts registers these plugins in this order, after the core
 * services. An entity comes after the ones it depends on (orders use products); `npm run gen:entity`
 * appends new entities at the end.
 */
export const entities: FastifyPluginAsync[] = [
  users,
  products,
  orders,
  // gen:entity inserts a new entity above this line.
];
