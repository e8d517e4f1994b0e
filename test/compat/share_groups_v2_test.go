package compat

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// TestShareFetchV2: ShareFetch and ShareAcknowledge v2. The record-limit
// acquire mode hands out no more than MaxRecords though the batch is
// larger; a renewed acknowledgement (KIP-1222) keeps records past their
// first lock, so another member gets none of them; a ShareFetch that
// renews fetches nothing; a renewal without IsRenewAck, or at v1, is
// INVALID_REQUEST.
func TestShareFetchV2(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const lock = 4 * time.Second
	a := agenttest.Start(t, shareAgentOptions(lock, 5))
	const topic, group = "share-v2", "sg"
	createTopic(t, ctx, a.Addr(), topic, 1)
	// One batch of 20 records.
	prod, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()), kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	for range 20 {
		prod.Produce(ctx, &kgo.Record{Value: []byte("v")}, nil)
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	raw, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	join := func(member string) [16]byte {
		t.Helper()
		hb := kmsg.NewPtrShareGroupHeartbeatRequest()
		hb.GroupID, hb.MemberID, hb.SubscribedTopicNames = group, member, []string{topic}
		resp, err := hb.RequestWith(ctx, raw)
		if err != nil || resp.ErrorCode != 0 || resp.Assignment == nil || len(resp.Assignment.TopicPartitions) != 1 {
			t.Fatalf("join %s: %+v, %v", member, resp, err)
		}
		return resp.Assignment.TopicPartitions[0].TopicID
	}
	id := join("m1")
	join("m2")
	epochs := map[string]int32{}
	fetch := func(member string, mode int8, renew bool, acks ...kmsg.ShareFetchRequestTopicPartitionAcknowledgementBatch) *kmsg.ShareFetchResponse {
		t.Helper()
		sf := kmsg.NewPtrShareFetchRequest()
		sf.SetVersion(2)
		sf.GroupID, sf.MemberID = kmsg.StringPtr(group), kmsg.StringPtr(member)
		sf.ShareSessionEpoch, sf.MaxWaitMillis, sf.MaxBytes, sf.MaxRecords = epochs[member], 200, 1<<20, 5
		sf.ShareAcquireMode, sf.IsRenewAck = mode, renew
		ft := kmsg.NewShareFetchRequestTopic()
		ft.TopicID = id
		ft.Partitions = []kmsg.ShareFetchRequestTopicPartition{{Partition: 0, PartitionMaxBytes: 1 << 20, AcknowledgementBatches: acks}}
		sf.Topics = []kmsg.ShareFetchRequestTopic{ft}
		resp, err := sf.RequestWith(ctx, raw)
		if err != nil {
			t.Fatal(err)
		}
		if resp.ErrorCode == 0 {
			epochs[member]++
		}
		return resp
	}
	acquired := func(resp *kmsg.ShareFetchResponse) (n int64) {
		for _, tp := range resp.Topics {
			for _, p := range tp.Partitions {
				for _, r := range p.AcquiredRecords {
					n += r.LastOffset - r.FirstOffset + 1
				}
			}
		}
		return n
	}

	// Record-limit mode: 5 of the batch's 20.
	resp := fetch("m1", 1, false)
	if resp.ErrorCode != 0 || acquired(resp) != 5 {
		t.Fatalf("record-limit fetch: code %d, %d acquired, want 5", resp.ErrorCode, acquired(resp))
	}
	// Batch-optimized mode: the rest of the batch, past MaxRecords.
	resp = fetch("m1", 0, false)
	if acquired(resp) != 15 {
		t.Fatalf("batch-optimized fetch: %d acquired, want the other 15 of the batch", acquired(resp))
	}

	renewAll := func(version int16, flag bool) *kmsg.ShareAcknowledgeResponse {
		t.Helper()
		ack := kmsg.NewPtrShareAcknowledgeRequest()
		ack.SetVersion(version)
		ack.GroupID, ack.MemberID, ack.ShareSessionEpoch, ack.IsRenewAck = kmsg.StringPtr(group), kmsg.StringPtr("m1"), epochs["m1"], flag
		at := kmsg.NewShareAcknowledgeRequestTopic()
		at.TopicID = id
		at.Partitions = []kmsg.ShareAcknowledgeRequestTopicPartition{{Partition: 0, AcknowledgementBatches: []kmsg.ShareAcknowledgeRequestTopicPartitionAcknowledgementBatch{
			{FirstOffset: 0, LastOffset: 19, AcknowledgeTypes: []int8{4}},
		}}}
		ack.Topics = []kmsg.ShareAcknowledgeRequestTopic{at}
		resp, err := ack.RequestWith(ctx, raw)
		if err != nil {
			t.Fatal(err)
		}
		if resp.ErrorCode == 0 {
			epochs["m1"]++
		}
		return resp
	}
	if r := renewAll(1, false); r.ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("renew at v1: %d, want INVALID_REQUEST", r.ErrorCode)
	}
	if r := renewAll(2, false); r.ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("renew without IsRenewAck: %d, want INVALID_REQUEST", r.ErrorCode)
	}
	// Renew twice, 2.5 s apart: 5 s after the fetch, past the 4 s lock,
	// the records are still m1's.
	for range 2 {
		time.Sleep(2500 * time.Millisecond)
		r := renewAll(2, true)
		if r.ErrorCode != 0 || r.AcquisitionLockTimeoutMillis != int32(lock.Milliseconds()) || len(r.Topics) != 1 || r.Topics[0].Partitions[0].ErrorCode != 0 {
			t.Fatalf("renew: %+v", r)
		}
	}
	if got := acquired(fetch("m2", 0, false)); got != 0 {
		t.Fatalf("another member acquired %d records that m1 renewed", got)
	}
	// A ShareFetch that renews (and here accepts 0-9) fetches nothing.
	if resp := fetch("m1", 0, true, kmsg.ShareFetchRequestTopicPartitionAcknowledgementBatch{FirstOffset: 0, LastOffset: 9, AcknowledgeTypes: []int8{1}}); resp.ErrorCode != 0 || acquired(resp) != 0 || resp.Topics[0].Partitions[0].AcknowledgeErrorCode != 0 {
		t.Fatalf("a renewing ShareFetch: %+v", resp)
	}
}
