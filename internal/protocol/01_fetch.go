package protocol

// Fetch v4-v17.
//
// v4 is the first version that returns record batch format v2 and the last
// stable offset. Below v10, a partition of a topic whose compression.type
// is zstd is UNSUPPORTED_COMPRESSION_TYPE (KIP-110; zstdTopic). v11 adds rack-aware replica selection (KIP-392):
// PreferredReadReplica is always -1. v13+ address topics by ID (KIP-516),
// in Topics and ForgottenTopics, and the answer carries IDs only: an ID
// the agent's topic cache does not know is UNKNOWN_TOPIC_ID for each of
// its partitions. A session is made of names (v7-v12) or of IDs (v13+);
// an incremental fetch that uses the other kind gets
// FETCH_SESSION_TOPIC_ID_ERROR and leaves the session as it was, as
// Kafka answers. v14 only says the
// client understands OFFSET_MOVED_TO_TIERED_STORAGE (KIP-405), which Floe
// never sends; v15 replaces ReplicaID with ReplicaState (KIP-903), v16 adds
// leader hints to NOT_LEADER_OR_FOLLOWER answers (KIP-951), left empty as
// in Produce: any agent that serves fetches can answer; v17 adds the
// follower's ReplicaDirectoryID (KIP-853), which consumers do not send.
//
// Fetch sessions (v7+, KIP-227), kept by package fetchsession with Kafka's
// rules: epoch 0 is a full fetch that asks for a session, and the answer
// carries its id (or 0 when the agent's cache has no room: the client
// goes on with full fetches); epoch -1 is a full fetch without a session,
// closing the one named; an incremental fetch (the session's next epoch)
// names only the partitions whose parameters changed, plus
// ForgottenTopics to drop, and is answered only with the partitions that
// have records, an error, or a new high watermark, last stable offset or
// log start offset since the session's last answer carrying them. An
// unknown session is FETCH_SESSION_ID_NOT_FOUND, a wrong epoch
// INVALID_FETCH_SESSION_EPOCH, both with no partitions. Sessions belong to
// the agent and the connection that made them: a client that reconnects
// or moves to another agent starts over, as after an eviction. Versions
// before 7 have no sessions. Partitions are read in the session's order,
// and those that returned records move to its end, so a response cut by
// MaxBytes leaves different partitions out each time.
//
// Reading history (read-ahead, internal/fetch/readahead.go): before the
// partitions are read one by one, the bucket GETs each one's share needs
// are started in parallel; the partitions give what is in memory and do
// not wait for the GETs bringing the rest (fetch.Reader.ReadReady). A
// fetch that finds nothing in memory waits for whichever of those GETs
// lands first (fetch.Reader.Landed) and reads the waiting partitions
// again; a response that would hold only a prefix of one partition reads
// that partition whole; then, if it still has fewer than MinBytes, the
// fetch waits for the waiting partitions' own GETs. A catch-up consumer
// then never waits for a GET while data is ready, never for a slow GET
// while a faster one has landed, and finds the rest in its next fetch.
//
// A fetch that finds fewer than MinBytes waits until a commit lands on one
// of its partitions or MaxWaitMs passes. It is woken by the commit itself,
// not by polling, and only by commits on the partitions it reads. An
// incremental fetch waits the same way: its session's partitions are read
// again when woken, and the answer is filtered once, when it is sent.
// MaxBytes is lowered to the agent's fetch.max.bytes (Limits), and each
// partition's PartitionMaxBytes to what is left of it.
//
// isolation_level (KIP-98): read_uncommitted (0) returns batches up to
// the high watermark and a null AbortedTransactions. read_committed (1;
// any other non-zero value is read the same way, the safer reading)
// returns only whole batches below the last stable offset, cut at a batch
// boundary inside an extent if need be, and lists the aborted
// transactions overlapping [fetch offset, end of the returned batches)
// (an empty list, not null, when there are none: Kafka's answer). Control
// batches are returned at both levels; clients skip them. Every partition
// reports its LastStableOffset. Out-of-range stays on the high watermark:
// a read_committed offset between the last stable offset and the high
// watermark reads nothing. Its long poll counts only bytes below the last
// stable offset, so it waits until the LSO moves; ending a transaction is
// a commit that announces its markers' partitions and wakes it. All of
// this is per partition, so it is the same for partitions of a session:
// an incremental answer carries a partition whose last stable offset
// moved even if nothing else did.

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/fetch"
	"github.com/floe-io/floe/internal/fetchsession"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(1, 4, 17, (*Handler).fetch) }

