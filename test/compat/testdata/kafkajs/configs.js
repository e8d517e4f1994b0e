// Topic and broker configs through KafkaJS's admin client.
//
// Usage: node configs.js BOOTSTRAP TOPIC
//
// Creates TOPIC with configs, describes it (with synonyms) and the
// broker, alters the topic, and tries an invalid value, an unknown config
// and a broker config. Prints one JSON object on stdout for the Go test
// (test/compat/configs_test.go).

'use strict'

const { Kafka, ConfigResourceTypes, logLevel } = require('kafkajs')

const [bootstrap, topic] = process.argv.slice(2)
if (!bootstrap || !topic) {
  console.error('usage: node configs.js BOOTSTRAP TOPIC')
  process.exit(2)
}

const kafka = new Kafka({ clientId: 'floe-compat-kafkajs-configs', brokers: [bootstrap], logLevel: logLevel.NOTHING, retry: { retries: 2 } })

// errorOf runs fn and returns the protocol error type it threw, or null.
async function errorOf (fn) {
  try {
    await fn()
    return null
  } catch (e) {
    if (e.errors && e.errors.length) return e.errors[0].type || e.errors[0].name
    return e.type || e.name
  }
}

function entries (resource) {
  const out = {}
  for (const e of resource.configEntries) {
    out[e.configName] = {
      value: e.configValue,
      read_only: e.readOnly,
      source: e.configSource,
      synonyms: (e.configSynonyms || []).map(s => [s.configName, s.configValue, s.configSource])
    }
  }
  return { error: resource.errorCode, configs: out }
}

async function main () {
  const admin = kafka.admin()
  await admin.connect()
  const out = {}
  out.created = await admin.createTopics({
    topics: [{
      topic,
      numPartitions: 1,
      replicationFactor: 1,
      configEntries: [
        { name: 'compression.type', value: 'lz4' },
        { name: 'compression.lz4.level', value: '12' },
        { name: 'flush.ms', value: '1000' },
        { name: 'message.timestamp.before.max.ms', value: '86400000' }
      ]
    }]
  })
  out.create_invalid = await errorOf(() => admin.createTopics({
    topics: [{ topic: topic + '-bad', configEntries: [{ name: 'compression.type', value: 'lzma' }] }]
  }))
  const describeTopic = async () => entries((await admin.describeConfigs({
    includeSynonyms: true,
    resources: [{ type: ConfigResourceTypes.TOPIC, name: topic }]
  })).resources[0])
  out.described = await describeTopic()
  out.alter = await errorOf(() => admin.alterConfigs({
    validateOnly: false,
    resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configEntries: [{ name: 'compression.type', value: 'zstd' }, { name: 'cleanup.policy', value: 'compact' }] }]
  }))
  out.after_alter = await describeTopic()
  out.alter_invalid = await errorOf(() => admin.alterConfigs({
    resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configEntries: [{ name: 'min.insync.replicas', value: '0' }] }]
  }))
  out.alter_unknown = await errorOf(() => admin.alterConfigs({
    resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configEntries: [{ name: 'no.such.config', value: '1' }] }]
  }))
  const cluster = await admin.describeCluster()
  const broker = String(cluster.brokers[0].nodeId)
  out.alter_broker = await errorOf(() => admin.alterConfigs({
    resources: [{ type: ConfigResourceTypes.BROKER, name: broker, configEntries: [{ name: 'num.partitions', value: '3' }] }]
  }))
  out.broker = entries((await admin.describeConfigs({
    includeSynonyms: false,
    resources: [{ type: ConfigResourceTypes.BROKER, name: broker }]
  })).resources[0])
  await admin.disconnect()
  process.stdout.write(JSON.stringify(out) + '\n')
}

main().catch(e => {
  console.error(e)
  process.exit(1)
})
