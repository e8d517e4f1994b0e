// Kafka transactions through Floe with KafkaJS.
//
// Usage: node txn.js BOOTSTRAP PREFIX
//        node txn.js BOOTSTRAP PREFIX read TOPIC
//
// With read, reads TOPIC read_committed to its high watermark (as in 4
// below) and prints {"read": [...]}. Otherwise:
//
// 1. A transactional producer ({transactionalId, idempotent: true,
//    maxInFlightRequests: 1}) writes transactions to PREFIX-a and PREFIX-b
//    with transaction(), send and sendBatch, committing some and aborting
//    others.
// 2. A transaction sends offsets of PREFIX-group (sendOffsets) and records
//    to PREFIX-out, and aborts: the group must commit nothing.
// 3. Consume-transform-produce: a group consumer (readUncommitted: false,
//    no auto commit) reads PREFIX-in from the start, and each batch is
//    copied to PREFIX-out with its offsets (sendOffsets) in one
//    transaction. The second batch's transaction is aborted, its output
//    marked "aborted-", and the consumer seeks back to the batch's start.
// 4. read_committed group consumers read PREFIX-a and PREFIX-b, then
//    PREFIX-out, each to the partitions' high watermarks (every
//    transaction has ended, so the last stable offsets are there too).
// 5. A second producer with the same transactional id fences the first.
//
// Prints one JSON object for test/compat/txn_kafkajs_test.go.

'use strict'

const { Kafka, logLevel } = require('kafkajs')

const [bootstrap, prefix, mode, readTopic] = process.argv.slice(2)
if (!bootstrap || !prefix || (mode && (mode !== 'read' || !readTopic))) {
  console.error('usage: node txn.js BOOTSTRAP PREFIX [read TOPIC]')
  process.exit(2)
}

const partitions = 2
const input = 60
const deadline = Date.now() + 25000

const logCreator = () => ({ namespace, label, log }) => {
  console.error(`${label} [${namespace}] ${log.message} ${JSON.stringify(log)}`)
}

const kafka = new Kafka({
  clientId: 'floe-compat-kafkajs-txn',
  brokers: [bootstrap],
  logLevel: logLevel.WARN,
  logCreator,
  connectionTimeout: 5000,
  requestTimeout: 10000
})

// until resolves when check() holds, polling every 50 ms, and fails at
// the deadline.
async function until (what, check) {
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

function transactionalProducer (transactionalId) {
  return kafka.producer({
    transactionalId,
    idempotent: true,
    maxInFlightRequests: 1,
    transactionTimeout: 30000,
    allowAutoTopicCreation: false
  })
}

function groupConsumer (groupId) {
  return kafka.consumer({
    groupId,
    readUncommitted: false,
    maxWaitTimeInMs: 250,
    sessionTimeout: 10000,
    heartbeatInterval: 500,
    allowAutoTopicCreation: false
  })
}

async function produceTransactions (topics) {
  const producer = transactionalProducer(`${prefix}-producer`)
  await producer.connect()
  const committed = []
  const aborted = []
  for (let t = 0; t < 5; t++) {
    const txn = await producer.transaction()
    const values = { [topics[0]]: [], [topics[1]]: [] }
    for (let i = 0; i < 8; i++) {
      values[topics[i % 2]].push({ partition: Math.floor(i / 2) % partitions, value: `t${t}-r${i}` })
    }
    if (t === 2) {
      await txn.sendBatch({ acks: -1, topicMessages: topics.map(topic => ({ topic, messages: values[topic] })) })
    } else {
      for (const topic of topics) await txn.send({ topic, acks: -1, messages: values[topic] })
    }
    const all = topics.flatMap(topic => values[topic].map(m => m.value))
    if (t % 2 === 1) {
      await txn.abort()
      aborted.push(...all)
    } else {
      await txn.commit()
      committed.push(...all)
    }
  }
  await producer.disconnect()
  return { committed, aborted }
}

// readCommitted reads topics with a new group from the start until every
// partition has been read to the high watermark it has now.
async function readCommitted (admin, groupId, topics) {
  const ends = {}
  for (const topic of topics) {
    for (const o of await admin.fetchTopicOffsets(topic)) {
      if (Number(o.high) > 0) ends[`${topic}/${o.partition}`] = Number(o.high)
    }
  }
  const consumer = groupConsumer(groupId)
  const reached = {}
  // Batches holding only control or aborted records never reach eachBatch
  // but do end with this event, whose lastOffset counts them.
  consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
    const key = `${payload.topic}/${payload.partition}`
    reached[key] = Math.max(reached[key] || 0, Number(payload.lastOffset) + 1)
  })
  const read = []
  await consumer.connect()
  await consumer.subscribe({ topics, fromBeginning: true })
  await consumer.run({
    autoCommit: false,
    eachBatch: async ({ batch }) => {
      for (const m of batch.messages) {
        read.push({ topic: batch.topic, partition: batch.partition, offset: Number(m.offset), value: m.value.toString() })
      }
    }
  })
  await until(`read_committed of ${topics}: ${read.length} records, at ${JSON.stringify(reached)} of ${JSON.stringify(ends)}`,
    () => Object.keys(ends).every(k => (reached[k] || 0) >= ends[k]))
  await consumer.disconnect()
  return read
}

