package protocol_test

// Transaction version 2 (KIP-890 part 2) through the handlers: the
// features ApiVersions finalizes, Produce v12's implicit
// AddPartitionsToTxn, EndTxn v5's epoch bump and retries, TxnOffsetCommit
// v5's implicit AddOffsetsToTxn, fencing, and transactions side by side.

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/protocol"
	"github.com/floe-io/floe/internal/recordbatch"
	"github.com/floe-io/floe/internal/testutil"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// features reads the feature levels of an ApiVersions response:
// "name=min-max" supported, "name=level" finalized.
func features(resp *kmsg.ApiVersionsResponse) (supported, finalized []string) {
	for _, f := range resp.SupportedFeatures {
		supported = append(supported, fmt.Sprintf("%s=%d-%d", f.Name, f.MinVersion, f.MaxVersion))
	}
	for _, f := range resp.FinalizedFeatures {
		finalized = append(finalized, fmt.Sprintf("%s=%d", f.Name, f.MaxVersionLevel))
		if f.MinVersionLevel != f.MaxVersionLevel {
			finalized = append(finalized, fmt.Sprintf("%s min %d", f.Name, f.MinVersionLevel))
		}
	}
	slices.Sort(supported)
	slices.Sort(finalized)
	return supported, finalized
}

// TestApiVersionsFeatures: v3+ lists the features Floe supports and the
// levels it finalizes, as a Kafka 4 broker of a new cluster does:
// transaction.version 2 unless the agent pins it lower (level 0 is left
// out of the finalized list, as Kafka does), group.version 1. The
// finalized features' epoch is set (franz-go ignores them at -1). v0-v2
// carry no features.
func TestApiVersionsFeatures(t *testing.T) {
	supported := []string{"group.version=0-1", "transaction.version=0-2"}
	for _, tc := range []struct {
		pin       int16
		finalized []string
		epoch     int64
	}{
		// A new cluster finalizes the agent's levels at epoch 1 (one
		// update of the metadata store's feature levels).
		{0, []string{"group.version=1", "transaction.version=2"}, 1},
		{2, []string{"group.version=1", "transaction.version=2"}, 1},
		{1, []string{"group.version=1", "transaction.version=1"}, 1},
		{-1, []string{"group.version=1"}, 1},
	} {
		t.Run(fmt.Sprintf("pin %d", tc.pin), func(t *testing.T) {
			a := agenttest.Start(t, agenttest.Options{Config: func(cfg *agent.Config) { cfg.TransactionVersion = tc.pin }})
			f := &fixture{t: t, a: a, c: testutil.Dial(t, a.Addr())}
			for _, v := range []int16{3, 4} {
				req := kmsg.NewPtrApiVersionsRequest()
				req.ClientSoftwareName, req.ClientSoftwareVersion = "floe-test", "1"
				resp := do[*kmsg.ApiVersionsResponse](f, v, req)
				s, fin := features(resp)
				if !slices.Equal(s, supported) || !slices.Equal(fin, tc.finalized) || resp.FinalizedFeaturesEpoch != tc.epoch {
					t.Errorf("v%d: supported %v, finalized %v epoch %d; want %v, %v epoch %d",
						v, s, fin, resp.FinalizedFeaturesEpoch, supported, tc.finalized, tc.epoch)
				}
			}
			resp := do[*kmsg.ApiVersionsResponse](f, 2, kmsg.NewPtrApiVersionsRequest())
			if s, fin := features(resp); len(s)+len(fin) != 0 || resp.FinalizedFeaturesEpoch != -1 {
				t.Errorf("v2 carries features: %v %v epoch %d", s, fin, resp.FinalizedFeaturesEpoch)
			}
		})
	}
	if protocol.MaxTransactionVersion != 2 {
		t.Errorf("MaxTransactionVersion %d", protocol.MaxTransactionVersion)
	}
}

