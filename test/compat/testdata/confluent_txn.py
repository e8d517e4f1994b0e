"""Kafka transactions through Floe with confluent-kafka-python (librdkafka).

Usage: confluent_txn.py BOOTSTRAP PREFIX PHASE...
       confluent_txn.py BOOTSTRAP PREFIX read TOPIC PARTITIONS

Reads TOPIC read_committed to its end, or runs the phases named, in
order:

produce: a transactional producer (init_transactions, begin_transaction,
   produce, commit_transaction / abort_transaction) writes transactions to
   PREFIX-a and PREFIX-b, committing some and aborting others. A last one
   stays open while a read_committed consumer reads both topics to their
   end: the consumer must stop before it (librdkafka reports the end of a
   partition at its last stable offset), then see it once it commits.
copy: consume-transform-produce: a group consumer (isolation.level
   read_committed) reads PREFIX-in, and a transactional producer copies
   each batch to PREFIX-out with the consumer's offsets
   (send_offsets_to_transaction with consumer_group_metadata()) in the
   same transaction. The second batch's transaction is aborted, its output
   marked "aborted-", and the consumer rewinds to the group's committed
   offsets, as an application does after an abort.
   A read_committed consumer reads PREFIX-out.
fence: a second producer with the same transactional id fences the first.
timeout: a transaction outlives its timeout.
unstable: a group member starts while a transaction holds its group's
   offsets.

Prints one JSON object for test/compat/txn_python_test.go to check.
"""

import json
import sys
import time

from confluent_kafka import (Consumer, KafkaError, KafkaException, OFFSET_BEGINNING, OFFSET_INVALID, Producer,
                             TopicPartition)
from confluent_kafka.admin import AdminClient, NewTopic

PARTITIONS = 2
INPUT = 60
DEADLINE = time.monotonic() + 25


def fail(msg):
    print(msg, file=sys.stderr)
    sys.exit(1)


def check_deadline(what):
    if time.monotonic() > DEADLINE:
        fail(f"timed out: {what}")


def create_topics(bootstrap, topics, partitions=PARTITIONS):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(t, num_partitions=partitions, replication_factor=1) for t in topics],
                                  operation_timeout=10, request_timeout=10)
    for f in futures.values():
        f.result(timeout=15)  # raises on error


def transactional_producer(bootstrap, txn_id, timeout_ms=30000):
    errors = []

    def delivered(err, msg):
        if err is not None:
            errors.append(str(err))

    p = Producer({
        "bootstrap.servers": bootstrap,
        "transactional.id": txn_id,
        "transaction.timeout.ms": timeout_ms,
        "linger.ms": 5,
        "on_delivery": delivered,
    })
    p.init_transactions(15)
    return p, errors


def read_committed_consumer(bootstrap, topics, group, partitions=PARTITIONS):
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,  # required by librdkafka; assign() never joins it
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
    })
    c.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t in topics for p in range(partitions)])
    return c


def read_to_end(c, topics, what, partitions=PARTITIONS):
    """Reads until every partition reports its end; returns the values."""
    values = []
    eof = set()
    while len(eof) < len(topics) * partitions:
        check_deadline(f"{what}: {len(values)} records, ends {sorted(eof)}")
        msg = c.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            if msg.error().code() == KafkaError._PARTITION_EOF:
                eof.add((msg.topic(), msg.partition()))
                continue
            fail(f"{what}: consume error: {msg.error()}")
        values.append({"topic": msg.topic(), "partition": msg.partition(), "offset": msg.offset(),
                       "value": msg.value().decode()})
    return values


