"""ACLs through kafka-python's admin client.

Usage: kafka_python_acls.py BOOTSTRAP AGENTS

The agent takes the principal from the client id (a test-only hook until
SASL lands): "as:admin" is User:admin, a super user; "as:bob" is
User:bob, who starts with no ACLs. The script records what bob can do
before and after the admin grants him one prefixed ACL (ALL on topics
starting "py-app-") and after the admin deletes it again, and prints one
JSON object for the Go test (test/compat/acl_test.go) to check.
"""

import json
import sys
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.client_async import KafkaClient
from kafka.protocol.fetch import FetchRequest
from kafka.protocol.metadata import MetadataRequest
from kafka.protocol.produce import ProduceRequest
from kafka.record.memory_records import MemoryRecordsBuilder
from kafka.admin import (ACL, ACLFilter, ACLOperation, ACLPermissionType,
                         ACLResourcePatternType, KafkaAdminClient, NewTopic,
                         ResourcePattern, ResourcePatternFilter, ResourceType)

BOOTSTRAP = sys.argv[1]
AGENTS = int(sys.argv[2])
TOPIC, SECRET, GROUP = "py-app-t", "py-secret", "py-app-g"


def error_name(fn):
    """Runs fn and names the exception it raised, or None."""
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - the name is what is checked
        return type(e).__name__
    return None


class Wire:
    """kafka-python's protocol client as one user, asking chosen agents."""

    def __init__(self, user):
        self.cl = KafkaClient(bootstrap_servers=BOOTSTRAP, client_id="as:" + user)
        self.user = user
        # Learn every agent: bootstrap metadata names them all.
        deadline = time.monotonic() + 10
        while len(self.cl.cluster.brokers()) < AGENTS and time.monotonic() < deadline:
            self.cl.poll(future=self.cl.cluster.request_update(), timeout_ms=1000)

    def nodes(self):
        return sorted(b.nodeId for b in self.cl.cluster.brokers())

    def call(self, node, req):
        deadline = time.monotonic() + 10
        while not self.cl.ready(node) and time.monotonic() < deadline:
            self.cl.poll(timeout_ms=50)
        f = self.cl.send(node, req)
        self.cl.poll(future=f, timeout_ms=10000)
        if not f.succeeded():
            raise RuntimeError("request failed: %r" % f.exception)
        return f.value

    def metadata_codes(self, topic):
        """The error code each agent answers for the topic's metadata."""
        return [self.call(n, MetadataRequest[1]([topic])).topics[0][0] for n in self.nodes()]

    def codes(self, topic):
        """Sends one Produce and one Fetch for partition 0 of topic and
        returns their error codes. kafka-python's producer and consumer
        never send them for a topic whose metadata is refused (2.0.2
        retries such metadata until max_block_ms), so the codes are read
        off the wire."""
        node = self.nodes()[0]
        b = MemoryRecordsBuilder(magic=2, compression_type=0, batch_size=1 << 20)
        b.append(0, None, b"raw from " + self.user.encode(), [])
        b.close()
        produced = self.call(node, ProduceRequest[3](transactional_id=None, required_acks=1, timeout=5000,
                                                     topics=[(topic, [(0, bytes(b.buffer()))])]))
        fetched = self.call(node, FetchRequest[4](-1, 100, 1, 1 << 20, 0, [(topic, [(0, 0, 1 << 20)])]))
        return {"produce": produced.topics[0][1][0][1], "fetch": fetched.topics[0][1][0][1]}

    def wait_metadata(self, topic, code):
        """Waits until every agent answers code for the topic's metadata;
        returns the seconds it took."""
        start = time.monotonic()
        while any(c != code for c in self.metadata_codes(topic)) and time.monotonic() - start < 10:
            time.sleep(0.02)
        return round(time.monotonic() - start, 3)


def admin_as(user):
    return KafkaAdminClient(bootstrap_servers=BOOTSTRAP, client_id="as:" + user,
                            request_timeout_ms=10000)


def topics(adm):
    return sorted(t for t in adm.list_topics() if not t.startswith("__"))


def produce(user, topic):
    p = KafkaProducer(bootstrap_servers=BOOTSTRAP, client_id="as:" + user,
                      max_block_ms=5000, retries=0, request_timeout_ms=5000)
    try:
        p.send(topic, b"from " + user.encode()).get(timeout=10)
    finally:
        p.close(timeout=2)