// txnProducer is a transactional producer driven by hand.
type txnProducer struct {
	f     *fixture
	c     *testutil.RawClient
	id    string
	pid   int64
	epoch int16
	seq   map[string]int32 // next sequence per "topic/partition"
}

// initTxn runs InitProducerId v5 for id on f's connection.
func (f *fixture) initTxn(id string) *txnProducer {
	f.t.Helper()
	p := &txnProducer{f: f, c: f.c, id: id}
	p.init()
	return p
}

func (p *txnProducer) init() {
	p.f.t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionalID, req.TransactionTimeoutMillis = kmsg.StringPtr(p.id), 60_000
	req.SetVersion(5)
	resp := p.c.Do(req).(*kmsg.InitProducerIDResponse)
	if resp.ErrorCode != 0 {
		p.f.t.Fatalf("InitProducerId %s: %s", p.id, codeName(resp.ErrorCode))
	}
	p.pid, p.epoch, p.seq = resp.ProducerID, resp.ProducerEpoch, map[string]int32{}
}

// txnRecords is a transactional batch of values for producer pid, epoch,
// from sequence seq.
func txnRecords(pid int64, epoch int16, seq int32, values ...string) []byte {
	ts := time.Now().UnixMilli()
	recs := make([]recordbatch.Record, len(values))
	for i, v := range values {
		recs[i] = recordbatch.Record{Value: []byte(v), Timestamp: ts}
	}
	return recordbatch.Build(recordbatch.BuildOptions{
		ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq, Transactional: true, FirstTimestamp: ts,
	}, recs...)
}

// produce sends values as one transactional batch at Produce version v
// and returns the partition's answer; the sequence moves on when it is
// accepted.
func (p *txnProducer) produce(v int16, topic string, partition int32, values ...string) kmsg.ProduceResponseTopicPartition {
	p.f.t.Helper()
	key := fmt.Sprintf("%s/%d", topic, partition)
	req := produceRequest(topic, partition, txnRecords(p.pid, p.epoch, p.seq[key], values...))
	req.TransactionID = kmsg.StringPtr(p.id)
	req.SetVersion(v)
	resp := p.c.Do(req).(*kmsg.ProduceResponse)
	rp := resp.Topics[0].Partitions[0]
	if rp.ErrorCode == 0 {
		p.seq[key] += int32(len(values))
	}
	return rp
}

// mustProduce is produce at v12, which must succeed.
func (p *txnProducer) mustProduce(topic string, partition int32, values ...string) {
	p.f.t.Helper()
	if rp := p.produce(12, topic, partition, values...); rp.ErrorCode != 0 {
		p.f.t.Fatalf("produce %v to %s/%d: %s", values, topic, partition, codeName(rp.ErrorCode))
	}
}

// endAs sends EndTxn at version v as producer pid/epoch.
func (p *txnProducer) endAs(v int16, pid int64, epoch int16, commit bool) *kmsg.EndTxnResponse {
	p.f.t.Helper()
	req := kmsg.NewPtrEndTxnRequest()
	req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = p.id, pid, epoch, commit
	req.SetVersion(v)
	return p.c.Do(req).(*kmsg.EndTxnResponse)
}

// end ends the transaction with EndTxn v5, which must succeed and bump
// the epoch; the producer continues with the answer.
func (p *txnProducer) end(commit bool) {
	p.f.t.Helper()
	resp := p.endAs(5, p.pid, p.epoch, commit)
	switch {
	case resp.ErrorCode != 0:
		p.f.t.Fatalf("EndTxn v5 (commit %v) %s: %s", commit, p.id, codeName(resp.ErrorCode))
	case resp.ProducerID != p.pid || resp.ProducerEpoch != p.epoch+1:
		p.f.t.Fatalf("EndTxn v5 answered producer %d epoch %d, want %d epoch %d", resp.ProducerID, resp.ProducerEpoch, p.pid, p.epoch+1)
	}
	p.pid, p.epoch, p.seq = resp.ProducerID, resp.ProducerEpoch, map[string]int32{}
}

