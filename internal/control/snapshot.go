package control

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/klauspost/compress/zstd"

	"github.com/floe-io/floe/internal/journal"
	"github.com/floe-io/floe/internal/metastore/embedded"
	"github.com/floe-io/floe/internal/metastore/remote"
)

// The backup objects a vcluster writes to the bucket
// (docs/metadata-format.md has the byte layout):
//
//	control/<name>/<id>/snapshots/<seq>        the whole state after batch seq
//	control/<name>/<id>/log/<first>-<last>     journal batches first..last
//
// seq, first and last are 20 decimal digits, so that keys list in
// sequence order. Every object is
//
//	"FLOE" | kind byte ('S' snapshot, 'L' log) | version byte (1) | 2 zero bytes
//	| header length uint32 BE | header (CBOR) | body (zstd) | SHA-256 of all before it
//
// and is checked whole (size bounds, then the SHA-256) before any of it
// is decoded.

const (
	backupRoot    = "control/"
	objectMagic   = "FLOE"
	kindSnapshot  = 'S'
	kindLog       = 'L'
	formatVersion = 1
	fixedHeader   = 12 // magic, kind, version, reserved, header length
	trailerSize   = sha256.Size

	// maxHeaderBytes bounds an object's header.
	maxHeaderBytes = 64 << 10
	// MaxSnapshotObject and MaxLogObject bound the objects read back
	// (compressed, as stored): a larger one is refused before it is read.
	MaxSnapshotObject = 1 << 30
	MaxLogObject      = 256 << 20
	// maxSnapshotState bounds a snapshot's decompressed body; maxLogBody
	// a log object's. maxValueBytes bounds one value of the state.
	maxSnapshotState = 16 << 30
	maxLogBody       = 1 << 30
	maxValueBytes    = 64 << 20
	maxKeyBytes      = 32 << 10
)

// ErrBadBackup reports a backup object that is not what it claims to be:
// a wrong magic, version, checksum, bound or vcluster.
var ErrBadBackup = errors.New("bad backup object")

func badBackup(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadBackup, fmt.Sprintf(format, args...))
}

// BackupHeader names what a backup object holds. It repeats the registry
// entry of the vcluster, so that a restore needs nothing but the bucket.
type BackupHeader struct {
	VCluster string `cbor:"vcluster"`
	ID       string `cbor:"id"`
	// KeyHash is the SHA-256 of the vcluster's agent key (as the registry
	// keeps it): a restored vcluster accepts the same agents.
	KeyHash   []byte `cbor:"key_hash"`
	CreatedAt int64  `cbor:"created_at"` // registry entry, Unix nanoseconds
	// First and Last are the journal sequence numbers held: a snapshot
	// holds the state after batch Last (First = Last); a log object the
	// batches First..Last.
	First int64 `cbor:"first"`
	Last  int64 `cbor:"last"`
	// Count is the number of keys (snapshot) or batches (log) in the body.
	Count     int64 `cbor:"count"`
	WrittenAt int64 `cbor:"written_at"` // Unix nanoseconds
	// RestoredFrom is the id of the vcluster this one was restored from.
	RestoredFrom string `cbor:"restored_from,omitempty"`
}

var idRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func (h BackupHeader) check(kind byte) error {
	if err := journal.CheckName(h.VCluster); err != nil {
		return badBackup("%v", err)
	}
	if !idRE.MatchString(h.ID) {
		return badBackup("id %q", h.ID)
	}
	if len(h.KeyHash) != sha256.Size {
		return badBackup("key hash of %d bytes", len(h.KeyHash))
	}
	if h.RestoredFrom != "" && !idRE.MatchString(h.RestoredFrom) {
		return badBackup("restored_from %q", h.RestoredFrom)
	}
	switch {
	case h.First < 0 || h.Last < h.First || h.Count < 0:
		return badBackup("sequence %d..%d, count %d", h.First, h.Last, h.Count)
	case kind == kindSnapshot && h.First != h.Last:
		return badBackup("snapshot of %d..%d", h.First, h.Last)
	case kind == kindLog && (h.First < 1 || h.Count != h.Last-h.First+1):
		return badBackup("log of %d..%d with %d batches", h.First, h.Last, h.Count)
	}
	return nil
}

