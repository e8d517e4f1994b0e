"""Admin calls of kafka-python's admin client that the other scripts leave out.

Usage: kafka_python_admin.py BOOTSTRAP TOPIC GROUP

Creates TOPIC with 2 partitions, grows it to 3, describes the cluster
and the topic, produces 5 records to each partition, commits offsets
for GROUP with a consumer that never joins (generation -1), then lists,
describes, reads the offsets of and deletes consumer groups, and deletes
the topic. Prints one JSON object for the Go test
(test/compat/admin_python_test.go) to check.
"""

import json
import sys

from kafka import KafkaConsumer, KafkaProducer, OffsetAndMetadata, TopicPartition
from kafka.admin import KafkaAdminClient, NewPartitions, NewTopic
from kafka.errors import KafkaError

BOOTSTRAP, TOPIC, GROUP = sys.argv[1], sys.argv[2], sys.argv[3]
admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP, client_id="py-admin")
out = {}


def error_of(fn):
    try:
        fn()
        return None
    except KafkaError as e:
        return type(e).__name__


cluster = admin.describe_cluster()
out["cluster"] = {"brokers": len(cluster["brokers"]), "controller_id": cluster["controller_id"],
                  "cluster_id": cluster["cluster_id"]}
created = admin.create_topics([NewTopic(TOPIC, 2, 1)])
out["create"] = [[t[0], t[1]] for t in created.topic_errors]
grown = admin.create_partitions({TOPIC: NewPartitions(3)})
out["create_partitions"] = [[t[0], t[1]] for t in grown.topic_errors]
out["create_partitions_fewer"] = error_of(lambda: admin.create_partitions({TOPIC: NewPartitions(1)}))
described = admin.describe_topics([TOPIC])
out["partitions"] = len(described[0]["partitions"])

producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", api_version_auto_timeout_ms=10000)
for p in range(3):
    for i in range(5):
        producer.send(TOPIC, value=b"v%d" % i, partition=p)
producer.flush(timeout=30)
producer.close()

# A consumer that commits without joining: assign(), then commit().
consumer = KafkaConsumer(bootstrap_servers=BOOTSTRAP, group_id=GROUP, enable_auto_commit=False)
tps = [TopicPartition(TOPIC, p) for p in range(3)]
consumer.assign(tps)
consumer.commit({TopicPartition(TOPIC, 0): OffsetAndMetadata(5, "py"), TopicPartition(TOPIC, 1): OffsetAndMetadata(2, "")})
out["end_offsets"] = {str(tp.partition): o for tp, o in consumer.end_offsets(tps).items()}
out["beginning_offsets"] = {str(tp.partition): o for tp, o in consumer.beginning_offsets(tps).items()}
consumer.close()

out["groups"] = [g[0] for g in admin.list_consumer_groups()]
out["described"] = [{"group": g.group, "state": g.state, "protocol_type": g.protocol_type}
                    for g in admin.describe_consumer_groups([GROUP])]
offsets = admin.list_consumer_group_offsets(GROUP)
out["offsets"] = {"%s/%d" % (tp.topic, tp.partition): [o.offset, o.metadata] for tp, o in offsets.items()}
out["delete_groups"] = [[g, e.__name__] for g, e in admin.delete_consumer_groups([GROUP])]
out["delete_unknown_group"] = [[g, e.__name__] for g, e in admin.delete_consumer_groups(["py-no-such-group"])]
deleted = admin.delete_topics([TOPIC])
out["delete_topics"] = [[t[0], t[1]] for t in deleted.topic_error_codes]
out["topics_after"] = [t for t in admin.list_topics() if t == TOPIC]
admin.close()
print(json.dumps(out))