// maxFetchWait bounds MaxWaitMs so a hostile client cannot park a request
// forever.
const maxFetchWait = 5 * time.Minute

// The session work runs in the reply, which runs after the connection's
// earlier replies: a client's fetches reach its session in the order it
// sent them.
func (h *Handler) fetch(_ context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.FetchRequest)
	return func(ctx context.Context) kmsg.Response {
		f, err := h.cfg.FetchSessions.Begin(sessionRequest(req.Conn, r))
		if err != nil {
			resp := r.ResponseKind().(*kmsg.FetchResponse)
			resp.ErrorCode = sessionErrorCode(err)
			return resp
		}
		// READ on each topic, decided once per topic name and request. A
		// topic named by an ID the agent does not know is answered
		// UNKNOWN_TOPIC_ID before this is asked (fetchOnce).
		decided := map[string]bool{}
		denied := func(name string) bool {
			d, ok := decided[name]
			if !ok {
				d = !h.allowed(req, acl.Read, acl.Topic, name)
				decided[name] = d
			}
			return d
		}
		wait := min(time.Duration(r.MaxWaitMillis)*time.Millisecond, maxFetchWait)
		deadline := time.Now().Add(wait)
		// Woken only by commits on the partitions read (see
		// fetch.Notifier): each is watched before it is read.
		w := h.notify.NewWaiter()
		defer w.Close()
		for {
			w.Arm()
			read := h.fetchOnce(ctx, r, f.Partitions, denied, w)
			if read.bytes >= int(r.MinBytes) || read.failed || !time.Now().Before(deadline) {
				return h.fetchResponse(r, f, read)
			}
			timer := time.NewTimer(time.Until(deadline))
			select {
			case <-w.C():
				timer.Stop()
			case <-timer.C:
				return h.fetchResponse(r, f, h.fetchOnce(ctx, r, f.Partitions, denied, nil))
			case <-ctx.Done():
				timer.Stop()
				return h.fetchResponse(r, f, read)
			}
		}
	}, nil
}

// sessionRequest is what r says about sessions. Versions before 7 have
// none: they are full fetches without a session.
func sessionRequest(conn uint64, r *kmsg.FetchRequest) fetchsession.Request {
	sr := fetchsession.Request{Conn: conn, SessionID: r.SessionID, Epoch: r.SessionEpoch}
	if r.Version < 7 {
		sr.SessionID, sr.Epoch = 0, fetchsession.NoSession
	}
	n := 0
	for _, rt := range r.Topics {
		n += len(rt.Partitions)
	}
	sr.Partitions = make([]fetchsession.Partition, 0, n)
	byID := r.Version >= 13
	sr.TopicIDs = byID
	for _, rt := range r.Topics {
		topic := sessionTopic(byID, rt.Topic, rt.TopicID)
		for _, rp := range rt.Partitions {
			sr.Partitions = append(sr.Partitions, fetchsession.Partition{
				Key:    fetchsession.Key{Topic: topic, Partition: rp.Partition},
				Params: fetchsession.Params{FetchOffset: rp.FetchOffset, MaxBytes: rp.PartitionMaxBytes, CurrentLeaderEpoch: rp.CurrentLeaderEpoch},
			})
		}
	}
	for _, ft := range r.ForgottenTopics {
		topic := sessionTopic(byID, ft.Topic, ft.TopicID)
		for _, p := range ft.Partitions {
			sr.Forgotten = append(sr.Forgotten, fetchsession.Key{Topic: topic, Partition: p})
		}
	}
	return sr
}

// idKeyPrefix starts a session key that holds a topic ID (v13+) instead
// of a name: no topic name contains a NUL byte.
const idKeyPrefix = "\x00"

// sessionTopic is the topic part of a session key: the name before v13,
// the ID from v13.
func sessionTopic(byID bool, name string, id [16]byte) string {
	if byID {
		return idKeyPrefix + string(id[:])
	}
	return name
}

// keyTopicID returns the topic ID of a v13+ session key.
func keyTopicID(k fetchsession.Key) (metastore.TopicID, bool) {
	var id metastore.TopicID
	if len(k.Topic) != len(idKeyPrefix)+len(id) || k.Topic[:len(idKeyPrefix)] != idKeyPrefix {
		return id, false
	}
	copy(id[:], k.Topic[len(idKeyPrefix):])
	return id, true
}

