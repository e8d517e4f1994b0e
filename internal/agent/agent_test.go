package agent_test

import (
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/metastore/embedded"
	"github.com/floe-io/floe/internal/objstore"
	"github.com/floe-io/floe/internal/objstore/faulty"
	"github.com/floe-io/floe/internal/objstore/localdir"
	"github.com/floe-io/floe/internal/protocol"
	"github.com/floe-io/floe/internal/recordbatch"
	"github.com/floe-io/floe/internal/testutil"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

func createTopic(t *testing.T, c *testutil.RawClient, name string, partitions int32) {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.SetVersion(5)
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, -1
	req.Topics = append(req.Topics, rt)
	resp := c.Do(req).(*kmsg.CreateTopicsResponse)
	if code := resp.Topics[0].ErrorCode; code != 0 {
		t.Fatalf("create %s: %v", name, kerr.ErrorForCode(code))
	}
}

type batchSpec struct {
	partition int32
	records   int
	pid       int64
	epoch     int16
	seq       int32
	corrupt   bool
}

func produceRequest(topic string, acks int16, specs ...batchSpec) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(9)
	req.Acks = acks
	req.TimeoutMillis = 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	for _, s := range specs {
		var recs []recordbatch.Record
		for i := range s.records {
			recs = append(recs, recordbatch.Record{Value: []byte{byte('a' + i%26)}, Timestamp: 1000 + int64(i)})
		}
		pid := s.pid
		if pid == 0 {
			pid = -1
		}
		b := recordbatch.Build(recordbatch.BuildOptions{ProducerID: pid, ProducerEpoch: s.epoch, BaseSequence: s.seq, FirstTimestamp: 1000}, recs...)
		if s.corrupt {
			b[len(b)-1] ^= 0xff
		}
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition = s.partition
		rp.Records = b
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	return req
}

func partitionResults(resp *kmsg.ProduceResponse) map[int32]kmsg.ProduceResponseTopicPartition {
	out := map[int32]kmsg.ProduceResponseTopicPartition{}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			out[p.Partition] = p
		}
	}
	return out
}

func TestApiVersionsAdvertisesRegistry(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{})
	c := testutil.Dial(t, a.Addr())
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(3)
	req.ClientSoftwareName, req.ClientSoftwareVersion = "raw", "1"
	resp := c.Do(req).(*kmsg.ApiVersionsResponse)
	if resp.ErrorCode != 0 {
		t.Fatalf("error %d", resp.ErrorCode)
	}
	want := map[int16][2]int16{}
	for _, k := range protocol.Supported() {
		want[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
	}
	if len(resp.ApiKeys) != len(want) {
		t.Fatalf("advertised %d apis, registry has %d", len(resp.ApiKeys), len(want))
	}
	for _, k := range resp.ApiKeys {
		if want[k.ApiKey] != [2]int16{k.MinVersion, k.MaxVersion} {
			t.Errorf("api %d: advertised %d-%d", k.ApiKey, k.MinVersion, k.MaxVersion)
		}
	}
	// The versions librdkafka needs for record batch v2 and idempotence.
	if r := want[0]; r[0] != 0 || r[1] < 3 {
		t.Errorf("Produce range %v must start at 0 (librdkafka compresses only then) and include 3", r)
	}
	if r := want[1]; r[0] > 4 || r[1] < 4 {
		t.Errorf("Fetch range %v must include 4", r)
	}
}

func TestApiVersionsTooNewAnswersV0(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{})
	c := testutil.Dial(t, a.Addr())
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(5) // above what Floe handles
	corr := c.Send(req)
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.SetVersion(0)
	c.Receive(corr, resp)
	if resp.ErrorCode != kerr.UnsupportedVersion.Code {
		t.Fatalf("error %d, want UNSUPPORTED_VERSION", resp.ErrorCode)
	}
	if len(resp.ApiKeys) == 0 {
		t.Fatal("UNSUPPORTED_VERSION answer must list the supported versions")
	}
}

