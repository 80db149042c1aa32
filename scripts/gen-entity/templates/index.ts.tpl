import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { __Entities__Repository } from './repository.js';
import { create__Entities__Service, type __Entities__Service } from './service.js';
import { create__Entities__Validator } from './validator.js';

declare module 'fastify' {
  interface FastifyInstance {
    __entities__: __Entities__Service;
  }
}

/** The __entities_label__ entity: repository -> validator -> service, decorated as `app.__entities__`. */
export default fp(
  async (app: FastifyInstance) => {
    const repository = new __Entities__Repository(app.db);
    const validator = create__Entities__Validator(repository);
    app.decorate('__entities__', create__Entities__Service({ repository, validator }));
  },
  { name: '__entity_folder__', dependencies: ['database'], fastify: '5.x' },
);
