"""Round trip through Floe with kafka-python (a pure-Python client).

Usage: kafka_python_roundtrip.py BOOTSTRAP TOPIC

kafka-python does not auto-create topics, so TOPIC is created with 3
partitions through KafkaAdminClient.create_topics. Records are produced
once per codec this installation supports (gzip always; snappy, lz4 and
zstd when python3-snappy, python3-lz4 and python3-zstandard are present),
read back with assign() from the beginning and no group, and printed as
one JSON object for the Go test (test/compat/python_test.go) to check.
"""

import base64
import json
import sys
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.codec import has_lz4, has_snappy, has_zstd

PARTITIONS = 3
PER_CODEC = 400
DEADLINE = time.monotonic() + 25


def b64(b):
    return base64.b64encode(b).decode("ascii")


def fail(msg):
    print(msg, file=sys.stderr)
    sys.exit(1)


def codecs():
    out = ["gzip"]
    if has_snappy():
        out.append("snappy")
    if has_lz4():
        out.append("lz4")
    if has_zstd():
        out.append("zstd")
    return out


def create_topic(bootstrap, topic):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="floe-compat-admin", request_timeout_ms=10000)
    resp = admin.create_topics([NewTopic(name=topic, num_partitions=PARTITIONS, replication_factor=1)],
                               timeout_ms=10000)
    for name, code, *_ in resp.topic_errors:
        if code != 0:
            fail(f"create_topics {name}: error code {code}")
    admin.close()


def produce(bootstrap, topic, codec_list):
    produced = []
    for codec in codec_list:
        p = KafkaProducer(bootstrap_servers=bootstrap, acks="all", compression_type=codec,
                          linger_ms=5, retries=3, request_timeout_ms=10000)
        futures = []
        for i in range(PER_CODEC):
            key = f"{codec}-key-{i % 11}".encode()
            value = f"{codec} value {i} ".encode() + bytes([i % 256, 0, 255]) + b"y" * (i % 30)
            part = i % PARTITIONS
            headers = {"codec": codec, "i": str(i)}
            rec = {"partition": part, "key": b64(key), "value": b64(value), "headers": headers}
            produced.append(rec)
            fut = p.send(topic, key=key, value=value, partition=part,
                         headers=[(k, v.encode()) for k, v in headers.items()])
            futures.append((rec, fut))
        p.flush(timeout=20)
        for rec, fut in futures:
            md = fut.get(timeout=10)
            rec["offset"] = md.offset
            rec["delivered_partition"] = md.partition
        p.close(timeout=10)
    return produced


def consume(bootstrap, topic):
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                      auto_offset_reset="earliest", request_timeout_ms=15000)
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    c.assign(tps)
    c.seek_to_beginning(*tps)
    ends = c.end_offsets(tps)
    begins = c.beginning_offsets(tps)
    consumed = []
    while any(c.position(tp) < ends[tp] for tp in tps):
        if time.monotonic() > DEADLINE:
            fail(f"consume timed out after {len(consumed)} records")
        for tp, msgs in c.poll(timeout_ms=500).items():
            for m in msgs:
                consumed.append({
                    "partition": m.partition,
                    "offset": m.offset,
                    "key": b64(m.key or b""),
                    "value": b64(m.value or b""),
                    "headers": {k: v.decode() for k, v in (m.headers or [])},
                    "timestamp": m.timestamp,
                })
    first = [r for r in consumed if r["partition"] == 0][0]
    by_time = c.offsets_for_times({tps[0]: first["timestamp"]})[tps[0]]
    c.close()
    watermarks = {str(tp.partition): [begins[tp], ends[tp]] for tp in tps}
    return consumed, watermarks, by_time.offset if by_time else None


def main():
    bootstrap, topic = sys.argv[1], sys.argv[2]
    codec_list = codecs()
    create_topic(bootstrap, topic)
    produced = produce(bootstrap, topic, codec_list)
    consumed, watermarks, by_time = consume(bootstrap, topic)
    json.dump({
        "client": "kafka-python",
        "codecs": codec_list,
        "produced": produced,
        "consumed": consumed,
        "watermarks": watermarks,
        "offset_for_first_timestamp": by_time,
    }, sys.stdout)


if __name__ == "__main__":
    main()