// Backup object keys.

func backupPrefix(name, id string) string { return backupRoot + name + "/" + id + "/" }

func snapshotKey(name, id string, seq int64) string {
	return fmt.Sprintf("%ssnapshots/%020d", backupPrefix(name, id), seq)
}

func logKey(name, id string, first, last int64) string {
	return fmt.Sprintf("%slog/%020d-%020d", backupPrefix(name, id), first, last)
}

// backupKey is a parsed backup object key.
type backupKey struct {
	name, id    string
	kind        byte
	first, last int64
}

// parseBackupKey parses a key under backupRoot; ok is false for anything
// else (objects of other writers are ignored, not trusted).
func parseBackupKey(key string) (k backupKey, ok bool) {
	rest, found := strings.CutPrefix(key, backupRoot)
	if !found {
		return k, false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 4 || journal.CheckName(parts[0]) != nil || !idRE.MatchString(parts[1]) {
		return k, false
	}
	k.name, k.id = parts[0], parts[1]
	seq := func(s string) (int64, bool) {
		if len(s) != 20 {
			return 0, false
		}
		n, err := strconv.ParseInt(s, 10, 64)
		return n, err == nil && n >= 0
	}
	switch parts[2] {
	case "snapshots":
		n, ok := seq(parts[3])
		if !ok {
			return k, false
		}
		k.kind, k.first, k.last = kindSnapshot, n, n
	case "log":
		a, b, found := strings.Cut(parts[3], "-")
		first, ok1 := seq(a)
		last, ok2 := seq(b)
		if !found || !ok1 || !ok2 || first < 1 || last < first {
			return k, false
		}
		k.kind, k.first, k.last = kindLog, first, last
	default:
		return k, false
	}
	return k, true
}

// encodeObject frames a backup object: header, body written by body into
// a zstd stream, and the SHA-256 trailer.
func encodeObject(kind byte, h BackupHeader, body func(w *bufio.Writer) error) ([]byte, error) {
	if err := h.check(kind); err != nil {
		return nil, err
	}
	hdr, err := remote.Marshal(h)
	if err != nil {
		return nil, err
	}
	if len(hdr) > maxHeaderBytes {
		return nil, fmt.Errorf("backup header of %d bytes", len(hdr))
	}
	var buf bytes.Buffer
	buf.WriteString(objectMagic)
	buf.Write([]byte{kind, formatVersion, 0, 0})
	buf.Write(binary.BigEndian.AppendUint32(nil, uint32(len(hdr))))
	buf.Write(hdr)
	zw, err := zstd.NewWriter(&buf, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	bw := bufio.NewWriterSize(zw, 64<<10)
	if err := body(bw); err != nil {
		zw.Close()
		return nil, err
	}
	if err := bw.Flush(); err != nil {
		zw.Close()
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(buf.Bytes())
	buf.Write(sum[:])
	return buf.Bytes(), nil
}

// decodeObject checks a backup object whole (framing, SHA-256, header)
// and calls body with its decompressed body, bounded to maxBody bytes.
// want names the vcluster the caller expects ("" name or id: any).
func decodeObject(raw []byte, kind byte, want backupKey, maxBody int64, body func(r *bufio.Reader, h BackupHeader) error) (BackupHeader, error) {
	var h BackupHeader
	if len(raw) < fixedHeader+trailerSize {
		return h, badBackup("object of %d bytes", len(raw))
	}
	if string(raw[:4]) != objectMagic {
		return h, badBackup("magic %q", raw[:4])
	}
	if raw[4] != kind {
		return h, badBackup("kind %q, want %q", raw[4], kind)
	}
	if raw[5] != formatVersion {
		return h, badBackup("format version %d, this build reads %d", raw[5], formatVersion)
	}
	if raw[6] != 0 || raw[7] != 0 {
		return h, badBackup("reserved bytes %x", raw[6:8])
	}
	payload := raw[:len(raw)-trailerSize]
	if sum := sha256.Sum256(payload); !bytes.Equal(sum[:], raw[len(payload):]) {
		return h, badBackup("SHA-256 mismatch")
	}
	hlen := binary.BigEndian.Uint32(raw[8:12])
	if hlen > maxHeaderBytes || int64(hlen) > int64(len(payload)-fixedHeader) {
		return h, badBackup("header of %d bytes", hlen)
	}
	if err := remote.Unmarshal(payload[fixedHeader:fixedHeader+int(hlen)], &h); err != nil {
		return h, badBackup("header: %v", err)
	}
	if err := h.check(kind); err != nil {
		return h, err
	}
	if (want.name != "" && h.VCluster != want.name) || (want.id != "" && h.ID != want.id) {
		return h, badBackup("object of %s/%s, want %s/%s", h.VCluster, h.ID, want.name, want.id)
	}
	if want.kind != 0 && (h.First != want.first || h.Last != want.last) {
		return h, badBackup("object holds %d..%d, its key says %d..%d", h.First, h.Last, want.first, want.last)
	}
	zr, err := zstd.NewReader(bytes.NewReader(payload[fixedHeader+int(hlen):]),
		zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(maxBody)), zstd.WithDecoderMaxWindow(8<<20))
	if err != nil {
		return h, err
	}
	defer zr.Close()
	lr := &io.LimitedReader{R: zr, N: maxBody + 1}
	br := bufio.NewReaderSize(lr, 64<<10)
	if err := body(br, h); err != nil {
		return h, err
	}
	if _, err := br.ReadByte(); err != io.EOF {
		if err == nil {
			return h, badBackup("bytes after the body")
		}
		return h, badBackup("body: %v", err)
	}
	if lr.N <= 0 {
		return h, badBackup("body over %d bytes", maxBody)
	}
	return h, nil
}

// readChunk reads a uvarint length (at most max) and that many bytes into
// buf's storage.
func readChunk(r *bufio.Reader, max int, buf []byte) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, badBackup("length: %v", unexpected(err))
	}
	if n > uint64(max) {
		return nil, badBackup("length %d over %d", n, max)
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, badBackup("%d bytes: %v", n, unexpected(err))
	}
	return buf, nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Snapshot body: for each bucket, 0x01 | uvarint length | name, then for
// each key of it 0x02 | uvarint length | key | uvarint length | value;
// 0x00 ends the body.
const (
	recEnd    = 0
	recBucket = 1
	recPair   = 2
)

// encodeSnapshot writes the state of sn as a snapshot object.
func encodeSnapshot(h BackupHeader, sn *embedded.Snapshot) ([]byte, error) {
	h.First, h.Last = sn.AppliedSeq(), sn.AppliedSeq()
	// Count the keys first: the header precedes the body.
	h.Count = 0
	if err := sn.ForEach(func(_, _, _ []byte) error { h.Count++; return nil }); err != nil {
		return nil, err
	}
	return encodeObject(kindSnapshot, h, func(w *bufio.Writer) error {
		var last []byte
		var n int64
		err := sn.ForEach(func(bucket, key, value []byte) error {
			if last == nil || !bytes.Equal(bucket, last) {
				w.WriteByte(recBucket)
				writeChunk(w, bucket)
				last = append(last[:0], bucket...)
			}
			if len(key) > maxKeyBytes || len(value) > maxValueBytes {
				return fmt.Errorf("snapshot: key of %d bytes, value of %d in %q: over the format's bounds", len(key), len(value), bucket)
			}
			w.WriteByte(recPair)
			writeChunk(w, key)
			writeChunk(w, value)
			n++
			return nil
		})
		if err != nil {
			return err
		}
		if n != h.Count {
			return fmt.Errorf("snapshot: %d keys, counted %d", n, h.Count)
		}
		return w.WriteByte(recEnd)
	})
}

func writeChunk(w *bufio.Writer, b []byte) {
	w.Write(binary.AppendUvarint(nil, uint64(len(b))))
	w.Write(b)
}

// decodeSnapshot checks a snapshot object and calls put with every key of
// its state, bucket by bucket (buckets and keys each in increasing
// order: anything else is refused).
func decodeSnapshot(raw []byte, want backupKey, put func(bucket, key, value []byte) error) (BackupHeader, error) {
	if len(raw) > MaxSnapshotObject {
		return BackupHeader{}, badBackup("snapshot of %d bytes over %d", len(raw), MaxSnapshotObject)
	}
	return decodeObject(raw, kindSnapshot, want, maxSnapshotState, func(r *bufio.Reader, h BackupHeader) error {
		var bucket, key, prevKey, value []byte
		var n int64
		for {
			kind, err := r.ReadByte()
			if err != nil {
				return badBackup("snapshot body: %v", unexpected(err))
			}
			switch kind {
			case recEnd:
				if n != h.Count {
					return badBackup("snapshot of %d keys, header says %d", n, h.Count)
				}
				return nil
			case recBucket:
				prev := bytes.Clone(bucket)
				if bucket, err = readChunk(r, maxKeyBytes, bucket); err != nil {
					return err
				}
				if len(bucket) == 0 || (prev != nil && bytes.Compare(bucket, prev) <= 0) {
					return badBackup("bucket %q after %q", bucket, prev)
				}
				prevKey = prevKey[:0]
			case recPair:
				if bucket == nil {
					return badBackup("key before any bucket")
				}
				if n++; n > h.Count {
					return badBackup("snapshot over its %d keys", h.Count)
				}
				if key, err = readChunk(r, maxKeyBytes, key); err != nil {
					return err
				}
				if len(key) == 0 || (len(prevKey) > 0 && bytes.Compare(key, prevKey) <= 0) {
					return badBackup("key %q after %q in %q", key, prevKey, bucket)
				}
				if value, err = readChunk(r, maxValueBytes, value); err != nil {
					return err
				}
				if err := put(bucket, key, value); err != nil {
					return err
				}
				prevKey = append(prevKey[:0], key...)
			default:
				return badBackup("snapshot record kind %d", kind)
			}
		}
	})
}

// Log body: for each batch, seq uint64 BE | length uint32 BE | batch
// (as the journal row holds it), batches First..Last in order.

// encodeLog writes journal entries, consecutive, as a log object.
func encodeLog(h BackupHeader, entries []journal.Entry) ([]byte, error) {
	if len(entries) == 0 {
		return nil, errors.New("log object of no batches")
	}
	h.First, h.Last, h.Count = entries[0].Seq, entries[len(entries)-1].Seq, int64(len(entries))
	return encodeObject(kindLog, h, func(w *bufio.Writer) error {
		for i, e := range entries {
			if e.Seq != h.First+int64(i) {
				return fmt.Errorf("log object: batch #%d at position %d after #%d", e.Seq, i, h.First)
			}
			if len(e.Batch) > journal.MaxBatchBytes {
				return fmt.Errorf("log object: batch #%d of %d bytes", e.Seq, len(e.Batch))
			}
			var fixed [12]byte
			binary.BigEndian.PutUint64(fixed[:8], uint64(e.Seq))
			binary.BigEndian.PutUint32(fixed[8:], uint32(len(e.Batch)))
			w.Write(fixed[:])
			w.Write(e.Batch)
		}
		return nil
	})
}

// decodeLog checks a log object and calls fn with each of its batches in
// order. The Entry's Batch is valid only during the call.
func decodeLog(raw []byte, want backupKey, fn func(journal.Entry) error) (BackupHeader, error) {
	if len(raw) > MaxLogObject {
		return BackupHeader{}, badBackup("log object of %d bytes over %d", len(raw), MaxLogObject)
	}
	return decodeObject(raw, kindLog, want, maxLogBody, func(r *bufio.Reader, h BackupHeader) error {
		var buf []byte
		for seq := h.First; seq <= h.Last; seq++ {
			var fixed [12]byte
			if _, err := io.ReadFull(r, fixed[:]); err != nil {
				return badBackup("log batch #%d: %v", seq, unexpected(err))
			}
			if got := int64(binary.BigEndian.Uint64(fixed[:8])); got != seq {
				return badBackup("log batch #%d where #%d belongs", got, seq)
			}
			n := binary.BigEndian.Uint32(fixed[8:])
			if n > journal.MaxBatchBytes {
				return badBackup("log batch #%d of %d bytes", seq, n)
			}
			if cap(buf) < int(n) {
				buf = make([]byte, n)
			}
			buf = buf[:n]
			if _, err := io.ReadFull(r, buf); err != nil {
				return badBackup("log batch #%d: %v", seq, unexpected(err))
			}
			if err := fn(journal.Entry{Seq: seq, Batch: buf}); err != nil {
				return err
			}
		}
		return nil
	})
}
