import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { ProductsRepository } from './repository.js';
import { createProductsService, type ProductsService } from './service.js';
import { createProductsValidator } from './validator.js';

declare module 'fastify' {
  interface FastifyInstance {
    products: ProductsService;
  }
}

/** The products entity: repository -> validator -> service, decorated as `app.products`. */
export default fp(
  async (app: FastifyInstance) => {
    const repository = new ProductsRepository(app.db);
    app.decorate(
      'products',
      createProductsService({ db: app.db, repository, validator: createProductsValidator(repository), cache: app.cache }),
    );
  },
  { name: 'products', dependencies: ['database', 'cache'], fastify: '5.x' },
);