// describeTxn answers DescribeTransactions for id: its state and its
// partitions as "topic/partition".
func (f *fixture) describeTxn(id string) (string, []string) {
	f.t.Helper()
	req := kmsg.NewPtrDescribeTransactionsRequest()
	req.TransactionalIDs = []string{id}
	resp := do[*kmsg.DescribeTransactionsResponse](f, 0, req)
	st := resp.TransactionStates[0]
	if st.ErrorCode != 0 {
		f.t.Fatalf("describe %s: %s", id, codeName(st.ErrorCode))
	}
	var parts []string
	for _, t := range st.Topics {
		for _, p := range t.Partitions {
			parts = append(parts, fmt.Sprintf("%s/%d", t.Topic, p))
		}
	}
	slices.Sort(parts)
	return st.State, parts
}

// readCommitted reads a partition at read_committed from offset 0 and
// returns the values a client keeps: control batches skipped, and the
// batches of aborted transactions dropped as clients drop them (by the
// AbortedTransactions list and the ABORT markers).
func (f *fixture) readCommitted(topic string, partition int32) []string {
	f.t.Helper()
	req := fetchRequest(topic, partition, 0)
	req.IsolationLevel = 1
	resp := do[*kmsg.FetchResponse](f, 12, req)
	rp := resp.Topics[0].Partitions[0]
	if rp.ErrorCode != 0 {
		f.t.Fatalf("fetch %s/%d: %s", topic, partition, codeName(rp.ErrorCode))
	}
	aborted := slices.Clone(rp.AbortedTransactions)
	slices.SortFunc(aborted, func(a, b kmsg.FetchResponseTopicPartitionAbortedTransaction) int {
		return int(a.FirstOffset - b.FirstOffset)
	})
	if len(rp.RecordBatches) == 0 {
		return nil
	}
	batches, err := recordbatch.Split(rp.RecordBatches)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []string
	open := map[int64]bool{} // producers whose aborted transaction is being read
	for _, b := range batches {
		h, err := recordbatch.ParseHeader(b)
		if err != nil {
			f.t.Fatal(err)
		}
		for len(aborted) > 0 && aborted[0].FirstOffset <= h.BaseOffset+int64(h.LastOffsetDelta) {
			open[aborted[0].ProducerID] = true
			aborted = aborted[1:]
		}
		recs, err := recordbatch.Records(b)
		if err != nil {
			f.t.Fatal(err)
		}
		if h.IsControl() {
			if len(recs) == 1 && len(recs[0].Key) == 4 && recs[0].Key[3] == 0 {
				delete(open, h.ProducerID)
			}
			continue
		}
		if h.IsTransactional() && open[h.ProducerID] {
			continue
		}
		for _, r := range recs {
			out = append(out, string(r.Value))
		}
	}
	return out
}