async function fetchGroupOffsets (admin, groupId, topic) {
  const [res] = await admin.fetchOffsets({ groupId, topics: [topic] })
  const out = {}
  for (const p of res.partitions) out[p.partition] = Number(p.offset)
  return out
}

async function copyTransactionally (admin) {
  const src = `${prefix}-in`
  const dst = `${prefix}-out`
  const group = `${prefix}-group`

  const plain = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false })
  await plain.connect()
  const messages = []
  for (let i = 0; i < input; i++) {
    messages.push({ partition: i % partitions, value: `v${String(i).padStart(3, '0')}` })
  }
  await plain.send({ topic: src, acks: -1, messages })
  await plain.disconnect()

  const copier = transactionalProducer(`${prefix}-copier`)
  await copier.connect()

  // Offsets sent in an aborted transaction are never committed.
  const abortedOut = []
  const txn = await copier.transaction()
  const outs = [{ partition: 0, value: 'aborted-first' }, { partition: 1, value: 'aborted-second' }]
  await txn.send({ topic: dst, acks: -1, messages: outs })
  abortedOut.push(...outs.map(m => m.value))
  await txn.sendOffsets({
    consumerGroupId: group,
    topics: [{ topic: src, partitions: [{ partition: 0, offset: '30' }, { partition: 1, offset: '30' }] }]
  })
  await txn.abort()
  const offsetsAfterAbort = await fetchGroupOffsets(admin, group, src)

  const consumer = groupConsumer(group)
  await consumer.connect()
  await consumer.subscribe({ topics: [src], fromBeginning: true })
  let copied = 0
  let rounds = 0
  await consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: false,
    eachBatch: async ({ batch, resolveOffset }) => {
      rounds++
      const abort = rounds === 2
      const txn = await copier.transaction()
      const outs = batch.messages.map(m => ({
        partition: batch.partition,
        value: (abort ? 'aborted-' : 'out-') + m.value.toString()
      }))
      await txn.send({ topic: dst, acks: -1, messages: outs })
      const next = String(Number(batch.lastOffset()) + 1)
      await txn.sendOffsets({
        consumerGroupId: group,
        topics: [{ topic: src, partitions: [{ partition: batch.partition, offset: next }] }]
      })
      if (abort) {
        await txn.abort()
        abortedOut.push(...outs.map(m => m.value))
        // Read the batch again: it is copied in a later transaction.
        consumer.seek({ topic: src, partition: batch.partition, offset: batch.firstOffset() })
        return
      }
      await txn.commit()
      resolveOffset(batch.lastOffset())
      copied += batch.messages.length
    }
  })
  await until(`copy: ${copied} of ${input} records copied`, () => copied >= input)
  await consumer.disconnect()
  await copier.disconnect()
  const groupOffsets = await fetchGroupOffsets(admin, group, src)
  return { rounds, aborted: abortedOut, offsets_after_abort: offsetsAfterAbort, group_offsets: groupOffsets }
}

// fence: a second producer with the same transactional id fences the
// first, whose open transaction is aborted and whose next send and commit
// fail.
async function fence (admin) {
  const topic = `${prefix}-fence`
  const zombie = transactionalProducer(`${prefix}-fenced`)
  await zombie.connect()
  const ztxn = await zombie.transaction()
  await ztxn.send({ topic, acks: -1, messages: [{ partition: 0, value: 'zombie' }] })

  const fresh = transactionalProducer(`${prefix}-fenced`)
  await fresh.connect()
  const ftxn = await fresh.transaction()
  await ftxn.send({ topic, acks: -1, messages: [{ partition: 0, value: 'fresh' }] })
  await ftxn.commit()
  await fresh.disconnect()

  const errors = {}
  for (const [step, fn] of [
    ['send', () => ztxn.send({ topic, acks: -1, messages: [{ partition: 0, value: 'zombie-2' }] })],
    ['commit', () => ztxn.commit()]
  ]) {
    try {
      await fn()
      errors[step] = null
    } catch (e) {
      errors[step] = { name: e.name, type: e.type || null, retriable: e.retriable }
    }
  }
  await zombie.disconnect()
  return { errors, read: await readCommitted(admin, `${prefix}-fence-reader`, [topic]) }
}

async function main () {
  const admin = kafka.admin()
  await admin.connect()
  if (mode === 'read') {
    const read = await readCommitted(admin, `${prefix}-reader`, [readTopic])
    await admin.disconnect()
    process.stdout.write(JSON.stringify({ read }))
    return
  }
  const topics = [`${prefix}-a`, `${prefix}-b`]
  await admin.createTopics({
    waitForLeaders: true,
    topics: [...topics, `${prefix}-in`, `${prefix}-out`].map(topic => ({ topic, numPartitions: partitions, replicationFactor: 1 }))
  })

  const produce = await produceTransactions(topics)
  produce.read = await readCommitted(admin, `${prefix}-reader`, topics)
  const copy = await copyTransactionally(admin)
  copy.read = await readCommitted(admin, `${prefix}-out-reader`, [`${prefix}-out`])
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic: `${prefix}-fence`, numPartitions: 1, replicationFactor: 1 }] })
  const fenced = await fence(admin)
  await admin.disconnect()
  process.stdout.write(JSON.stringify({ produce, copy, fence: fenced }))
}

main().catch(err => {
  console.error(err && err.stack ? err.stack : err)
  process.exit(1)
})
