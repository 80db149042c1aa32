import type { ConsumerDefinition } from '../core/service/consumers/runtime.js';
import inventoryAdjusted from './inventory-adjusted.js';
import paymentsCompleted from './payments-completed.js';
import paymentsFailed from './payments-failed.js';

/** Every consumer of this service. A new one: a file like the others, then one line here. */
export const consumers: ConsumerDefinition[] = [
  paymentsCompleted as unknown as ConsumerDefinition,
  paymentsFailed as unknown as ConsumerDefinition,
  inventoryAdjusted as unknown as ConsumerDefinition,
];