func TestBadRequestsCloseTheConnection(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{Config: func(cfg *agent.Config) { cfg.MaxFrameBytes = 1 << 20 }})
	frame := func(body []byte) []byte {
		b := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
		return append(b, body...)
	}
	header := func(key, version int16) []byte {
		b := binary.BigEndian.AppendUint16(nil, uint16(key))
		b = binary.BigEndian.AppendUint16(b, uint16(version))
		b = binary.BigEndian.AppendUint32(b, 1)
		return binary.BigEndian.AppendUint16(b, 0xffff) // null client id
	}
	fetch13 := kmsg.NewPtrFetchRequest()
	fetch13.SetVersion(13)
	for name, data := range map[string][]byte{
		"unknown api key":     frame(header(999, 0)),
		"unsupported version": frame(header(1, 13)),
		"unadvertised api":    frame(header(11, 0)), // JoinGroup: not handled yet
		"truncated body":      frame(append(header(3, 1), 0, 0, 0, 5)),
		"short header":        frame([]byte{0, 3}),
		"oversize frame":      binary.BigEndian.AppendUint32(nil, 512<<20),
		"negative size":       binary.BigEndian.AppendUint32(nil, 0x80000000),
	} {
		t.Run(name, func(t *testing.T) {
			c := testutil.Dial(t, a.Addr())
			if err := c.WriteRaw(data); err != nil {
				t.Fatal(err)
			}
			if err := c.ExpectClosed(5 * time.Second); err != nil {
				t.Fatal(err)
			}
		})
	}
	// The agent still serves new connections.
	c := testutil.Dial(t, a.Addr())
	req := kmsg.NewPtrMetadataRequest()
	req.SetVersion(1)
	c.Do(req)
}

// Produce v0-v2 are advertised (see 00_produce.go) but carry message
// formats Floe does not store: every partition gets UNSUPPORTED_VERSION.
func TestOldProduceVersionsRefusedPerPartition(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{})
	c := testutil.Dial(t, a.Addr())
	createTopic(t, c, "old", 1)
	req := produceRequest("old", -1, batchSpec{records: 1})
	req.SetVersion(2)
	resp := c.Do(req).(*kmsg.ProduceResponse)
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.UnsupportedVersion.Code {
		t.Fatalf("produce v2: error %d, want UNSUPPORTED_VERSION", code)
	}
}

func TestCorruptBatchRejectedAlone(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{})
	c := testutil.Dial(t, a.Addr())
	createTopic(t, c, "corrupt", 2)
	resp := c.Do(produceRequest("corrupt", -1,
		batchSpec{partition: 0, records: 3},
		batchSpec{partition: 1, records: 2, corrupt: true},
	)).(*kmsg.ProduceResponse)
	res := partitionResults(resp)
	if res[0].ErrorCode != 0 || res[0].BaseOffset != 0 {
		t.Fatalf("good partition: %+v", res[0])
	}
	if res[1].ErrorCode != kerr.CorruptMessage.Code {
		t.Fatalf("corrupt partition: error %d, want CORRUPT_MESSAGE", res[1].ErrorCode)
	}
	// The next good batch continues the good partition's offsets.
	resp = c.Do(produceRequest("corrupt", -1, batchSpec{partition: 0, records: 1}, batchSpec{partition: 1, records: 1})).(*kmsg.ProduceResponse)
	res = partitionResults(resp)
	if res[0].BaseOffset != 3 || res[1].BaseOffset != 0 {
		t.Fatalf("offsets after rejection: p0=%d p1=%d", res[0].BaseOffset, res[1].BaseOffset)
	}
}

func TestFailedPutFailsOnlyItsRequests(t *testing.T) {
	var fb *faulty.Bucket
	a := agenttest.Start(t, agenttest.Options{
		Linger: 50 * time.Millisecond,
		Wrap:   func(b objstore.Bucket) objstore.Bucket { fb = faulty.New(b); return fb },
	})
	c := testutil.Dial(t, a.Addr())
	createTopic(t, c, "faults", 1)
	if r := partitionResults(c.Do(produceRequest("faults", -1, batchSpec{records: 2})).(*kmsg.ProduceResponse))[0]; r.ErrorCode != 0 {
		t.Fatalf("first produce: %d", r.ErrorCode)
	}
	fb.FailNext(faulty.Put, 1, nil)
	r := partitionResults(c.Do(produceRequest("faults", -1, batchSpec{records: 5})).(*kmsg.ProduceResponse))[0]
	if r.ErrorCode != kerr.KafkaStorageError.Code {
		t.Fatalf("produce during failed PUT: error %d, want KAFKA_STORAGE_ERROR (retriable)", r.ErrorCode)
	}
	if !kerr.IsRetriable(kerr.ErrorForCode(r.ErrorCode)) {
		t.Fatal("the error must be retriable")
	}
	r = partitionResults(c.Do(produceRequest("faults", -1, batchSpec{records: 1})).(*kmsg.ProduceResponse))[0]
	if r.ErrorCode != 0 || r.BaseOffset != 2 {
		t.Fatalf("after recovery: error %d offset %d, want offset 2 (no gap, nothing half-written)", r.ErrorCode, r.BaseOffset)
	}
}