func sessionErrorCode(err error) int16 {
	if errors.Is(err, fetchsession.ErrInvalidEpoch) {
		return kerr.InvalidFetchSessionEpoch.Code
	}
	if errors.Is(err, fetchsession.ErrTopicIDUsage) {
		return kerr.FetchSessionTopicIDError.Code
	}
	return kerr.FetchSessionIDNotFound.Code
}

// fetched is one read of a fetch's partitions.
type fetched struct {
	// parts[i] answers the fetch's i-th partition.
	parts []kmsg.FetchResponseTopicPartition
	ids   map[string]metastore.TopicID
	// bytes counts the record bytes read; failed is set when an error
	// must be answered at once instead of waiting for data.
	bytes  int
	failed bool
	// names[i] is the name of parts[i]'s topic, "" if unknown
	// (fetch_served.go counts by it).
	names []string
}

// fetchOnce reads every partition once, in order, each watched by w
// (nil: none) before it is read. Partitions of denied topics fail with
// TOPIC_AUTHORIZATION_FAILED.
func (h *Handler) fetchOnce(ctx context.Context, r *kmsg.FetchRequest, parts []fetchsession.Partition, denied func(topic string) bool, w *fetch.Waiter) fetched {
	maxBytes := int(r.MaxBytes)
	if r.Version < 3 || maxBytes <= 0 {
		maxBytes = 1<<31 - 1
	}
	if limit := int(h.cfg.Limits.FetchMaxBytes); limit > 0 {
		maxBytes = min(maxBytes, limit) // fetch.max.bytes
	}
	iso := fetch.ReadUncommitted
	if r.IsolationLevel != 0 {
		iso = fetch.ReadCommitted
	}
	lookup := h.lookup(ctx)
	reader := h.cfg.Cluster.Serves(RoleFetch)
	var landed <-chan struct{}
	if reader {
		landed = h.reader.Landed()
		h.readAhead(ctx, r, lookup, parts, denied, maxBytes, iso)
	}
	out := fetched{parts: make([]kmsg.FetchResponseTopicPartition, len(parts)), ids: map[string]metastore.TopicID{}}
	// The partitions that stopped at bytes a GET is bringing, with their
	// topics.
	type waitingPart struct {
		i int
		t metastore.Topic
	}
	var waiting []waitingPart
	// lone is the first partition to give records, if it stopped at bytes
	// a GET is bringing (i -1: none did).
	lone := waitingPart{i: -1}
	// readReady reads partition i without waiting for the bucket.
	readReady := func(i int, t metastore.Topic, pr *kmsg.FetchResponseTopicPartition) (waiting bool) {
		first := out.bytes == 0
		waiting = h.fetchPartition(ctx, t, parts[i], pr, maxBytes-out.bytes, first, iso, true)
		if first && waiting && len(pr.RecordBatches) > 0 {
			lone = waitingPart{i, t}
		}
		return waiting
	}
	// count adds a partition just read to the response's totals.
	count := func(pr *kmsg.FetchResponseTopicPartition) {
		if pr.RecordBatches == nil {
			// Kafka never sends null records; librdkafka rejects a
			// null (-1) MessageSetSize as a parse failure.
			pr.RecordBatches = []byte{}
		}
		out.bytes += len(pr.RecordBatches)
		out.failed = out.failed || pr.ErrorCode != 0
	}
	for i, p := range parts {
		var (
			t    metastore.Topic
			terr error
		)
		// A session keeps one kind of key (fetchsession.ErrTopicIDUsage):
		// IDs exactly when the request names topics by ID, so that no name
		// sent before v13 is ever read as an ID.
		byID := r.Version >= 13
		id, _ := keyTopicID(p.Key)
		if byID {
			t, terr = lookup.id(id)
			out.ids[p.Topic] = id // an unknown ID is answered as asked
		} else {
			t, terr = lookup.name(p.Topic)
			out.ids[p.Topic] = t.ID
		}
		pr := &out.parts[i]
		pr.Default()
		pr.Partition = p.Partition
		pr.HighWatermark, pr.LastStableOffset, pr.LogStartOffset = -1, -1, -1
		pr.PreferredReadReplica = -1
		name := p.Topic
		if byID {
			name = t.Name
		}
		if byID && isUnknownTopicID(terr) {
			pr.ErrorCode = kerr.UnknownTopicID.Code
		} else if (!byID || terr == nil) && denied(name) {
			pr.ErrorCode = kerr.TopicAuthorizationFailed.Code
		} else if code := partitionErr(t, terr, p.Partition); code != 0 {
			pr.ErrorCode = code
		} else if !reader {
			pr.ErrorCode = kerr.NotLeaderForPartition.Code
		} else if code := checkLeaderEpoch(p.CurrentLeaderEpoch); code != 0 {
			pr.ErrorCode = code
		} else if r.Version < 10 && zstdTopic(t) {
			pr.ErrorCode = kerr.UnsupportedCompressionType.Code
		} else {
			w.Watch(t.ID, p.Partition)
			// Every partition gives what is in memory and does not wait
			// for a bucket GET (below).
			if readReady(i, t, pr) {
				waiting = append(waiting, waitingPart{i, t})
			}
		}
		count(pr)
		if out.names == nil {
			out.names = make([]string, len(parts))
		}
		out.names[i] = t.Name
	}
	// Nothing in memory yet: the fetch waits for whichever of its GETs
	// lands first, not for the first partition's, and reads the
	// partitions that were waiting again.
	for round := 0; out.bytes == 0 && len(waiting) > 0 && round < maxLandedRounds; round++ {
		select {
		case <-landed:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		landed = h.reader.Landed()
		still := waiting[:0]
		for _, wp := range waiting {
			pr := &out.parts[wp.i]
			if readReady(wp.i, wp.t, pr) {
				still = append(still, wp)
			}
			count(pr)
		}
		waiting = still
	}
	// The only records are a prefix of one partition, cut at a block still
	// on its way: that partition is read whole, as Read would (what it
	// found in memory is read again, waiting this time), so that the
	// response is not cut there while nothing else fills it.
	if lone.i >= 0 && out.bytes == len(out.parts[lone.i].RecordBatches) {
		pr := &out.parts[lone.i]
		out.bytes = 0
		h.Buffers().Put(pr.RecordBatches)
		pr.RecordBatches, pr.AbortedTransactions = nil, nil
		h.fetchPartition(ctx, lone.t, parts[lone.i], pr, maxBytes, true, iso, false)
		count(pr)
	}
	// Fewer bytes than the client waits for: the partitions that did not
	// wait for their GETs do now, rather than the fetch waiting for a
	// commit that a catch-up does not need.
	for _, wp := range waiting {
		if out.bytes >= int(r.MinBytes) {
			break
		}
		p, pr := parts[wp.i], &out.parts[wp.i]
		if len(pr.RecordBatches) > 0 {
			continue
		}
		h.fetchPartition(ctx, wp.t, p, pr, maxBytes-out.bytes, out.bytes == 0, iso, false)
		count(pr)
	}
	return out
}

// maxLandedRounds bounds how many GETs a fetch with nothing in memory
// waits for, one after another, before it reads the partitions still
// waiting and waits for their own GETs.
const maxLandedRounds = 32

// readAhead starts, before the partitions are read one by one, the bucket
// GETs each partition's share of the fetch will need, so that they run
// in parallel (fetch.Reader.ReadAhead; it never waits for the bucket).
// Shares are given in order, as the reads will take them.
func (h *Handler) readAhead(ctx context.Context, r *kmsg.FetchRequest, lookup *topicLookup, parts []fetchsession.Partition, denied func(topic string) bool, maxBytes int, iso fetch.Isolation) {
	left := maxBytes
	for _, p := range parts {
		if left <= 0 {
			return
		}
		// The topic as fetchOnce finds it: by ID from v13, else by name.
		var t metastore.Topic
		var terr error
		if r.Version >= 13 {
			id, _ := keyTopicID(p.Key)
			t, terr = lookup.id(id)
		} else {
			t, terr = lookup.name(p.Topic)
		}
		if terr != nil || denied(t.Name) || partitionErr(t, terr, p.Partition) != 0 || checkLeaderEpoch(p.CurrentLeaderEpoch) != 0 {
			continue
		}
		share := min(int(p.MaxBytes), left)
		h.reader.ReadAhead(ctx, t.ID, p.Partition, p.FetchOffset, share, iso)
		left -= share
	}
}

// fetchResponse finishes the fetch with its session and answers the
// partitions the session says to, grouped by topic in the order of their
// first partition.
func (h *Handler) fetchResponse(r *kmsg.FetchRequest, f *fetchsession.Fetch, read fetched) *kmsg.FetchResponse {
	resp := r.ResponseKind().(*kmsg.FetchResponse)
	results := make([]fetchsession.Result, len(read.parts))
	for i, p := range read.parts {
		results[i] = fetchsession.Result{
			HighWatermark: p.HighWatermark, LastStableOffset: p.LastStableOffset, LogStartOffset: p.LogStartOffset,
			Records: len(p.RecordBatches) > 0, Failed: p.ErrorCode != 0,
		}
	}
	id, include, err := h.cfg.FetchSessions.Finish(f, results)
	resp.SessionID = id
	if err != nil {
		resp.ErrorCode = sessionErrorCode(err)
		return resp
	}
	topic := map[string]int{}
	for i, p := range f.Partitions {
		if include != nil && !include[i] {
			continue
		}
		ti, ok := topic[p.Topic]
		if !ok {
			ti = len(resp.Topics)
			topic[p.Topic] = ti
			rt := kmsg.NewFetchResponseTopic()
			rt.TopicID = read.ids[p.Topic]
			if r.Version < 13 {
				rt.Topic = p.Topic
			}
			resp.Topics = append(resp.Topics, rt)
		}
		resp.Topics[ti].Partitions = append(resp.Topics[ti].Partitions, read.parts[i])
	}
	h.countServed(f, include, read)
	return resp
}

// fetchPartition reads one partition into pr. With ready set it does not
// wait for the bucket (fetch.Reader.ReadReady) and reports whether it
// stopped at bytes a GET is bringing.
func (h *Handler) fetchPartition(ctx context.Context, t metastore.Topic, p fetchsession.Partition, pr *kmsg.FetchResponseTopicPartition, budget int, first bool, iso fetch.Isolation, ready bool) (waiting bool) {
	limit := min(int(p.MaxBytes), budget)
	if limit <= 0 && !first {
		// The response is full; report offsets without data, from the
		// reader's cache as a read would.
		offs, err := h.reader.CachedOffsets(ctx, t.ID, p.Partition)
		if err != nil {
			pr.ErrorCode = errorCode(err)
			return false
		}
		setOffsets(pr, offs)
		if iso == fetch.ReadCommitted {
			pr.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
		}
		return false
	}
	var res fetch.Partition
	var err error
	if ready {
		res, waiting, err = h.reader.ReadReady(ctx, t.ID, p.Partition, p.FetchOffset, limit, first, iso)
	} else {
		res, err = h.reader.Read(ctx, t.ID, p.Partition, p.FetchOffset, limit, first, iso)
	}
	setOffsets(pr, res.PartitionOffsets)
	if err != nil {
		pr.ErrorCode = errorCode(err)
		if pr.ErrorCode == kerr.KafkaStorageError.Code {
			h.log.Warn("fetch failed", "topic", t.Name, "partition", p.Partition, "offset", p.FetchOffset, "err", err)
		}
		return false
	}
	pr.RecordBatches = res.Records
	if res.Aborted != nil {
		pr.AbortedTransactions = make([]kmsg.FetchResponseTopicPartitionAbortedTransaction, 0, len(res.Aborted))
		for _, a := range res.Aborted {
			at := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
			at.ProducerID, at.FirstOffset = a.ProducerID, a.FirstOffset
			pr.AbortedTransactions = append(pr.AbortedTransactions, at)
		}
	}
	return waiting
}

// Buffers is the memory the reader's records come from, for the
// connection to take large response frames from as well.
// Without a reader it is nil, which pools nothing.
func (h *Handler) Buffers() *fetch.Buffers {
	if h.reader == nil {
		return nil
	}
	return h.reader.Buffers()
}

// ReleaseResponse gives the records of a Fetch response this handler
// made back to the reader, once the response is encoded and nothing
// refers to them; other responses are left alone. Every non-empty
// RecordBatches of a Fetch response is a Read's own Records (fetchPartition).
func (h *Handler) ReleaseResponse(resp kmsg.Response) {
	f, ok := resp.(*kmsg.FetchResponse)
	if !ok {
		return
	}
	bufs := h.Buffers()
	for i := range f.Topics {
		for j := range f.Topics[i].Partitions {
			p := &f.Topics[i].Partitions[j]
			bufs.Put(p.RecordBatches)
			p.RecordBatches = nil
		}
	}
}

func setOffsets(pr *kmsg.FetchResponseTopicPartition, offs metastore.PartitionOffsets) {
	pr.HighWatermark = offs.HighWatermark
	pr.LastStableOffset = offs.LastStableOffset
	pr.LogStartOffset = offs.LogStartOffset
}

// checkLeaderEpoch validates a client's current leader epoch (-1: none).
func checkLeaderEpoch(epoch int32) int16 {
	switch {
	case epoch < 0 || epoch == fetch.LeaderEpoch:
		return 0
	case epoch > fetch.LeaderEpoch:
		return kerr.UnknownLeaderEpoch.Code
	default:
		return kerr.FencedLeaderEpoch.Code
	}
}
