"""Topic and broker configs through kafka-python's admin client.

Usage: kafka_python_configs.py BOOTSTRAP TOPIC

Creates TOPIC with configs, describes it and the broker (with synonyms),
alters the topic's configs, sets an invalid and an unknown config and a
broker config, and prints one JSON object for the Go test
(test/compat/configs_test.go) to check.
"""

import json
import sys

from kafka.admin import (ConfigResource, ConfigResourceType,
                         KafkaAdminClient, NewTopic)

BOOTSTRAP, TOPIC = sys.argv[1], sys.argv[2]
admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP, client_id="py-configs")
out = {}

created = admin.create_topics([NewTopic(TOPIC, 1, 1, topic_configs={
    "compression.type": "gzip",
    "message.format.version": "2.8",
    "preallocate": "true",
})])
out["create"] = [[t[0], t[1]] for t in created.topic_errors]

try:
    admin.create_topics([NewTopic(TOPIC + "-bad", 1, 1, topic_configs={
        "min.cleanable.dirty.ratio": "1.5",
    })])
    out["create_bad"] = None
except Exception as e:  # noqa: BLE001 - the error's code is what is checked
    out["create_bad"] = getattr(e, "errno", -1)


def describe(kind, name, synonyms=False):
    resp = admin.describe_configs([ConfigResource(kind, name)], include_synonyms=synonyms)[0]
    res = resp.resources[0]
    entries = {}
    for e in res[4]:
        entry = {"value": e[1], "read_only": e[2], "source": e[3]}
        if synonyms:
            entry["synonyms"] = [[s[0], s[1], s[2]] for s in e[5]]
        entries[e[0]] = entry
    return {"error": res[0], "configs": entries}


out["describe"] = describe(ConfigResourceType.TOPIC, TOPIC, synonyms=True)


def alter(kind, name, configs):
    resp = admin.alter_configs([ConfigResource(kind, name, configs=configs)])
    res = resp.resources[0]
    return [res[0], res[1]]


out["alter"] = alter(ConfigResourceType.TOPIC, TOPIC, {"compression.type": "lz4", "retention.ms": "3600000"})
out["after_alter"] = describe(ConfigResourceType.TOPIC, TOPIC)
out["alter_invalid"] = alter(ConfigResourceType.TOPIC, TOPIC, {"compression.type": "brotli"})
out["alter_unknown"] = alter(ConfigResourceType.TOPIC, TOPIC, {"no.such.config": "1"})
broker = str(admin.describe_cluster()["brokers"][0]["node_id"])
out["alter_broker"] = alter(ConfigResourceType.BROKER, broker, {"log.retention.hours": "1"})
out["broker"] = describe(ConfigResourceType.BROKER, broker)

admin.close()
print(json.dumps(out))