func TestIdempotentSequenceChecks(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{})
	c := testutil.Dial(t, a.Addr())
	createTopic(t, c, "idem", 1)
	init := kmsg.NewPtrInitProducerIDRequest()
	init.SetVersion(4)
	init.ProducerID, init.ProducerEpoch = -1, -1
	ir := c.Do(init).(*kmsg.InitProducerIDResponse)
	if ir.ErrorCode != 0 {
		t.Fatalf("init producer id: %d", ir.ErrorCode)
	}
	pid, epoch := ir.ProducerID, ir.ProducerEpoch
	produce := func(seq int32, records int, ep int16) kmsg.ProduceResponseTopicPartition {
		return partitionResults(c.Do(produceRequest("idem", -1, batchSpec{records: records, pid: pid, epoch: ep, seq: seq})).(*kmsg.ProduceResponse))[0]
	}
	if r := produce(0, 3, epoch); r.ErrorCode != 0 || r.BaseOffset != 0 {
		t.Fatalf("first: %+v", r)
	}
	if r := produce(3, 2, epoch); r.ErrorCode != 0 || r.BaseOffset != 3 {
		t.Fatalf("second: %+v", r)
	}
	if r := produce(0, 3, epoch); r.ErrorCode != 0 || r.BaseOffset != 0 {
		t.Fatalf("duplicate of first must succeed with its original offset: %+v", r)
	}
	if r := produce(9, 1, epoch); r.ErrorCode != kerr.OutOfOrderSequenceNumber.Code {
		t.Fatalf("gap: error %d, want OUT_OF_ORDER_SEQUENCE_NUMBER", r.ErrorCode)
	}
	// Bump the epoch (KIP-360): the old epoch is fenced.
	bump := kmsg.NewPtrInitProducerIDRequest()
	bump.SetVersion(4)
	bump.ProducerID, bump.ProducerEpoch = pid, epoch
	br := c.Do(bump).(*kmsg.InitProducerIDResponse)
	if br.ErrorCode != 0 || br.ProducerID != pid || br.ProducerEpoch != epoch+1 {
		t.Fatalf("bump: %+v", br)
	}
	if r := produce(1, 1, epoch+1); r.ErrorCode != kerr.OutOfOrderSequenceNumber.Code {
		t.Fatalf("new epoch not starting at 0: error %d, want OUT_OF_ORDER_SEQUENCE_NUMBER", r.ErrorCode)
	}
	if r := produce(0, 1, epoch+1); r.ErrorCode != 0 || r.BaseOffset != 5 {
		t.Fatalf("new epoch from 0: %+v", r)
	}
	// Once the partition has seen the new epoch, the old one is fenced.
	if r := produce(5, 1, epoch); r.ErrorCode != kerr.InvalidProducerEpoch.Code {
		t.Fatalf("stale epoch: error %d, want INVALID_PRODUCER_EPOCH", r.ErrorCode)
	}
	// Only 5 records were written, each once.
	lo := kmsg.NewPtrListOffsetsRequest()
	lo.SetVersion(4)
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = "idem"
	lp := kmsg.NewListOffsetsRequestTopicPartition()
	lp.Timestamp = -1
	lt.Partitions = append(lt.Partitions, lp)
	lo.Topics = append(lo.Topics, lt)
	if hwm := c.Do(lo).(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0].Offset; hwm != 6 {
		t.Fatalf("high watermark %d, want 6", hwm)
	}
}