def produce_transactions(bootstrap, prefix):
    topics = [f"{prefix}-a", f"{prefix}-b"]
    p, errors = transactional_producer(bootstrap, f"{prefix}-producer")
    committed, aborted = [], []
    for txn in range(5):
        p.begin_transaction()
        values = []
        for i in range(8):
            v = f"t{txn}-r{i}"
            values.append(v)
            p.produce(topics[i % 2], value=v.encode(), partition=(i // 2) % PARTITIONS)
        if txn % 2 == 1:
            # Flushed first, so that the aborted records are written (an
            # abort purges the ones not yet sent).
            if p.flush(15):
                fail("aborted transaction: records not delivered")
            p.abort_transaction(15)
            aborted += values
        else:
            p.commit_transaction(15)
            committed += values
    if errors:
        fail("delivery errors: " + "; ".join(errors[:10]))

    # A transaction left open holds read_committed consumers back.
    p.begin_transaction()
    open_values = []
    for i in range(4):
        v = f"open-r{i}"
        open_values.append(v)
        p.produce(topics[i % 2], value=v.encode(), partition=(i // 2) % PARTITIONS)
    if p.flush(15):
        fail("open transaction: records not delivered")
    c = read_committed_consumer(bootstrap, topics, f"{prefix}-reader")
    before = read_to_end(c, topics, "read_committed with a transaction open")
    p.commit_transaction(15)
    committed += open_values
    after = read_to_end(c, topics, "read_committed after the open transaction commits")
    c.close()
    if errors:
        fail("delivery errors: " + "; ".join(errors[:10]))
    return {"committed": committed, "aborted": aborted, "open": open_values,
            "read_before_commit": before, "read_after_commit": after}


def copy_transactionally(bootstrap, prefix):
    src, dst, group = f"{prefix}-in", f"{prefix}-out", f"{prefix}-group"
    plain = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(INPUT):
        plain.produce(src, value=f"v{i:03d}".encode(), partition=i % PARTITIONS)
    if plain.flush(15):
        fail("input: records not delivered")

    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 6000,
    })
    c.subscribe([src])
    p, errors = transactional_producer(bootstrap, f"{prefix}-copier")
    copied, aborted_out, rounds = 0, [], 0
    while copied < INPUT:
        check_deadline(f"copy: {copied} of {INPUT} records copied")
        msgs = c.consume(num_messages=10, timeout=0.5)
        msgs = [m for m in msgs if not m.error()]
        if not msgs:
            continue
        rounds += 1
        abort = rounds == 2
        p.begin_transaction()
        next_offsets = {}
        for m in msgs:
            v = ("aborted-" if abort else "out-") + m.value().decode()
            p.produce(dst, value=v.encode(), partition=m.partition())
            next_offsets[m.partition()] = m.offset() + 1
            if abort:
                aborted_out.append(v)
        offsets = [TopicPartition(src, part, o) for part, o in sorted(next_offsets.items())]
        p.send_offsets_to_transaction(offsets, c.consumer_group_metadata(), 15)
        if abort:
            if p.flush(15):
                fail("aborted copy: records not delivered")
            p.abort_transaction(15)
            # Rewind to the offsets the group committed: the aborted
            # batch is read again and copied in a later transaction.
            for tp in c.committed(c.assignment(), timeout=10):
                c.seek(TopicPartition(src, tp.partition, OFFSET_BEGINNING if tp.offset == OFFSET_INVALID else tp.offset))
        else:
            p.commit_transaction(15)
            copied += len(msgs)
    if errors:
        fail("delivery errors: " + "; ".join(errors[:10]))
    group_offsets = {str(tp.partition): tp.offset
                     for tp in c.committed([TopicPartition(src, part) for part in range(PARTITIONS)], timeout=10)}
    c.close()

    out = read_committed_consumer(bootstrap, [dst], f"{prefix}-out-reader")
    read = read_to_end(out, [dst], "read_committed of the copy")
    out.close()
    return {"rounds": rounds, "aborted": aborted_out, "group_offsets": group_offsets, "read": read}


def kafka_error(e):
    err = e.args[0]
    return {"name": err.name(), "fatal": err.fatal(), "retriable": err.retriable(),
            "txn_requires_abort": err.txn_requires_abort(), "str": err.str()}


def fence(bootstrap, prefix):
    """A second producer with the same transactional id fences the first,
    whose open transaction is aborted and whose commit fails fatally."""
    topic, txn_id = f"{prefix}-fence", f"{prefix}-fenced"
    zombie, _ = transactional_producer(bootstrap, txn_id)
    zombie.begin_transaction()
    zombie.produce(topic, value=b"zombie", partition=0)
    if zombie.flush(15):
        fail("zombie: records not delivered")

    fresh, errors = transactional_producer(bootstrap, txn_id)
    fresh.begin_transaction()
    fresh.produce(topic, value=b"fresh", partition=0)
    fresh.commit_transaction(15)
    if errors:
        fail("fresh producer: " + "; ".join(errors))

    zombie_error = None
    try:
        zombie.produce(topic, value=b"zombie-2", partition=0)
        zombie.commit_transaction(15)
    except KafkaException as e:
        zombie_error = kafka_error(e)
    c = read_committed_consumer(bootstrap, [topic], f"{prefix}-fence-reader", partitions=1)
    read = read_to_end(c, [topic], "read_committed after fencing", partitions=1)
    c.close()
    return {"zombie_error": zombie_error, "read": read}


def time_out(bootstrap, prefix):
    """A transaction outlives its timeout and the coordinator aborts it,
    bumping the producer's epoch. librdkafka then takes its commit's
    PRODUCER_FENCED as fatal, as it does against Kafka; a new instance
    with the same transactional id carries on."""
    topic, txn_id = f"{prefix}-timeout", f"{prefix}-slow"
    # Two seconds: long enough for the record to be written (librdkafka
    # caps message.timeout.ms at the transaction timeout) on a loaded
    # machine, short for the test.
    p, errors = transactional_producer(bootstrap, txn_id, timeout_ms=2000)
    # Metadata first: librdkafka's produce() learns of a new topic only at
    # its next one-second scan, which would outlast message.timeout.ms
    # (capped at transaction.timeout.ms).
    p.list_topics(topic, timeout=10)
    p.begin_transaction()
    p.produce(topic, value=b"timed-out", partition=0)
    if p.flush(15) or errors:
        fail(f"timed-out transaction: records not delivered {errors}")
    # The coordinator's abort writes a marker after the record: the last
    # stable offset (the high watermark a read_committed client is told)
    # reaches 2.
    watch = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{prefix}-timeout-watch",
                      "isolation.level": "read_committed"})
    while watch.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False)[1] < 2:
        check_deadline("the coordinator to abort the timed-out transaction")
        time.sleep(0.05)
    watch.close()
    commit_error = None
    try:
        p.commit_transaction(15)
    except KafkaException as e:
        commit_error = kafka_error(e)

    fresh, errors = transactional_producer(bootstrap, txn_id)
    fresh.begin_transaction()
    fresh.produce(topic, value=b"recovered", partition=0)
    fresh.commit_transaction(15)
    if errors:
        fail("after the timeout: " + "; ".join(errors))
    c = read_committed_consumer(bootstrap, [topic], f"{prefix}-timeout-reader", partitions=1)
    read = read_to_end(c, [topic], "read_committed after the timeout", partitions=1)
    c.close()
    return {"commit_error": commit_error, "read": read}


