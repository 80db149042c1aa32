import { defineConsumer } from '../core/service/consumers/runtime.js';
import { consumedTopics } from '../schemas/events.js';

/** A payment failed: the pending order is cancelled and its stock comes back. */
export default defineConsumer({
  name: 'payments-failed',
  topic: 'payments.failed.v1',
  data: consumedTopics['payments.failed.v1'],
  async handle({ data }, { app, write }) {
    await app.orders.markFailed(data.orderId, write);
  },
});