func TestPipelinedProducesShareASegmentAndAnswerInOrder(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{Linger: 300 * time.Millisecond})
	c := testutil.Dial(t, a.Addr())
	createTopic(t, c, "pipe", 1)
	start := time.Now()
	var corrs []int32
	for range 5 {
		corrs = append(corrs, c.Send(produceRequest("pipe", -1, batchSpec{records: 2})))
	}
	// acks=0 in the middle: no response, but the data is written.
	c.Send(produceRequest("pipe", 0, batchSpec{records: 1}))
	corrs = append(corrs, c.Send(produceRequest("pipe", -1, batchSpec{records: 1})))
	var offsets []int64
	for _, corr := range corrs {
		resp := kmsg.NewPtrProduceResponse()
		resp.SetVersion(9)
		c.Receive(corr, resp)
		offsets = append(offsets, resp.Topics[0].Partitions[0].BaseOffset)
	}
	elapsed := time.Since(start)
	want := []int64{0, 2, 4, 6, 8, 11}
	for i := range want {
		if offsets[i] != want[i] {
			t.Fatalf("offsets %v, want %v", offsets, want)
		}
	}
	// Sequentially each request would wait for its own linger (≥1.8 s);
	// pipelined they share one or two segments.
	if elapsed > 1500*time.Millisecond {
		t.Errorf("pipelined requests took %v: they were not batched into one segment", elapsed)
	}
	t.Logf("7 pipelined produce requests answered in %v at linger 300ms", elapsed)
}

// waitingFetch asks for partition 0 of topic from offset 0, waiting up
// to maxWait ms for a byte.
func waitingFetch(topic string, maxWait int32) *kmsg.FetchRequest {
	fr := kmsg.NewPtrFetchRequest()
	fr.SetVersion(11)
	fr.MaxWaitMillis, fr.MinBytes, fr.MaxBytes = maxWait, 1, 1<<20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = topic
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes = 1 << 20
	ft.Partitions = append(ft.Partitions, fp)
	fr.Topics = append(fr.Topics, ft)
	return fr
}

func TestFetchLongPollWokenByCommit(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{Linger: 20 * time.Millisecond})
	c := testutil.Dial(t, a.Addr())
	createTopic(t, c, "poll", 1)
	fr := waitingFetch("poll", 10000)
	start := time.Now()
	corr := c.Send(fr)
	producer := testutil.Dial(t, a.Addr())
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		time.Sleep(200 * time.Millisecond)
		producer.Send(produceRequest("poll", -1, batchSpec{records: 4}))
	}()
	defer func() { <-produced }()
	resp := kmsg.NewPtrFetchResponse()
	resp.SetVersion(11)
	c.Receive(corr, resp)
	elapsed := time.Since(start)
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 || p.HighWatermark != 4 || len(p.RecordBatches) == 0 {
		t.Fatalf("fetch: error %d hwm %d bytes %d", p.ErrorCode, p.HighWatermark, len(p.RecordBatches))
	}
	if elapsed > 5*time.Second {
		t.Fatalf("fetch returned after %v: it waited for MaxWait instead of being woken by the commit", elapsed)
	}
	t.Logf("long poll answered %v after it started (produce at 200ms, linger 20ms)", elapsed)
}

