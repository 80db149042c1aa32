import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { UsersRepository } from './repository.js';
import { createUsersService, type UsersService } from './service.js';
import { createUsersValidator } from './validator.js';

declare module 'fastify' {
  interface FastifyInstance {
    users: UsersService;
  }
}

/** The users entity: repository -> validator -> service, decorated as `app.users`. */
export default fp(
  async (app: FastifyInstance) => {
    const repository = new UsersRepository(app.db);
    const service = createUsersService({
      db: app.db,
      repository,
      validator: createUsersValidator(repository),
      sessions: app.sessions,
      loginGuard: app.loginGuard,
      outbox: app.outbox,
    });
    app.decorate('users', service);

    const { SEED_ADMIN_EMAIL: email, SEED_ADMIN_PASSWORD: password } = app.settings;
    if (email && password) {
      const outcome = await service.ensureAdmin(email, password);
      app.log.info({ email, outcome }, 'seed admin ensured');
    }
  },
  { name: 'users', dependencies: ['database', 'security', 'outbox'], fastify: '5.x' },
);
