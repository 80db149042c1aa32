import { defineConsumer } from '../core/service/consumers/runtime.js';
import { consumedTopics } from '../schemas/events.js';

/** Stock counted elsewhere changed: stock += delta, never below zero; the product's cache entry is dropped. */
export default defineConsumer({
  name: 'inventory-adjusted',
  topic: 'inventory.adjusted.v1',
  data: consumedTopics['inventory.adjusted.v1'],
  async handle({ data }, { app, write }) {
    await app.products.adjustStockBySku(data.sku, data.delta, write);
  },
});
