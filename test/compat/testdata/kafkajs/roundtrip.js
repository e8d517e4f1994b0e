// Produce to Floe with KafkaJS and use its admin client.
//
// Usage: node roundtrip.js BOOTSTRAP TOPIC_PREFIX
//
// Creates PREFIX-gzip (3 partitions) and PREFIX-none (2 partitions) with
// admin.createTopics, produces records to chosen partitions with an
// idempotent producer (gzip to one topic, no compression to the other),
// half of them with an old timestamp, then asks fetchTopicOffsets and
// fetchTopicOffsetsByTimestamp. Also creates and deletes a third topic.
// KafkaJS consumers need a consumer group, which Floe does not serve yet,
// so the Go test (test/compat/kafkajs_test.go) reads the records back.
// Prints one JSON object on stdout; keys and values are base64.

'use strict'

const { Kafka, CompressionTypes, logLevel } = require('kafkajs')

const [bootstrap, prefix] = process.argv.slice(2)
if (!bootstrap || !prefix) {
  console.error('usage: node roundtrip.js BOOTSTRAP TOPIC_PREFIX')
  process.exit(2)
}

const topics = [
  { topic: `${prefix}-gzip`, partitions: 3, compression: CompressionTypes.GZIP, codec: 'gzip' },
  { topic: `${prefix}-none`, partitions: 2, compression: CompressionTypes.None, codec: 'none' }
]
const perTopic = 600
const perSend = 100
const now = Date.now()
const oldTimestamp = now - 3600 * 1000

// Log to stderr only: stdout carries the result.
const logCreator = () => ({ namespace, level, label, log }) => {
  console.error(`${label} [${namespace}] ${log.message} ${JSON.stringify(log)}`)
}

const kafka = new Kafka({
  clientId: 'floe-compat-kafkajs',
  brokers: [bootstrap],
  logLevel: logLevel.WARN,
  logCreator,
  connectionTimeout: 5000,
  requestTimeout: 10000
})

async function main () {
  const admin = kafka.admin()
  await admin.connect()

  const created = await admin.createTopics({
    waitForLeaders: true,
    topics: topics.map(t => ({ topic: t.topic, numPartitions: t.partitions, replicationFactor: 1 }))
  })
  // A second create of the same topics reports that nothing was created.
  const createdAgain = await admin.createTopics({
    topics: topics.map(t => ({ topic: t.topic, numPartitions: t.partitions, replicationFactor: 1 }))
  })

  const doomed = `${prefix}-doomed`
  await admin.createTopics({ topics: [{ topic: doomed, numPartitions: 1 }] })
  const listedBeforeDelete = (await admin.listTopics()).sort()
  await admin.deleteTopics({ topics: [doomed], timeout: 10000 })
  const listedAfterDelete = (await admin.listTopics()).sort()

  const metadata = await admin.fetchTopicMetadata({ topics: topics.map(t => t.topic) })

  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false })
  await producer.connect()
  const produced = []
  const sends = []
  for (const t of topics) {
    for (let start = 0; start < perTopic; start += perSend) {
      const messages = []
      for (let i = start; i < start + perSend; i++) {
        const partition = i % t.partitions
        const key = Buffer.from(`${t.codec}-key-${i % 19}`)
        const value = Buffer.concat([Buffer.from(`${t.codec} value ${i} `), Buffer.from([i % 256, 0, 255])])
        const timestamp = i < perTopic / 2 ? oldTimestamp : now
        const headers = { i: String(i) }
        messages.push({ partition, key, value, headers, timestamp: String(timestamp) })
        produced.push({
          topic: t.topic,
          partition,
          key: key.toString('base64'),
          value: value.toString('base64'),
          headers,
          timestamp
        })
      }
      const res = await producer.send({ topic: t.topic, acks: -1, compression: t.compression, messages })
      for (const r of res) {
        if (r.errorCode !== 0) throw new Error(`send to ${r.topicName}/${r.partition}: error ${r.errorCode}`)
        sends.push({ topic: r.topicName, partition: r.partition, base_offset: Number(r.baseOffset) })
      }
    }
  }
  await producer.disconnect()

  const offsets = {}
  const offsetsByTimestamp = {}
  for (const t of topics) {
    offsets[t.topic] = (await admin.fetchTopicOffsets(t.topic)).map(o => ({
      partition: o.partition, low: Number(o.low), high: Number(o.high), offset: Number(o.offset)
    }))
    offsetsByTimestamp[t.topic] = {}
    for (const ts of [oldTimestamp, oldTimestamp + 1, now, now + 3600 * 1000]) {
      offsetsByTimestamp[t.topic][ts] = (await admin.fetchTopicOffsetsByTimestamp(t.topic, ts)).map(o => ({
        partition: o.partition, offset: Number(o.offset)
      }))
    }
  }
  await admin.disconnect()

  process.stdout.write(JSON.stringify({
    client: 'kafkajs',
    created,
    created_again: createdAgain,
    listed_before_delete: listedBeforeDelete,
    listed_after_delete: listedAfterDelete,
    metadata: metadata.topics.map(t => ({ topic: t.name, partitions: t.partitions.length })),
    produced,
    sends,
    offsets,
    offsets_by_timestamp: offsetsByTimestamp
  }))
}

main().catch(err => {
  console.error(err && err.stack ? err.stack : err)
  process.exit(1)
})
