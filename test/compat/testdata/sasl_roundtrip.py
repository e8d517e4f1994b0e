"""Produce and consume through a SASL (or TLS) listener with a Python client.

Usage: sasl_roundtrip.py CLIENT BOOTSTRAP TOPIC PROTOCOL MECHANISM USER PASSWORD [CAFILE]

CLIENT is confluent (confluent-kafka-python, librdkafka) or kafka
(kafka-python, which sends SaslHandshake v0 and bare SASL tokens).
PROTOCOL is SASL_PLAINTEXT or SASL_SSL. Produces a few records to TOPIC
(auto-created), reads them back from the beginning with assign() and
prints one JSON object: {"client", "consumed": [values]}. An
authentication failure prints {"client", "error": text} and exits 3, so
that the Go test (test/compat/sasl_test.go) can tell it from a crash.
"""

import json
import sys
import time

N = 20


def confluent(bootstrap, topic, protocol, mechanism, user, password, cafile):
    from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

    conf = {"bootstrap.servers": bootstrap, "security.protocol": protocol, "sasl.mechanisms": mechanism,
            "sasl.username": user, "sasl.password": password}
    if cafile:
        conf["ssl.ca.location"] = cafile
    errors = []
    conf_p = dict(conf, **{"error_cb": lambda e: errors.append(str(e)), "message.timeout.ms": 15000})
    p = Producer(conf_p)
    delivered = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(str(err))
        else:
            delivered.append(msg.offset())

    for i in range(N):
        p.produce(topic, value=f"v{i}".encode(), on_delivery=on_delivery)
    deadline = time.monotonic() + 20
    while len(delivered) < N and time.monotonic() < deadline:
        p.poll(0.1)
        if any("Authentication" in e or "authentication" in e for e in errors):
            return {"error": "; ".join(errors)}
    p.flush(5)
    if len(delivered) < N:
        return {"error": "; ".join(errors) or "not delivered"}
    c = Consumer(dict(conf, **{"group.id": "sasl-py", "enable.auto.commit": False}))
    c.assign([TopicPartition(topic, 0, 0)])
    values = []
    deadline = time.monotonic() + 20
    while len(values) < N and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            raise KafkaException(m.error())
        values.append(m.value().decode())
    c.close()
    return {"consumed": values}


def kafka_python(bootstrap, topic, protocol, mechanism, user, password, cafile):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.errors import KafkaError

    conf = {"bootstrap_servers": bootstrap, "security_protocol": protocol, "sasl_mechanism": mechanism,
            "sasl_plain_username": user, "sasl_plain_password": password, "api_version_auto_timeout_ms": 10000}
    if cafile:
        conf["ssl_cafile"] = cafile
    try:
        p = KafkaProducer(acks="all", **conf)
    except KafkaError as e:
        return {"error": f"{type(e).__name__}: {e}"}
    futures = [p.send(topic, value=f"v{i}".encode()) for i in range(N)]
    for f in futures:
        f.get(timeout=20)
    p.close()
    c = KafkaConsumer(**conf)
    tp = TopicPartition(topic, 0)
    c.assign([tp])
    c.seek(tp, 0)
    values = []
    deadline = time.monotonic() + 20
    while len(values) < N and time.monotonic() < deadline:
        for recs in c.poll(timeout_ms=500).values():
            values.extend(r.value.decode() for r in recs)
    c.close()
    return {"consumed": values}


def main():
    client, bootstrap, topic, protocol, mechanism, user, password = sys.argv[1:8]
    cafile = sys.argv[8] if len(sys.argv) > 8 else None
    run = confluent if client == "confluent" else kafka_python
    out = run(bootstrap, topic, protocol, mechanism, user, password, cafile)
    out["client"] = client
    print(json.dumps(out))
    if "error" in out:
        sys.exit(3)


if __name__ == "__main__":
    main()
