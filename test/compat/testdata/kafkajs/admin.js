// The admin calls of KafkaJS's admin client that configs.js leaves out.
//
// Usage: node admin.js BOOTSTRAP TOPIC GROUP
//
// Creates TOPIC with 2 partitions and grows it to 3, produces 10 records
// to each partition, then lists offsets (latest, earliest, by
// timestamp), deletes records, commits, reads, sets and resets a
// group's offsets, lists, describes and deletes groups, creates,
// describes and deletes ACLs, lists partition reassignments and deletes
// the topic. Prints one JSON object on stdout for the Go test
// (test/compat/admin_kafkajs_test.go).

'use strict'

const { Kafka, AclResourceTypes, AclOperationTypes, AclPermissionTypes, ResourcePatternTypes, logLevel } = require('kafkajs')

const [bootstrap, topic, groupId] = process.argv.slice(2)
if (!bootstrap || !topic || !groupId) {
  console.error('usage: node admin.js BOOTSTRAP TOPIC GROUP')
  process.exit(2)
}

// setOffsets and resetOffsets each run a consumer that joins the group,
// commits and stops after its first fetch (about 5s, its MaxWait).
const kafka = new Kafka({ clientId: 'floe-compat-kafkajs-admin', brokers: [bootstrap], logLevel: logLevel.NOTHING, retry: { retries: 2 } })

async function errorOf (fn) {
  try {
    await fn()
    return null
  } catch (e) {
    if (e.errors && e.errors.length) return e.errors[0].type || e.errors[0].name
    if (e.groups && e.groups.length && e.groups[0].error) return e.groups[0].error.type
    return e.type || e.name
  }
}

const byPartition = offsets => Object.fromEntries(offsets.map(o => [String(o.partition), o]))

async function main () {
  const admin = kafka.admin()
  await admin.connect()
  const out = {}
  const cluster = await admin.describeCluster()
  out.cluster = { brokers: cluster.brokers.length, controller: cluster.controller, cluster_id: cluster.clusterId }
  out.created = await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 2, replicationFactor: 1 }] })
  out.create_partitions = await errorOf(() => admin.createPartitions({ topicPartitions: [{ topic, count: 3 }] }))
  out.create_partitions_fewer = await errorOf(() => admin.createPartitions({ topicPartitions: [{ topic, count: 1 }] }))
  const md = await admin.fetchTopicMetadata({ topics: [topic] })
  out.partitions = md.topics[0].partitions.length

  const producer = kafka.producer()
  await producer.connect()
  const before = Date.now()
  for (let p = 0; p < 3; p++) {
    await producer.send({ topic, acks: -1, messages: Array.from({ length: 10 }, (_, i) => ({ partition: p, value: `v${i}` })) })
  }
  await producer.disconnect()

  out.offsets = byPartition(await admin.fetchTopicOffsets(topic))
  out.offsets_by_timestamp = byPartition(await admin.fetchTopicOffsetsByTimestamp(topic, before - 60000))
  out.delete_records = await errorOf(() => admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '4' }] }))
  out.offsets_after_delete = byPartition(await admin.fetchTopicOffsets(topic))

  out.set_offsets = await errorOf(() => admin.setOffsets({ groupId, topic, partitions: [{ partition: 0, offset: '7' }, { partition: 1, offset: '3' }] }))
  out.fetched = (await admin.fetchOffsets({ groupId, topics: [topic] })).map(t => ({ topic: t.topic, partitions: byPartition(t.partitions) }))
  out.reset_offsets = await errorOf(() => admin.resetOffsets({ groupId, topic, earliest: true }))
  out.after_reset = (await admin.fetchOffsets({ groupId, topics: [topic] })).map(t => ({ topic: t.topic, partitions: byPartition(t.partitions) }))
  out.groups = (await admin.listGroups()).groups.map(g => g.groupId)
  out.described = (await admin.describeGroups([groupId])).groups.map(g => ({ groupId: g.groupId, state: g.state, errorCode: g.errorCode }))
  out.delete_groups = (await admin.deleteGroups([groupId])).map(g => ({ groupId: g.groupId, errorCode: g.errorCode }))
  out.delete_unknown_group = await errorOf(() => admin.deleteGroups(['kafkajs-no-such-group']))

  // On another topic name: an ACL on TOPIC would end the open default
  // for it, and this client (User:ANONYMOUS) could no longer delete it.
  const aclTopic = topic + '-acl'
  const acl = {
    resourceType: AclResourceTypes.TOPIC,
    resourceName: aclTopic,
    resourcePatternType: ResourcePatternTypes.LITERAL,
    principal: 'User:kafkajs-user',
    host: '*',
    operation: AclOperationTypes.READ,
    permissionType: AclPermissionTypes.ALLOW
  }
  out.create_acls = await errorOf(() => admin.createAcls({ acl: [acl] }))
  const described = await admin.describeAcls({
    resourceType: AclResourceTypes.TOPIC,
    resourceName: aclTopic,
    resourcePatternType: ResourcePatternTypes.ANY,
    operation: AclOperationTypes.ANY,
    permissionType: AclPermissionTypes.ANY
  })
  out.acls = described.resources.map(r => ({ name: r.resourceName, acls: r.acls.map(a => a.principal + ':' + a.operation) }))
  const deleted = await admin.deleteAcls({ filters: [acl] })
  out.deleted_acls = deleted.filterResponses.map(f => f.matchingAcls.length)

  out.delete_topics = await errorOf(() => admin.deleteTopics({ topics: [topic] }))
  out.topics_after = (await admin.listTopics()).filter(t => t === topic)
  await admin.disconnect()
  process.stdout.write(JSON.stringify(out) + '\n')
}

main().catch(e => {
  console.error(e)
  process.exit(1)
})