func TestFetchReturnsOversizeFirstBatchAndPatchesOffsets(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{})
	c := testutil.Dial(t, a.Addr())
	createTopic(t, c, "sizes", 1)
	for range 3 {
		c.Do(produceRequest("sizes", -1, batchSpec{records: 50}))
	}
	fetchAt := func(offset int64, partMax int32) kmsg.FetchResponseTopicPartition {
		fr := kmsg.NewPtrFetchRequest()
		fr.SetVersion(11)
		fr.MaxBytes = 1 << 20
		ft := kmsg.NewFetchRequestTopic()
		ft.Topic = "sizes"
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.FetchOffset, fp.PartitionMaxBytes = offset, partMax
		ft.Partitions = append(ft.Partitions, fp)
		fr.Topics = append(fr.Topics, ft)
		return c.Do(fr).(*kmsg.FetchResponse).Topics[0].Partitions[0]
	}
	p := fetchAt(0, 10) // smaller than any batch: one batch anyway (KIP-74)
	batches, err := recordbatch.Split(p.RecordBatches)
	if err != nil || len(batches) != 1 {
		t.Fatalf("got %d batches (%v), want exactly 1", len(batches), err)
	}
	p = fetchAt(75, 1<<20) // inside the second batch
	batches, _ = recordbatch.Split(p.RecordBatches)
	if len(batches) != 2 {
		t.Fatalf("got %d batches from offset 75, want 2", len(batches))
	}
	for i, b := range batches {
		h, err := recordbatch.Validate(b) // patched fields lie outside the CRC
		if err != nil {
			t.Fatal(err)
		}
		if want := int64(50 * (i + 1)); h.BaseOffset != want {
			t.Fatalf("batch %d base offset %d, want %d", i, h.BaseOffset, want)
		}
	}
	if p := fetchAt(151, 1<<20); p.ErrorCode != kerr.OffsetOutOfRange.Code {
		t.Fatalf("beyond the high watermark: error %d, want OFFSET_OUT_OF_RANGE", p.ErrorCode)
	}
}

func TestAdminEndpoints(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{})
	c := testutil.Dial(t, a.Addr())
	createTopic(t, c, "observed", 1)
	c.Do(produceRequest("observed", -1, batchSpec{records: 1}))
	for path, want := range map[string]string{
		"/healthz": "ok",
		"/metrics": `floe_objstore_requests_total{op="put",result="ok"}`,
	} {
		resp, err := http.Get("http://" + a.AdminAddr() + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Fatalf("%s: %d, missing %q", path, resp.StatusCode, want)
		}
	}
}

func TestDescribeClusterAndLeaderEpochs(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{})
	c := testutil.Dial(t, a.Addr())
	createTopic(t, c, "epochs", 1)
	c.Do(produceRequest("epochs", -1, batchSpec{records: 7}))

	dc := kmsg.NewPtrDescribeClusterRequest()
	dc.SetVersion(1)
	dc.EndpointType = 1
	dr := c.Do(dc).(*kmsg.DescribeClusterResponse)
	if dr.ErrorCode != 0 || dr.ClusterID != "floe" || len(dr.Brokers) != 1 || dr.ControllerID != dr.Brokers[0].NodeID {
		t.Fatalf("describe cluster: %+v", dr)
	}
	if addr := a.Addr(); !strings.HasSuffix(addr, ":"+itoa(dr.Brokers[0].Port)) {
		t.Fatalf("broker port %d, listener %s", dr.Brokers[0].Port, addr)
	}
	dc.EndpointType = 2 // controllers: not a thing in Floe
	if dr := c.Do(dc).(*kmsg.DescribeClusterResponse); dr.ErrorCode != kerr.UnsupportedEndpointType.Code {
		t.Fatalf("controller endpoint: error %d", dr.ErrorCode)
	}

	for _, tc := range []struct {
		current, epoch int32
		code           int16
		end            int64
	}{
		{current: -1, epoch: 0, end: 7},
		{current: 0, epoch: 0, end: 7},
		{current: 1, epoch: 0, code: kerr.UnknownLeaderEpoch.Code, end: -1},
		{current: 0, epoch: 3, end: -1}, // a later epoch than any: undefined
	} {
		req := kmsg.NewPtrOffsetForLeaderEpochRequest()
		req.SetVersion(4)
		req.ReplicaID = -1
		rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
		rt.Topic = "epochs"
		rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		rp.CurrentLeaderEpoch, rp.LeaderEpoch = tc.current, tc.epoch
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		p := c.Do(req).(*kmsg.OffsetForLeaderEpochResponse).Topics[0].Partitions[0]
		if p.ErrorCode != tc.code || p.EndOffset != tc.end {
			t.Errorf("current %d epoch %d: error %d end %d, want %d/%d", tc.current, tc.epoch, p.ErrorCode, p.EndOffset, tc.code, tc.end)
		}
	}
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }

