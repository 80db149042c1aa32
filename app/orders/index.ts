import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { OrdersRepository } from './repository.js';
import { createOrdersService, type OrdersService } from './service.js';
import { createOrdersValidator } from './validator.js';

declare module 'fastify' {
  interface FastifyInstance {
    orders: OrdersService;
  }
}

/** The orders entity: repository -> validator -> service, decorated as `app.orders`. */
export default fp(
  async (app: FastifyInstance) => {
    app.decorate(
      'orders',
      createOrdersService({
        db: app.db,
        repository: new OrdersRepository(app.db),
        validator: createOrdersValidator(),
        products: app.products,
        mutex: app.mutex,
        outbox: app.outbox,
      }),
    );
  },
  { name: 'orders', dependencies: ['database', 'mutex', 'products', 'outbox'], fastify: '5.x' },
);