// TestTxnV2ImplicitAdd: Produce v12 adds a transactional batch's
// partition to the transaction itself, with no AddPartitionsToTxn, and
// starts the transaction; Produce v11 still needs AddPartitionsToTxn
// (INVALID_TXN_STATE without). The commit (EndTxn v5) bumps the epoch
// and makes the records readable; an abort drops them at read_committed.
func TestTxnV2ImplicitAdd(t *testing.T) {
	f := start(t)
	f.createTopic("t", 3)
	p := f.initTxn("tx")
	if st, _ := f.describeTxn("tx"); st != "Empty" {
		t.Fatalf("after InitProducerId: %s", st)
	}

	if rp := p.produce(11, "t", 2, "v11"); rp.ErrorCode != kerr.InvalidTxnState.Code {
		t.Errorf("Produce v11 to a partition not added: %s, want INVALID_TXN_STATE", codeName(rp.ErrorCode))
	}
	if st, parts := f.describeTxn("tx"); st != "Empty" || len(parts) != 0 {
		t.Errorf("v11 changed the transaction: %s %v", st, parts)
	}

	p.mustProduce("t", 0, "a1", "a2")
	p.mustProduce("t", 1, "b1")
	p.mustProduce("t", 0, "a3")
	if st, parts := f.describeTxn("tx"); st != "Ongoing" || !slices.Equal(parts, []string{"t/0", "t/1"}) {
		t.Errorf("after Produce v12: %s %v, want Ongoing [t/0 t/1]", st, parts)
	}
	if got := f.readCommitted("t", 0); len(got) != 0 {
		t.Errorf("read_committed reads the open transaction: %v", got)
	}
	p.end(true)
	if got := f.readCommitted("t", 0); !slices.Equal(got, []string{"a1", "a2", "a3"}) {
		t.Errorf("t/0 after the commit: %v", got)
	}
	if got := f.readCommitted("t", 1); !slices.Equal(got, []string{"b1"}) {
		t.Errorf("t/1 after the commit: %v", got)
	}

	// The next transaction, at the new epoch (sequences from 0 again).
	p.mustProduce("t", 1, "b2")
	p.mustProduce("t", 2, "c1")
	if st, parts := f.describeTxn("tx"); st != "Ongoing" || !slices.Equal(parts, []string{"t/1", "t/2"}) {
		t.Errorf("second transaction: %s %v, want Ongoing [t/1 t/2]", st, parts)
	}
	p.end(false)
	if got := f.readCommitted("t", 1); !slices.Equal(got, []string{"b1"}) {
		t.Errorf("t/1 after the abort: %v", got)
	}
	if got := f.readCommitted("t", 2); len(got) != 0 {
		t.Errorf("t/2 after the abort: %v", got)
	}
	p.mustProduce("t", 2, "c2")
	p.end(true)
	if got := f.readCommitted("t", 2); !slices.Equal(got, []string{"c2"}) {
		t.Errorf("t/2 after the third transaction: %v", got)
	}
}

// TestTxnV2Fencing: a batch of an epoch an end has bumped past (a late
// batch of an ended transaction) is INVALID_PRODUCER_EPOCH and starts no
// transaction; after a new instance's InitProducerId the old instance's
// produce is INVALID_PRODUCER_EPOCH and its EndTxn v5 PRODUCER_FENCED. An
// unknown producer id is INVALID_PRODUCER_ID_MAPPING, and a request whose
// transactional batches name two producers is refused whole.
func TestTxnV2Fencing(t *testing.T) {
	f := start(t)
	f.createTopic("t", 2)
	p := f.initTxn("tx")
	p.mustProduce("t", 0, "a")
	oldEpoch := p.epoch
	p.end(true)

	late := &txnProducer{f: f, c: f.c, id: "tx", pid: p.pid, epoch: oldEpoch, seq: map[string]int32{"t/1": 0}}
	if rp := late.produce(12, "t", 1, "late"); rp.ErrorCode != kerr.InvalidProducerEpoch.Code {
		t.Errorf("late batch of the ended transaction: %s, want INVALID_PRODUCER_EPOCH", codeName(rp.ErrorCode))
	}
	if st, parts := f.describeTxn("tx"); st != "CompleteCommit" || len(parts) != 0 {
		t.Errorf("the late batch started a transaction: %s %v", st, parts)
	}

	p.mustProduce("t", 1, "b")
	zombie := *p
	zombie.seq = map[string]int32{"t/1": p.seq["t/1"]}
	fresh := f.initTxn("tx") // a new instance: aborts b, bumps
	if fresh.epoch <= p.epoch {
		t.Fatalf("new instance epoch %d, old %d", fresh.epoch, p.epoch)
	}
	if rp := zombie.produce(12, "t", 1, "zombie"); rp.ErrorCode != kerr.InvalidProducerEpoch.Code {
		t.Errorf("zombie produce: %s, want INVALID_PRODUCER_EPOCH", codeName(rp.ErrorCode))
	}
	if resp := zombie.endAs(5, zombie.pid, zombie.epoch, true); resp.ErrorCode != kerr.ProducerFenced.Code || resp.ProducerID != -1 {
		t.Errorf("zombie EndTxn v5: %s producer %d, want PRODUCER_FENCED -1", codeName(resp.ErrorCode), resp.ProducerID)
	}
	if got := f.readCommitted("t", 1); len(got) != 0 {
		t.Errorf("t/1: %v, want nothing (b aborted by the new instance)", got)
	}

	unknown := &txnProducer{f: f, c: f.c, id: "tx", pid: fresh.pid + 1000, epoch: 0, seq: map[string]int32{}}
	if rp := unknown.produce(12, "t", 0, "x"); rp.ErrorCode != kerr.InvalidProducerIDMapping.Code {
		t.Errorf("unknown producer id: %s, want INVALID_PRODUCER_ID_MAPPING", codeName(rp.ErrorCode))
	}

	// Two producers in one request.
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis, req.TransactionID = -1, 10_000, kmsg.StringPtr("tx")
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "t"
	rt.Partitions = []kmsg.ProduceRequestTopicPartition{
		{Partition: 0, Records: txnRecords(fresh.pid, fresh.epoch, 0, "p0")},
		{Partition: 1, Records: txnRecords(fresh.pid+1, fresh.epoch, 0, "p1")},
	}
	req.Topics = append(req.Topics, rt)
	resp := do[*kmsg.ProduceResponse](f, 12, req)
	for _, rp := range resp.Topics[0].Partitions {
		if rp.ErrorCode != kerr.InvalidProducerIDMapping.Code {
			t.Errorf("two producers, partition %d: %s, want INVALID_PRODUCER_ID_MAPPING", rp.Partition, codeName(rp.ErrorCode))
		}
	}
	if st, parts := f.describeTxn("tx"); len(parts) != 0 {
		t.Errorf("refused batches joined the transaction: %s %v", st, parts)
	}
	fresh.mustProduce("t", 0, "ok")
	fresh.end(true)
	if got := f.readCommitted("t", 0); !slices.Equal(got, []string{"a", "ok"}) {
		t.Errorf("t/0: %v, want [a ok]", got)
	}
}

