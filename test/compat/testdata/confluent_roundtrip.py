"""Round trip through Floe with confluent-kafka-python (librdkafka).

Usage: confluent_roundtrip.py BOOTSTRAP TOPIC

Creates TOPIC with 3 partitions through the admin client, produces records
with an idempotent producer (acks=all) once per codec (zstd, then lz4),
reads every partition back with assign() from the beginning, and prints one
JSON object for the Go test (test/compat/python_test.go) to check.
Keys and values are base64 so binary bytes survive JSON.
"""

import base64
import json
import sys
import time

from confluent_kafka import Consumer, KafkaError, OFFSET_BEGINNING, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

PARTITIONS = 3
PER_CODEC = 600
CODECS = ["zstd", "lz4"]
DEADLINE = time.monotonic() + 25


def b64(b):
    return base64.b64encode(b).decode("ascii")


def fail(msg):
    print(msg, file=sys.stderr)
    sys.exit(1)


def create_topic(bootstrap, topic):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)],
                                  operation_timeout=10, request_timeout=10)
    for name, f in futures.items():
        f.result(timeout=15)  # raises on error
    md = admin.list_topics(topic=topic, timeout=10)
    got = len(md.topics[topic].partitions)
    if got != PARTITIONS:
        fail(f"metadata shows {got} partitions for {topic}, want {PARTITIONS}")


def produce(bootstrap, topic):
    produced = []
    errors = []
    for codec in CODECS:
        p = Producer({
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "compression.type": codec,
            "linger.ms": 5,
            "batch.num.messages": 100,
        })

        def delivered(err, msg, rec=None):
            if err is not None:
                errors.append(f"{codec}: {err}")
                return
            rec["offset"] = msg.offset()
            rec["delivered_partition"] = msg.partition()

        for i in range(PER_CODEC):
            key = f"{codec}-key-{i % 13}".encode()
            # Binary bytes too: NUL, 0xff and everything in between.
            value = f"{codec} value {i} ".encode() + bytes([i % 256, 0, 255]) + b"z" * (i % 40)
            part = i % PARTITIONS
            headers = {"codec": codec, "i": str(i)}
            rec = {"partition": part, "key": b64(key), "value": b64(value), "headers": headers}
            produced.append(rec)
            while True:
                try:
                    p.produce(topic, value=value, key=key, partition=part,
                              headers=list(headers.items()),
                              on_delivery=lambda err, msg, rec=rec: delivered(err, msg, rec))
                    break
                except BufferError:
                    p.poll(0.1)
            p.poll(0)
        left = p.flush(20)
        if left:
            fail(f"{codec}: {left} records not delivered")
    if errors:
        fail("delivery errors: " + "; ".join(errors[:10]))
    return produced


def consume(bootstrap, topic):
    # librdkafka insists on a group.id, but with assign() and no commits it
    # never needs the coordinator (Floe has none yet).
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "floe-compat-unused",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
    })
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
    consumed = []
    eof = set()
    while len(eof) < PARTITIONS:
        if time.monotonic() > DEADLINE:
            fail(f"consume timed out: {len(consumed)} records, end of partitions {sorted(eof)}")
        msg = c.poll(1.0)
        if msg is None:
            continue
        if msg.error():
            if msg.error().code() == KafkaError._PARTITION_EOF:
                eof.add(msg.partition())
                continue
            fail(f"consume error: {msg.error()}")
        consumed.append({
            "partition": msg.partition(),
            "offset": msg.offset(),
            "key": b64(msg.key() or b""),
            "value": b64(msg.value() or b""),
            "headers": {k: v.decode() for k, v in (msg.headers() or [])},
            "timestamp": msg.timestamp()[1],
        })
    watermarks = {}
    for p in range(PARTITIONS):
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        watermarks[str(p)] = [lo, hi]
    # ListOffsets by timestamp: the first record's own timestamp finds it.
    first = [r for r in consumed if r["partition"] == 0][0]
    found = c.offsets_for_times([TopicPartition(topic, 0, first["timestamp"])], timeout=10)[0]
    if found.error:
        fail(f"offsets_for_times: {found.error}")
    c.close()
    return consumed, watermarks, found.offset


def main():
    bootstrap, topic = sys.argv[1], sys.argv[2]
    create_topic(bootstrap, topic)
    produced = produce(bootstrap, topic)
    consumed, watermarks, by_time = consume(bootstrap, topic)
    json.dump({
        "client": "confluent-kafka-python",
        "codecs": CODECS,
        "produced": produced,
        "consumed": consumed,
        "watermarks": watermarks,
        "offset_for_first_timestamp": by_time,
    }, sys.stdout)


if __name__ == "__main__":
    main()
