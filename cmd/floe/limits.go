package main

import (
	"flag"
	"strconv"

	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/fetchsession"
	"github.com/floe-io/floe/internal/protocol"
)

// registerLimits adds the flags that bound what clients may create and
// ask for (README: Limits). -1 means unlimited.
func registerLimits(fs *flag.FlagSet, cfg *agent.Config) {
	l := &cfg.Limits
	l.MaxPartitionsPerTopic = protocol.DefaultMaxPartitionsPerTopic
	fs.Var((*int32Flag)(&l.MaxPartitionsPerTopic), "max-partitions-per-topic", "most partitions one topic may have; CreateTopics and CreatePartitions beyond it get INVALID_PARTITIONS (-1: unlimited)")
	fs.Int64Var(&l.MaxPartitions, "max-partitions", protocol.DefaultMaxPartitions, "most partitions all topics together may have; creations beyond it get POLICY_VIOLATION (-1: unlimited)")
	fs.IntVar(&l.MaxTopics, "max-topics", protocol.DefaultMaxTopics, "most topics the cluster may have; creations beyond it get POLICY_VIOLATION (-1: unlimited)")
	l.FetchMaxBytes = protocol.DefaultFetchMaxBytes
	fs.Var((*int32Flag)(&l.FetchMaxBytes), "fetch-max-bytes", "largest Fetch response in bytes, whatever the client asks for (fetch.max.bytes; the first batch is always returned whole)")
	fs.Float64Var(&l.ControllerMutationRate, "controller-mutation-rate", protocol.DefaultControllerMutationRate, "partitions one client (principal and client id) may create or delete per second, with a burst of 11 seconds' worth (KIP-599's controller_mutation_rate; -1: unlimited)")
	fs.Float64Var(&l.ProducerIDRate, "producer-ids-rate", protocol.DefaultProducerIDRate, "InitProducerId requests one client may make per second, with a burst of 11 seconds' worth; a faster client is throttled, not refused (-1: unlimited)")
	fs.IntVar(&cfg.Groups.MaxGroups, "max-groups", 100_000, "most consumer groups one agent keeps in memory; requests for more get COORDINATOR_NOT_AVAILABLE until idle groups are swept out (-1: unlimited)")
	fs.IntVar(&cfg.Groups.Groups.MaxSize, "group-max-size", 1000, "most members of a classic consumer group (group.max.size; beyond it GROUP_MAX_SIZE_REACHED; -1: unlimited)")
	fs.IntVar(&cfg.Groups.Consumer.MaxSize, "group-consumer-max-size", 1000, "most members of a KIP-848 consumer group (group.consumer.max.size; -1: unlimited)")
	cfg.FetchSessions.Slots = fetchsession.DefaultSlots
	fs.Var((*slotsFlag)(&cfg.FetchSessions.Slots), "fetch-session-cache-slots", "most incremental fetch sessions (KIP-227) the agent keeps for its clients (max.incremental.fetch.session.cache.slots; 0: none, every fetch is a full one)")
	fs.IntVar(&cfg.FetchSessions.MaxPartitions, "fetch-session-cache-partitions", fetchsession.DefaultMaxPartitions, "most partitions all fetch sessions together remember (about 140 bytes each); a session that would pass it is not kept")
}

// slotsFlag is the number of fetch session slots, where 0 means none
// (fetchsession.Options.Slots < 0) as in Kafka, not the default.
type slotsFlag int

func (f *slotsFlag) String() string { return strconv.Itoa(max(int(*f), 0)) }

func (f *slotsFlag) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return err
	}
	if n <= 0 {
		n = -1
	}
	*f = slotsFlag(n)
	return nil
}

// int32Flag is a flag.Value for an int32.
type int32Flag int32

func (f *int32Flag) String() string { return strconv.Itoa(int(*f)) }

func (f *int32Flag) Set(s string) error {
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return err
	}
	*f = int32Flag(n)
	return nil
}