// TestTxnV2EndRetries: EndTxn v5 retried after its answer was lost (the
// producer the end replaced, one epoch below) gets the same answer, the
// producer to continue with, and changes nothing; the other end as a
// retry is INVALID_TXN_STATE; an older epoch is PRODUCER_FENCED. An
// abort with no transaction open is an end of its own and bumps; a
// commit of nothing is INVALID_TXN_STATE. EndTxn v4 leaves the epoch
// alone and answers no producer.
func TestTxnV2EndRetries(t *testing.T) {
	f := start(t)
	f.createTopic("t", 1)
	p := f.initTxn("tx")
	p.mustProduce("t", 0, "a")
	before := p.epoch
	p.end(true)
	for range 2 {
		resp := p.endAs(5, p.pid, before, true)
		if resp.ErrorCode != 0 || resp.ProducerID != p.pid || resp.ProducerEpoch != p.epoch {
			t.Errorf("retried commit: %s producer %d epoch %d, want NONE %d epoch %d",
				codeName(resp.ErrorCode), resp.ProducerID, resp.ProducerEpoch, p.pid, p.epoch)
		}
	}
	if resp := p.endAs(5, p.pid, before, false); resp.ErrorCode != kerr.InvalidTxnState.Code {
		t.Errorf("abort retried as the commit's retry: %s, want INVALID_TXN_STATE", codeName(resp.ErrorCode))
	}
	if got := f.readCommitted("t", 0); !slices.Equal(got, []string{"a"}) {
		t.Errorf("after the retries: %v", got)
	}
	if resp := p.endAs(5, p.pid, p.epoch, true); resp.ErrorCode != kerr.InvalidTxnState.Code {
		t.Errorf("commit of no transaction: %s, want INVALID_TXN_STATE", codeName(resp.ErrorCode))
	}
	p.end(false) // an abort of nothing bumps
	if resp := p.endAs(5, p.pid, before, false); resp.ErrorCode != kerr.ProducerFenced.Code {
		t.Errorf("EndTxn two epochs below: %s, want PRODUCER_FENCED", codeName(resp.ErrorCode))
	}

	// Transaction version 1 on the same id: EndTxn v4 keeps the epoch.
	add := kmsg.NewPtrAddPartitionsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch = "tx", p.pid, p.epoch
	add.Topics = []kmsg.AddPartitionsToTxnRequestTopic{{Topic: "t", Partitions: []int32{0}}}
	if code := do[*kmsg.AddPartitionsToTxnResponse](f, 3, add).Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("AddPartitionsToTxn v3: %s", codeName(code))
	}
	if rp := p.produce(11, "t", 0, "v1"); rp.ErrorCode != 0 {
		t.Fatalf("Produce v11: %s", codeName(rp.ErrorCode))
	}
	resp := p.endAs(4, p.pid, p.epoch, true)
	if resp.ErrorCode != 0 {
		t.Fatalf("EndTxn v4: %s", codeName(resp.ErrorCode))
	}
	if resp := p.endAs(4, p.pid, p.epoch, true); resp.ErrorCode != 0 {
		t.Errorf("EndTxn v4 retried at the same epoch: %s", codeName(resp.ErrorCode))
	}
	p.mustProduce("t", 0, "v2-again") // same epoch: v12 starts the next transaction
	p.end(true)
	if got := f.readCommitted("t", 0); !slices.Equal(got, []string{"a", "v1", "v2-again"}) {
		t.Errorf("t/0: %v", got)
	}
}