// The agent that wrote an object serves it from memory: consumers at the
// live edge cause no bucket GETs, even when the commit wakes them.
func TestLiveEdgeReadsNeverGet(t *testing.T) {
	var counter *faulty.Bucket
	a := agenttest.Start(t, agenttest.Options{
		Wrap: func(b objstore.Bucket) objstore.Bucket { counter = faulty.New(b); return counter },
	})
	c := testutil.Dial(t, a.Addr())
	createTopic(t, c, "edge", 1)
	for i := range 10 {
		fr := kmsg.NewPtrFetchRequest()
		fr.SetVersion(11)
		fr.MaxWaitMillis, fr.MinBytes, fr.MaxBytes = 5000, 1, 1<<20
		ft := kmsg.NewFetchRequestTopic()
		ft.Topic = "edge"
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.FetchOffset, fp.PartitionMaxBytes = int64(i*3), 1<<20
		ft.Partitions = append(ft.Partitions, fp)
		fr.Topics = append(fr.Topics, ft)
		corr := c.Send(fr) // waits at the high watermark
		testutil.Dial(t, a.Addr()).Do(produceRequest("edge", -1, batchSpec{records: 3}))
		resp := kmsg.NewPtrFetchResponse()
		resp.SetVersion(11)
		c.Receive(corr, resp)
		if p := resp.Topics[0].Partitions[0]; p.ErrorCode != 0 || len(p.RecordBatches) == 0 {
			t.Fatalf("fetch %d: error %d, %d bytes", i, p.ErrorCode, len(p.RecordBatches))
		}
	}
	if gets := counter.Calls(faulty.Get); gets != 0 {
		t.Fatalf("%d bucket GETs for live-edge reads of objects this agent wrote", gets)
	}
}

// Close may be called more than once, and from several goroutines.
func TestCloseIsIdempotent(t *testing.T) {
	store, bucket := storeAndBucket(t)
	a, err := agent.Start(agent.Config{Listen: "127.0.0.1:0", AdminListen: "127.0.0.1:0"}, store, bucket)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() { a.Close() })
	}
	wg.Wait()
	a.Close()
	if live, err := store.LiveAgents(t.Context()); err != nil || len(live) != 0 {
		t.Fatalf("after Close: live agents %v, %v; want none", live, err)
	}
}

// A start that fails part-way stops what it had started: the listeners
// are free again and the agent is not left registered.
func TestFailedStartStopsWhatStarted(t *testing.T) {
	store, bucket := storeAndBucket(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	kafka := freeAddr(t)
	// The admin listener starts late, after membership, the cache ring,
	// the writer and the coordinator.
	if _, err := agent.Start(agent.Config{Listen: kafka, AdminListen: busy.Addr().String()}, store, bucket); err == nil {
		t.Fatal("start on a busy admin address succeeded")
	}
	if live, err := store.LiveAgents(t.Context()); err != nil || len(live) != 0 {
		t.Fatalf("after a failed start: live agents %v, %v; want none", live, err)
	}
	ln, err := net.Listen("tcp", kafka)
	if err != nil {
		t.Fatalf("Kafka address still taken after a failed start: %v", err)
	}
	ln.Close()
}

// storeAndBucket opens an embedded store and a local-directory bucket in
// the test's directory, for tests that start agents by hand.
func storeAndBucket(t *testing.T) (*embedded.Store, objstore.Bucket) {
	t.Helper()
	store, err := embedded.Open(filepath.Join(t.TempDir(), "m.db"), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	bucket, err := localdir.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return store, bucket
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// With a token, every admin path but /healthz wants it as a bearer token.
func TestAdminToken(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{Config: func(cfg *agent.Config) { cfg.AdminToken = "s3cr3t-t0ken" }})
	get := func(path, auth string) int {
		req, _ := http.NewRequest(http.MethodGet, "http://"+a.AdminAddr()+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		path, auth string
		want       int
	}{
		{"/healthz", "", 200},
		{"/metrics", "", 401},
		{"/metrics", "Bearer wrong", 401},
		{"/metrics", "s3cr3t-t0ken", 401},
		{"/metrics", "Bearer s3cr3t-t0ken", 200},
		{"/jobs", "", 401},
		{"/jobs", "Bearer s3cr3t-t0ken", 200},
	} {
		if got := get(tc.path, tc.auth); got != tc.want {
			t.Errorf("GET %s with %q: %d, want %d", tc.path, tc.auth, got, tc.want)
		}
	}
}
