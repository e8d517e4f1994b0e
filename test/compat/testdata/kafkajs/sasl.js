// SASL with KafkaJS: produce through a SASL listener and read the
// partition's offsets back with the admin client.
//
// Usage: node sasl.js BOOTSTRAP TOPIC MECHANISM USER PASSWORD [CAFILE]
//
// MECHANISM is plain, scram-sha-256 or scram-sha-512; with CAFILE the
// connection uses TLS (SASL_SSL). Prints one JSON object for
// test/compat/sasl_clients_test.go: {"offsets": [...]} or, when
// authentication fails, {"error": "Name: message"} with exit status 3.

const fs = require('fs');
const { Kafka, logLevel } = require('kafkajs');

async function main() {
  const [bootstrap, topic, mechanism, username, password, cafile] = process.argv.slice(2);
  const kafka = new Kafka({
    clientId: 'floe-compat-kafkajs-sasl',
    brokers: [bootstrap],
    ssl: cafile ? { ca: [fs.readFileSync(cafile, 'utf8')], servername: '127.0.0.1' } : false,
    sasl: { mechanism, username, password },
    logLevel: logLevel.NOTHING,
    retry: { retries: 1 },
    connectionTimeout: 5000,
  });
  const producer = kafka.producer({ allowAutoTopicCreation: true });
  const admin = kafka.admin();
  try {
    await producer.connect();
    const messages = [];
    for (let i = 0; i < 10; i++) messages.push({ value: `v${i}` });
    await producer.send({ topic, messages });
    await admin.connect();
    const offsets = await admin.fetchTopicOffsets(topic);
    console.log(JSON.stringify({ offsets }));
  } catch (e) {
    console.log(JSON.stringify({ error: `${e.name}: ${e.message}` }));
    process.exitCode = 3;
  } finally {
    await producer.disconnect().catch(() => {});
    await admin.disconnect().catch(() => {});
  }
}

main();