// TestTxnV2OffsetCommit: TxnOffsetCommit v5 adds the group to the
// transaction itself (no AddOffsetsToTxn), starting one if none is open;
// v4 without AddOffsetsToTxn is TRANSACTION_ABORTABLE. The offsets become
// the group's with the commit.
func TestTxnV2OffsetCommit(t *testing.T) {
	f := start(t)
	f.createTopic("t", 1)
	p := f.initTxn("tx")
	commit := func(v int16, offset int64) int16 {
		req := kmsg.NewPtrTxnOffsetCommitRequest()
		req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch = "tx", "g", p.pid, p.epoch
		req.Generation = -1
		req.Topics = []kmsg.TxnOffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 0, Offset: offset, LeaderEpoch: -1}}}}
		return do[*kmsg.TxnOffsetCommitResponse](f, v, req).Topics[0].Partitions[0].ErrorCode
	}
	fetched := func() int64 {
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Group = "g"
		req.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "t", Partitions: []int32{0}}}
		return do[*kmsg.OffsetFetchResponse](f, 5, req).Topics[0].Partitions[0].Offset
	}
	expectCode(t, "TxnOffsetCommit v4 without AddOffsetsToTxn", commit(4, 5), kerr.TransactionAbortable.Code)
	expectCode(t, "TxnOffsetCommit v5", commit(5, 7), 0)
	if st, _ := f.describeTxn("tx"); st != "Ongoing" {
		t.Errorf("after TxnOffsetCommit v5: %s, want Ongoing", st)
	}
	if got := fetched(); got != -1 {
		t.Errorf("offset before the commit: %d, want -1", got)
	}
	p.mustProduce("t", 0, "x")
	p.end(true)
	if got := fetched(); got != 7 {
		t.Errorf("offset after the commit: %d, want 7", got)
	}
	expectCode(t, "TxnOffsetCommit v5 again", commit(5, 9), 0)
	p.end(false)
	if got := fetched(); got != 7 {
		t.Errorf("offset after the abort: %d, want 7", got)
	}
}