def unstable(bootstrap, prefix):
    """While a transaction holds offsets of a group, a read_committed
    member of the group waits for it to end before it starts (librdkafka
    sends OffsetFetch with require_stable and retries
    UNSTABLE_OFFSET_COMMIT, KIP-447), so it starts from the offsets the
    transaction commits rather than the ones before them."""
    src, group = f"{prefix}-unstable", f"{prefix}-unstable-group"
    plain = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(20):
        plain.produce(src, value=f"u{i:02d}".encode(), partition=0)
    if plain.flush(15):
        fail("unstable: records not delivered")

    p, errors = transactional_producer(bootstrap, f"{prefix}-pending")
    # Group metadata of no member (generation -1): the offsets are not
    # checked against a member.
    meta = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    p.begin_transaction()
    p.send_offsets_to_transaction([TopicPartition(src, 0, 10)], meta.consumer_group_metadata(), 15)
    meta.close()

    assigned = []
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "isolation.level": "read_committed",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": 6000,
    })
    c.subscribe([src], on_assign=lambda consumer, parts: assigned.extend(parts))
    early = []

    def poll():
        msg = c.poll(0.1)
        if msg is not None and not msg.error():
            return msg.offset()
        return None

    while not assigned:
        check_deadline("unstable: the member's assignment")
        o = poll()
        if o is not None:
            early.append(o)
    # The member has its partition and asks for its offset: for a second,
    # it must read nothing.
    until = time.monotonic() + 1
    while time.monotonic() < until:
        o = poll()
        if o is not None:
            early.append(o)
    p.commit_transaction(15)
    read = []
    while max(early + read, default=-1) < 19:
        check_deadline(f"unstable: read offsets {read}")
        o = poll()
        if o is not None:
            read.append(o)
    c.close()
    if errors:
        fail("unstable: " + "; ".join(errors))
    return {"read_while_pending": early, "read_after_commit": read}


PHASES = {"produce": produce_transactions, "copy": copy_transactionally, "fence": fence, "timeout": time_out,
          "unstable": unstable}


def main():
    bootstrap, prefix, phases = sys.argv[1], sys.argv[2], sys.argv[3:]
    if phases[0] == "read":
        # read TOPIC PARTITIONS: read_committed, to the end.
        topic, partitions = phases[1], int(phases[2])
        c = read_committed_consumer(bootstrap, [topic], f"{prefix}-reader", partitions=partitions)
        json.dump({"read": read_to_end(c, [topic], f"read_committed of {topic}", partitions=partitions)}, sys.stdout)
        c.close()
        return
    create_topics(bootstrap, [f"{prefix}-{t}" for t in ("a", "b", "in", "out")])
    create_topics(bootstrap, [f"{prefix}-fence", f"{prefix}-timeout", f"{prefix}-unstable"], partitions=1)
    result, seconds = {}, {}
    for name in phases:
        start = time.monotonic()
        result[name] = PHASES[name](bootstrap, prefix)
        seconds[name] = round(time.monotonic() - start, 3)
    result["seconds"] = seconds
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
