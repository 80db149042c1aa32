import t from 'tap';
import { consumedTopics, producedTopics } from '../../app/schemas/events.js';
import { build } from '../helpers/app.js';

t.test('GET /docs/asyncapi.json describes every produced and consumed topic', async (t) => {
  const app = await build(t);
  const response = await app.inject({ method: 'GET', url: '/docs/asyncapi.json' });
  t.equal(response.statusCode, 200);
  const doc = response.json();
  t.equal(doc.asyncapi, '3.0.0');
  for (const topic of Object.keys(producedTopics)) {
    t.equal(doc.operations[`send:${topic}`].action, 'send', `${topic} is produced`);
    t.same(doc.components.messages[topic].payload.properties.type, { const: topic, type: 'string' });
  }
  for (const topic of Object.keys(consumedTopics)) {
    t.equal(doc.operations[`receive:${topic}`].action, 'receive', `${topic} is consumed`);
    t.ok(doc.channels[`${topic}.dlq`], `${topic}.dlq is documented`);
    t.ok(doc.components.messages[`${topic}.dlq`].headers.properties['x-original-offset']);
  }
  // The payload schemas are the ones the consumers validate with.
  const paid = doc.components.messages['payments.completed.v1'].payload.properties.data;
  t.same(paid.required.sort(), ['amountCents', 'orderId', 'paymentId']);
  // Every $ref resolves inside the document.
  const refs = JSON.stringify(doc).match(/"\$ref":"#\/[^"]+"/g) ?? [];
  for (const ref of refs) {
    const path = ref.slice(10, -1).split('/');
    let node: unknown = doc;
    for (const part of path) node = (node as Record<string, unknown>)?.[part];
    t.ok(node, `${ref} resolves`);
  }
});