// TestTxnV2Concurrent: transactions of several producers on the same
// partitions, each on its own connection and goroutine, every batch added
// by Produce v12; each producer commits its even transactions and aborts
// its odd ones. read_committed returns exactly the committed records, in
// each producer's order.
func TestTxnV2Concurrent(t *testing.T) {
	f := start(t)
	f.createTopic("t", 2)
	const producers, txns = 4, 6
	var wg sync.WaitGroup
	errs := make(chan error, producers)
	for i := range producers {
		pf := &fixture{t: t, a: f.a, c: dial(t, f)}
		p := pf.initTxn(fmt.Sprintf("tx-%d", i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range txns {
				for part := range int32(2) {
					v := fmt.Sprintf("p%d-t%d-%d", i, n, part)
					if rp := p.produce(12, "t", part, v); rp.ErrorCode != 0 {
						errs <- fmt.Errorf("%s: %s", v, codeName(rp.ErrorCode))
						return
					}
				}
				resp := p.endAs(5, p.pid, p.epoch, n%2 == 0)
				if resp.ErrorCode != 0 || resp.ProducerEpoch != p.epoch+1 {
					errs <- fmt.Errorf("producer %d end %d: %s epoch %d", i, n, codeName(resp.ErrorCode), resp.ProducerEpoch)
					return
				}
				p.pid, p.epoch, p.seq = resp.ProducerID, resp.ProducerEpoch, map[string]int32{}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for part := range int32(2) {
		got := f.readCommitted("t", part)
		for i := range producers {
			var mine, want []string
			prefix := fmt.Sprintf("p%d-", i)
			for _, v := range got {
				if len(v) > len(prefix) && v[:len(prefix)] == prefix {
					mine = append(mine, v)
				}
			}
			for n := 0; n < txns; n += 2 {
				want = append(want, fmt.Sprintf("p%d-t%d-%d", i, n, part))
			}
			if !slices.Equal(mine, want) {
				t.Errorf("t/%d producer %d: %v, want %v", part, i, mine, want)
			}
		}
		if len(got) != producers*txns/2 {
			t.Errorf("t/%d: %d records, want %d", part, len(got), producers*txns/2)
		}
	}
}

// TestTxnV2NotOwner: a Produce v12 reaching an agent that does not
// coordinate the transactional id adds the partition all the same (the
// record's compare-and-swap orders it with the owner's requests), and the
// owner's EndTxn commits it.
func TestTxnV2NotOwner(t *testing.T) {
	f := start(t)
	f.createTopic("t", 1)
	peer := agenttest.StartPeer(t, f.a, agenttest.Options{})
	pc := testutil.Dial(t, peer.Addr())
	// Find an id the first agent owns, once it sees its peer.
	id := ""
	deadline := time.Now().Add(within)
	for id == "" && time.Now().Before(deadline) {
		for i := range 32 {
			cand := fmt.Sprintf("tx-%d", i)
			req := kmsg.NewPtrFindCoordinatorRequest()
			req.CoordinatorType, req.CoordinatorKeys = 1, []string{cand}
			req.SetVersion(4)
			c := pc.Do(req).(*kmsg.FindCoordinatorResponse).Coordinators[0]
			if c.ErrorCode == 0 && fmt.Sprintf("%s:%d", c.Host, c.Port) == f.a.Addr() {
				id = cand
				break
			}
		}
		if id == "" {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if id == "" {
		t.Fatal("the peer never named the first agent coordinator of any id")
	}
	p := f.initTxn(id)
	// Produce on the peer, which does not own id.
	onPeer := *p
	onPeer.c, onPeer.seq = pc, map[string]int32{}
	if rp := onPeer.produce(12, "t", 0, "via-peer"); rp.ErrorCode != 0 {
		t.Fatalf("Produce v12 on the peer: %s", codeName(rp.ErrorCode))
	}
	if st, parts := f.describeTxn(id); st != "Ongoing" || !slices.Equal(parts, []string{"t/0"}) {
		t.Errorf("after the peer's produce: %s %v", st, parts)
	}
	p.end(true)
	if got := f.readCommitted("t", 0); !slices.Equal(got, []string{"via-peer"}) {
		t.Errorf("t/0: %v", got)
	}
}
