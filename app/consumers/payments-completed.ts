import { defineConsumer } from '../core/service/consumers/runtime.js';
import { consumedTopics } from '../schemas/events.js';

/** A payment went through: the pending order becomes paid, if the amount equals its total (else DLQ). */
export default defineConsumer({
  name: 'payments-completed',
  topic: 'payments.completed.v1',
  data: consumedTopics['payments.completed.v1'],
  async handle({ data }, { app, write }) {
    await app.orders.markPaid(data.orderId, { ...write, amountCents: data.amountCents });
  },
});
