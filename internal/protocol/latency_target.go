package protocol

import (
	"time"

	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/metastore"
)

// latencyTarget is a topic's floe.latency.target.ms: how long its batches
// may wait in an open segment (0: the agent's linger). The writer gives
// topics with a target below the agent's linger a faster segment stream.
func latencyTarget(t metastore.Topic) time.Duration {
	if _, set := t.Configs["floe.latency.target.ms"]; !set {
		return 0
	}
	ms := config.TopicInt(t.Configs, "floe.latency.target.ms")
	if ms <= 0 || ms > int64(time.Hour/time.Millisecond) {
		return 0
	}
	return time.Duration(ms) * time.Millisecond
}
