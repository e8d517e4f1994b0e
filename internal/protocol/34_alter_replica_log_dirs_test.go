package protocol_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestAlterReplicaLogDirs(t *testing.T) {
	f, peer := startPair(t)
	// 32 partitions: all led by one of the two agents once in 2^31 runs
	// (8 were, once in 128).
	const partitions = 32
	f.createTopic("ard", partitions)
	self := f.metadata(12, false).ControllerID
	// mine is led by the agent asked, theirs by the peer; extra is any
	// other partition, named twice.
	var mine, theirs, extra int32 = -1, -1, -1
	for _, p := range f.metadata(12, false, "ard").Topics[0].Partitions {
		switch {
		case p.Leader == self && mine < 0:
			mine = p.Partition
		case p.Leader != self && theirs < 0:
			theirs = p.Partition
		case extra < 0:
			extra = p.Partition
		}
	}
	if mine < 0 || theirs < 0 {
		t.Fatalf("%d partitions all led by one agent (peer %s)", partitions, peer.Addr())
	}
	req := kmsg.NewPtrAlterReplicaLogDirsRequest()
	dir := func(path string, topic string, partitions ...int32) kmsg.AlterReplicaLogDirsRequestDir {
		return kmsg.AlterReplicaLogDirsRequestDir{Dir: path, Topics: []kmsg.AlterReplicaLogDirsRequestDirTopic{{Topic: topic, Partitions: partitions}}}
	}
	req.Dirs = []kmsg.AlterReplicaLogDirsRequestDir{
		dir("bucket://floe", "ard", mine, theirs, partitions),
		dir("/var/lib/kafka", "ard", extra),
		dir("bucket://floe", "missing", 0),
		// Named again: the last dir is the one asked for.
		dir("/elsewhere", "ard", mine),
		dir("bucket://floe", "ard", extra),
	}
	for _, v := range []int16{0, 1, 2} {
		resp := do[*kmsg.AlterReplicaLogDirsResponse](f, v, req)
		var got []string
		for _, rt := range resp.Topics {
			for _, p := range rt.Partitions {
				got = append(got, fmt.Sprintf("%s/%d:%s", rt.Topic, p.Partition, shortCode(p.ErrorCode)))
			}
		}
		want := []string{
			fmt.Sprintf("ard/%d:LOG_DIR_NOT_FOUND", mine),
			fmt.Sprintf("ard/%d:REPLICA_NOT_AVAILABLE", theirs),
			fmt.Sprintf("ard/%d:UNKNOWN_TOPIC_OR_PARTITION", partitions),
			fmt.Sprintf("ard/%d:%s", extra, map[bool]string{true: "NONE", false: "REPLICA_NOT_AVAILABLE"}[leaderIs(f, "ard", extra, self)]),
			"missing/0:UNKNOWN_TOPIC_OR_PARTITION",
		}
		if !slices.Equal(got, want) {
			t.Errorf("v%d: got %v\nwant %v", v, got, want)
		}
	}
	req.Dirs = []kmsg.AlterReplicaLogDirsRequestDir{dir("bucket://floe", "ard", mine)}
	resp := do[*kmsg.AlterReplicaLogDirsResponse](f, 2, req)
	expectCode(t, "move to the dir it is in", resp.Topics[0].Partitions[0].ErrorCode, 0)
}

// leaderIs reports whether node leads topic's partition p.
func leaderIs(f *fixture, topic string, p, node int32) bool {
	for _, mp := range f.metadata(12, false, topic).Topics[0].Partitions {
		if mp.Partition == p {
			return mp.Leader == node
		}
	}
	return false
}
