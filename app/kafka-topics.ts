// `npm run kafka:topics`: creates every topic this service produces or consumes (and the DLQs) on the
// cluster of KAFKA_BROKERS, with KAFKA_TOPIC_PARTITIONS / KAFKA_TOPIC_REPLICATION. Existing topics are left alone.
import pino from 'pino';
import { createKafka } from './core/adapter/kafka.js';
import { loadSettings } from './core/settings/index.js';
import { consumedTopics, producedTopics } from './schemas/events.js';

const settings = loadSettings();
if (!settings.KAFKA_BROKERS) {
  process.stderr.write('kafka:topics: KAFKA_BROKERS is not set (the embedded broker creates topics by itself)\n');
  process.exit(78);
}
const log = pino({ level: settings.LOG_LEVEL });
const kafka = await createKafka({ settings, log: log as never });
const topics = [
  ...Object.keys(producedTopics),
  ...Object.keys(consumedTopics).flatMap((topic) => [topic, `${topic}.dlq`]),
].map((topic) => kafka.topic(topic));
try {
  await kafka.ensureTopics(topics);
  process.stdout.write(`kafka:topics: present on ${kafka.brokers}:\n${topics.map((t) => `  ${t}`).join('\n')}\n`);
} finally {
  await kafka.close();
}
