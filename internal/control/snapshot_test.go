package control

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/floe-io/floe/internal/journal"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/embedded"
)

const testID = "0a1b2c3d-0000-4000-8000-00000000abcd"

func testHeader() BackupHeader {
	h := sha256.Sum256([]byte("key"))
	return BackupHeader{VCluster: "prod", ID: testID, KeyHash: h[:], CreatedAt: 1, WrittenAt: 2}
}

// testState is an embedded store with a few topics, commits and offsets,
// its applied sequence at seq.
func testState(t testing.TB, seq int64) *embedded.Store {
	t.Helper()
	s, err := embedded.Open(filepath.Join(t.TempDir(), "s.db"), embedded.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := t.Context()
	for i := range 3 {
		tp, err := s.CreateTopic(ctx, metastore.TopicSpec{Name: fmt.Sprintf("t%d", i), Partitions: 2, Configs: map[string]string{"retention.ms": "1000"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.CommitSegment(ctx, metastore.SegmentCommit{Object: fmt.Sprintf("seg/%d", i), Size: 10, Batches: []metastore.BatchCommit{
			{TopicID: tp.ID, Partition: 1, ByteLength: 10, OffsetCount: 5, ProducerID: -1},
		}}); err != nil {
			t.Fatal(err)
		}
		if err := s.CommitOffsets(ctx, "g\xff", []metastore.CommittedOffset{{TopicID: tp.ID, Partition: 1, Offset: 4, LeaderEpoch: -1}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetAppliedSeq(ctx, seq, 12345); err != nil {
		t.Fatal(err)
	}
	return s
}

func encodeTestSnapshot(t testing.TB, s *embedded.Store) []byte {
	t.Helper()
	sn, err := s.BeginSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Close()
	raw, err := encodeSnapshot(testHeader(), sn)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

type kv struct{ b, k, v string }

func dump(t testing.TB, s *embedded.Store) []kv {
	t.Helper()
	sn, err := s.BeginSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Close()
	var out []kv
	if err := sn.ForEach(func(b, k, v []byte) error {
		out = append(out, kv{string(b), string(k), string(v)})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSnapshotRoundTrip encodes a state, decodes it into a new file and
// finds every key and value again, and the applied sequence.
func TestSnapshotRoundTrip(t *testing.T) {
	s := testState(t, 42)
	raw := encodeTestSnapshot(t, s)
	path := filepath.Join(t.TempDir(), "restored.db")
	l, err := embedded.NewLoader(path)
	if err != nil {
		t.Fatal(err)
	}
	want := backupKey{name: "prod", id: testID, kind: kindSnapshot, first: 42, last: 42}
	h, err := decodeSnapshot(raw, want, l.Put)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(true); err != nil {
		t.Fatal(err)
	}
	if h.First != 42 || h.VCluster != "prod" || h.Count == 0 {
		t.Fatalf("header %+v", h)
	}
	r, err := embedded.Open(path, embedded.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	seq, at, err := r.AppliedSeq(t.Context())
	if err != nil || seq != 42 || at != 12345 {
		t.Fatalf("applied %d at %d, %v", seq, at, err)
	}
	a, b := dump(t, s), dump(t, r)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatalf("restored state differs:\n%v\n%v", a, b)
	}
	topics, err := r.Topics(t.Context())
	if err != nil || len(topics) != 3 || topics[0].Configs["retention.ms"] != "1000" {
		t.Fatalf("topics %v, %v", topics, err)
	}
	// The key must match the header.
	if _, err := decodeSnapshot(raw, backupKey{name: "prod", id: testID, kind: kindSnapshot, first: 41, last: 41}, func(_, _, _ []byte) error { return nil }); !errors.Is(err, ErrBadBackup) {
		t.Fatalf("snapshot under another seq's key: %v", err)
	}
	if _, err := decodeSnapshot(raw, backupKey{name: "other"}, func(_, _, _ []byte) error { return nil }); !errors.Is(err, ErrBadBackup) {
		t.Fatalf("snapshot of another vcluster: %v", err)
	}
}

func testEntries(first, n int64) []journal.Entry {
	var es []journal.Entry
	for i := range n {
		es = append(es, journal.Entry{Seq: first + i, Batch: bytes.Repeat([]byte{byte(i)}, int(i)*7)})
	}
	return es
}

func TestLogRoundTrip(t *testing.T) {
	es := testEntries(10, 50)
	raw, err := encodeLog(testHeader(), es)
	if err != nil {
		t.Fatal(err)
	}
	var got []journal.Entry
	h, err := decodeLog(raw, backupKey{name: "prod", id: testID, kind: kindLog, first: 10, last: 59}, func(e journal.Entry) error {
		got = append(got, journal.Entry{Seq: e.Seq, Batch: bytes.Clone(e.Batch)})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if h.First != 10 || h.Last != 59 || h.Count != 50 || len(got) != 50 {
		t.Fatalf("header %+v, %d entries", h, len(got))
	}
	for i := range es {
		if got[i].Seq != es[i].Seq || !bytes.Equal(got[i].Batch, es[i].Batch) {
			t.Fatalf("entry %d differs", i)
		}
	}
	if _, err := encodeLog(testHeader(), []journal.Entry{{Seq: 1}, {Seq: 3}}); err == nil {
		t.Fatal("a log object with a gap was encoded")
	}
}

// TestDecodeRefusesDamage flips every byte of small objects in turn (and
// truncates them): each damaged copy is refused with ErrBadBackup.
func TestDecodeRefusesDamage(t *testing.T) {
	snap := encodeTestSnapshot(t, testState(t, 7))
	log, err := encodeLog(testHeader(), testEntries(1, 3))
	if err != nil {
		t.Fatal(err)
	}
	decode := map[string]func([]byte) error{
		"snapshot": func(b []byte) error {
			_, err := decodeSnapshot(b, backupKey{}, func(_, _, _ []byte) error { return nil })
			return err
		},
		"log": func(b []byte) error {
			_, err := decodeLog(b, backupKey{}, func(journal.Entry) error { return nil })
			return err
		},
	}
	for name, raw := range map[string][]byte{"snapshot": snap, "log": log} {
		if err := decode[name](raw); err != nil {
			t.Fatalf("%s: intact object refused: %v", name, err)
		}
		step := max(1, len(raw)/500)
		for i := 0; i < len(raw); i += step {
			bad := bytes.Clone(raw)
			bad[i] ^= 0x40
			if err := decode[name](bad); !errors.Is(err, ErrBadBackup) {
				t.Fatalf("%s with byte %d flipped: %v", name, i, err)
			}
			if err := decode[name](raw[:i]); !errors.Is(err, ErrBadBackup) {
				t.Fatalf("%s cut at %d: %v", name, i, err)
			}
		}
		// The other kind's decoder refuses it.
		other := "log"
		if name == "log" {
			other = "snapshot"
		}
		if err := decode[other](raw); !errors.Is(err, ErrBadBackup) {
			t.Fatalf("%s read as %s: %v", name, other, err)
		}
	}
}

func TestParseBackupKey(t *testing.T) {
	for key, ok := range map[string]bool{
		snapshotKey("prod", testID, 5): true,
		logKey("prod", testID, 1, 9):   true,
		"control/prod/" + testID + "/log/00000000000000000009-00000000000000000001": false,
		"control/prod/" + testID + "/snapshots/5":                                   false,
		"control/Prod/" + testID + "/snapshots/00000000000000000005":                false,
		"control/prod/not-an-id/snapshots/00000000000000000005":                     false,
		"control/prod/" + testID + "/other/00000000000000000005":                    false,
		"segments/abc": false,
	} {
		if _, got := parseBackupKey(key); got != ok {
			t.Errorf("parseBackupKey(%q) = %v, want %v", key, got, ok)
		}
	}
	k, _ := parseBackupKey(logKey("prod", testID, 3, 8))
	if k.kind != kindLog || k.first != 3 || k.last != 8 || k.name != "prod" || k.id != testID {
		t.Fatalf("parsed %+v", k)
	}
}

// FuzzDecodeSnapshot: any bytes are refused or decoded without a panic,
// and what decodes loads into a store file that opens.
func FuzzDecodeSnapshot(f *testing.F) {
	f.Add(encodeTestSnapshot(f, testState(f, 3)))
	// Objects with a valid checksum around hostile bodies, so that the
	// fuzzer gets past the SHA-256.
	for _, body := range [][]byte{{recEnd}, {recPair, 1, 'k', 1, 'v', recEnd}, {recBucket, 0, recEnd}, {recBucket, 1, 'b', recPair, 0xff, 0xff, 0xff, 0xff, 0x0f}} {
		raw, err := encodeObject(kindSnapshot, testHeader(), func(w *bufioWriter) error { _, err := w.Write(body); return err })
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		// Decode first without a file (fast for the many refused
		// inputs), then load what decoded into one.
		var recs []kv
		if _, err := decodeSnapshot(raw, backupKey{}, func(b, k, v []byte) error {
			recs = append(recs, kv{string(b), string(k), string(v)})
			return nil
		}); err != nil {
			return
		}
		path := filepath.Join(t.TempDir(), "s.db")
		l, err := embedded.NewLoader(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if err = l.Put([]byte(r.b), []byte(r.k), []byte(r.v)); err != nil {
				break
			}
		}
		if cerr := l.Close(err == nil); cerr != nil {
			t.Fatal(cerr)
		}
		if err != nil {
			t.Fatalf("decoded records refused by the loader: %v", err)
		}
		s, err := embedded.Open(path, embedded.Options{NoSync: true})
		if err != nil {
			return // a state the store refuses (not a panic)
		}
		s.AppliedSeq(t.Context())
		s.Topics(t.Context())
		s.Close()
	})
}

// FuzzDecodeLog: any bytes are refused or decoded without a panic, and a
// decoded log's batches are consecutive from its header's first.
func FuzzDecodeLog(f *testing.F) {
	raw, err := encodeLog(testHeader(), testEntries(5, 4))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	for _, body := range [][]byte{{}, {0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff}} {
		h := testHeader()
		h.First, h.Last, h.Count = 1, 1, 1
		raw, err := encodeObject(kindLog, h, func(w *bufioWriter) error { _, err := w.Write(body); return err })
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var next int64
		h, err := decodeLog(raw, backupKey{}, func(e journal.Entry) error {
			if next != 0 && e.Seq != next {
				t.Fatalf("batch #%d after #%d", e.Seq, next-1)
			}
			next = e.Seq + 1
			return nil
		})
		if err == nil && next != h.Last+1 {
			t.Fatalf("decoded up to #%d of %d..%d", next-1, h.First, h.Last)
		}
	})
}

type bufioWriter = bufio.Writer
