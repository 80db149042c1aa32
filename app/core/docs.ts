import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { asyncApiDocument } from './asyncapi.js';

/**
 * OpenAPI 3 generated from the route schemas (TypeBox): /docs (UI) and /docs/json; the AsyncAPI 3
 * document of the Kafka topics, from the event schemas: /docs/asyncapi.json.
 */
export default fp(
  async (app: FastifyInstance) => {
    if (!app.settings.DOCS_ENABLED) return;
    await app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: {
          title: 'Plinth orders service',
          version: '1',
          description: 'Errors share one body: { statusCode, code, error, message, requestId, details? }.',
        },
        components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
      },
      // Keep schema names ($id) instead of def-N in the document.
      refResolver: { buildLocalReference: (json, _base, _fragment, i) => String(json.$id ?? `def-${i}`) },
    });
    await app.register(swaggerUi, { routePrefix: '/docs' });

    const events = asyncApiDocument(app.settings);
    app.get('/docs/asyncapi.json', { schema: { hide: true } }, async () => events);
  },
  { name: 'docs', dependencies: ['settings'], fastify: '5.x' },
);