def consume(user, topic):
    """Reads partition 0 from the start; returns the number of records."""
    c = KafkaConsumer(bootstrap_servers=BOOTSTRAP, client_id="as:" + user,
                      auto_offset_reset="earliest", enable_auto_commit=False,
                      request_timeout_ms=11000, session_timeout_ms=10000)
    try:
        tp = TopicPartition(topic, 0)
        c.assign([tp])
        # An explicit position: kafka-python would wait forever for the
        # offset of a topic it may not describe.
        c.seek(tp, 0)
        deadline = time.monotonic() + 8
        n = 0
        while time.monotonic() < deadline and n == 0:
            for recs in c.poll(timeout_ms=500).values():
                n += len(recs)
        return n
    finally:
        c.close()


def join(user, group, topic):
    c = KafkaConsumer(topic, bootstrap_servers=BOOTSTRAP, client_id="as:" + user,
                      group_id=group, enable_auto_commit=False,
                      request_timeout_ms=11000, session_timeout_ms=10000)
    try:
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline and not c.assignment():
            c.poll(timeout_ms=500)
    finally:
        c.close()


def create(adm, topic):
    adm.create_topics([NewTopic(topic, 1, 1)])


def main():
    out = {}
    admin = admin_as("admin")
    create(admin, TOPIC)
    create(admin, SECRET)
    produce("admin", TOPIC)
    bob = admin_as("bob")
    wire = Wire("bob")

    out["before"] = {
        "topics": topics(bob),
        "wire": wire.codes(TOPIC),
        "join": error_name(lambda: join("bob", GROUP, TOPIC)),
        "create": error_name(lambda: create(bob, "py-app-new")),
        "describe_acls": error_name(lambda: bob.describe_acls(ACLFilter(
            principal=None, host="*", operation=ACLOperation.ANY,
            permission_type=ACLPermissionType.ANY,
            resource_pattern=ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY)))),
    }

    grant = ACL(principal="User:bob", host="*", operation=ACLOperation.ALL,
                permission_type=ACLPermissionType.ALLOW,
                resource_pattern=ResourcePattern(ResourceType.TOPIC, "py-app-",
                                                 ACLResourcePatternType.PREFIXED))
    created = admin.create_acls([grant])
    out["create_acls"] = {"succeeded": len(created["succeeded"]),
                          "failed": [repr(f) for f in created["failed"]]}
    acls, err = admin.describe_acls(ACLFilter(
        principal="User:bob", host=None, operation=ACLOperation.ANY,
        permission_type=ACLPermissionType.ANY,
        resource_pattern=ResourcePatternFilter(ResourceType.TOPIC, "py-app-t", ACLResourcePatternType.MATCH)))
    out["described"] = [{"name": a.resource_pattern.resource_name,
                         "pattern": a.resource_pattern.pattern_type.name,
                         "operation": a.operation.name} for a in acls]

    # bob's requests may reach any agent: wait until every agent applies
    # the grant, then check what it opens.
    out["granted_after_s"] = wire.wait_metadata(TOPIC, 0)
    out["after_grant"] = {
        "topics": topics(bob),
        "produce": error_name(lambda: produce("bob", TOPIC)),
        "wire": wire.codes(TOPIC),
        "wire_secret": wire.codes(SECRET),
        "consumed": consume("bob", TOPIC),
        "create": error_name(lambda: create(bob, "py-app-new")),
        "create_other": error_name(lambda: create(bob, "other-new")),
    }

    deleted = admin.delete_acls([ACLFilter(
        principal="User:bob", host="*", operation=ACLOperation.ANY,
        permission_type=ACLPermissionType.ANY,
        resource_pattern=ResourcePatternFilter(ResourceType.TOPIC, "py-app-", ACLResourcePatternType.PREFIXED))])
    out["deleted"] = sum(len(matches) for _, matches, _ in deleted)
    out["revoked_after_s"] = wire.wait_metadata(TOPIC, 29)  # TOPIC_AUTHORIZATION_FAILED
    out["after_revoke"] = {
        "topics": topics(bob),
        "wire": wire.codes(TOPIC),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
