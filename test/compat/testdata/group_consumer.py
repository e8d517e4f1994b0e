"""A consumer-group member for the mixed-client group test.

usage: group_consumer.py confluent|kafka BOOTSTRAP GROUP TOPIC SECONDS [STRATEGY]

Subscribes with the range assignor (the one every client here shares) or,
for confluent, STRATEGY (cooperative-sticky: librdkafka's incremental
rebalancing),
prints one JSON line per record ({"p": partition, "o": offset}) as soon as
it is consumed, commits synchronously after each record, and leaves the
group cleanly after SECONDS.
"""
import json
import sys
import time

client, bootstrap, group, topic, seconds = sys.argv[1:6]
strategy = sys.argv[6] if len(sys.argv) > 6 else "range"
deadline = time.time() + float(seconds)


def emit(partition, offset):
    print(json.dumps({"p": partition, "o": offset}), flush=True)


if client == "confluent":
    from confluent_kafka import Consumer

    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "client.id": "py-confluent",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "partition.assignment.strategy": strategy,
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
    })
    c.subscribe([topic])
    while time.time() < deadline:
        m = c.poll(0.2)
        if m is None or m.error():
            continue
        emit(m.partition(), m.offset())
        c.commit(message=m, asynchronous=False)
    c.close()
else:
    from kafka import KafkaConsumer
    from kafka.coordinator.assignors.range import RangePartitionAssignor

    c = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        client_id="py-kafka",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        partition_assignment_strategy=[RangePartitionAssignor],
        session_timeout_ms=6000,
        heartbeat_interval_ms=500,
    )
    while time.time() < deadline:
        for records in c.poll(timeout_ms=200).values():
            for r in records:
                emit(r.partition, r.offset)
            c.commit()
    c.close()
