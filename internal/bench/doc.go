// Package bench is Floe's load generator: it produces and consumes records
// against any Kafka-compatible server and reports throughput, produce and
// end-to-end latency percentiles, errors and CPU; from a Floe agent's own
// /metrics it adds object-store requests, commits and memory, and from
// those an estimated monthly bill next to a 3-zone Kafka cluster's.
//
// Latency is free of coordinated omission: producers follow a fixed-rate
// schedule (Pacer) and every latency is measured from the record's
// intended send time, so a stall shows up in every record it delayed.
//
// It can run the same workload against an in-process Floe agent (with an
// injected-latency bucket that resembles a cloud object store) and against
// franz-go's in-memory kfake, and line the two up (Compare).
//
// It measures and reports; it never asserts a speed, and it must never be
// wired into an agent.
package bench
