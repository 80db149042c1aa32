/**
 * A standalone embedded Kafka broker (librdkafka's mock cluster) for development: the API, a worker and kcat can run
 * as separate processes against it. In memory only; everything is gone when this process stops.
 *
 *   npm run kafka:embedded [-- --brokers 3]
 */
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { startEmbeddedBroker } from '../app/core/adapter/kafka.js';

const { values } = parseArgs({ options: { brokers: { type: 'string', default: '1' } } });
const brokers = Number(values.brokers);
if (!Number.isInteger(brokers) || brokers < 1 || brokers > 10) {
  console.error(`--brokers must be an integer from 1 to 10 (got '${values.brokers}')`);
  process.exit(2);
}

const broker = await startEmbeddedBroker({ brokers, log: pino({ level: 'warn' }) });
console.log(`bootstrap: ${broker.bootstrap}`);
console.log(`  API/worker: KAFKA_BROKERS=${broker.bootstrap} npm start`);
console.log(`  kcat:       kcat -b ${broker.bootstrap} -L`);
console.log('In memory, this process only; Ctrl-C stops it.');

// librdkafka's threads do not keep Node's event loop alive; this timer does until a signal arrives.
const keepAlive = setInterval(() => {}, 1 << 30);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    clearInterval(keepAlive);
    void broker.stop().then(() => process.exit(0));
  });
}
