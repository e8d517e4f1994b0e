package control

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/floe-io/floe/internal/journal"
	"github.com/floe-io/floe/internal/metastore/embedded"
	"github.com/floe-io/floe/internal/objstore"
)

// Crash stops s as a dying process would: without releasing its leases,
// which expire by themselves, nor uploading the batches its backups
// hold (the next leader finds them in the journal).
func Crash(s *Server) {
	s.mu.Lock()
	for _, v := range s.vclusters {
		v.leaseLost.Store(true)
	}
	s.mu.Unlock()
	s.close(false)
}

// HookAppends sets functions called before each journal append (its
// error fails the append), when a batch's transaction is prepared, and
// when a batch applied waits for its appends, for the test, and removes
// them after.
func HookAppends(t interface{ Cleanup(func()) }, before func(vcluster string) error, applied, awaiting func(vcluster string)) {
	testHooks.Store(&appendHooks{before: before, applied: applied, awaiting: awaiting})
	t.Cleanup(func() { testHooks.Store(nil) })
}

// SetMaxPendingBytes sets the bound on the batches a vcluster holds for
// the bucket, for the test, and puts it back after.
func SetMaxPendingBytes(t interface{ Cleanup(func()) }, n int64) {
	old := maxPendingBytes
	maxPendingBytes = n
	t.Cleanup(func() { maxPendingBytes = old })
}

// StandbyState returns the state of s's warm standby of name and the
// sequence number of its last applied batch (ok false: no standby with a
// state).
func StandbyState(s *Server, name string) (st *embedded.Store, seq int64, ok bool) {
	s.mu.Lock()
	sb := s.standbys[name]
	s.mu.Unlock()
	if sb == nil {
		return nil, 0, false
	}
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if sb.done {
		return nil, 0, false
	}
	return sb.v.store, sb.seq, true
}

// PauseStandby stops (or restarts) the polls of s's warm standby of
// name; once it returns, no poll is running. It reports whether there
// is one.
func PauseStandby(s *Server, name string, paused bool) bool {
	s.mu.Lock()
	sb := s.standbys[name]
	s.mu.Unlock()
	if sb == nil {
		return false
	}
	sb.paused.Store(paused)
	sb.mu.Lock() // a poll in progress ends first
	sb.mu.Unlock()
	return true
}

// LeaderState returns the state of the vcluster s leads.
func LeaderState(s *Server, name string) (*embedded.Store, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.vclusters[name]
	if v == nil {
		return nil, false
	}
	return v.store, true
}

// SetStandbyPollRows sets the rows a standby's poll applies at most, for
// the test, and puts it back after.
func SetStandbyPollRows(t interface{ Cleanup(func()) }, n int64) {
	old := standbyPollRows
	standbyPollRows = n
	t.Cleanup(func() { standbyPollRows = old })
}

// PollStandby runs one poll of s's (paused) warm standby of name now.
func PollStandby(s *Server, name string) bool {
	s.mu.Lock()
	sb := s.standbys[name]
	s.mu.Unlock()
	if sb == nil {
		return false
	}
	ok, _ := sb.poll(context.Background())
	return ok
}

// BackupChain is what CheckBackupChain found.
type BackupChain struct {
	ID        string // the incarnation's
	Snapshots []int64
	Logs      [][2]int64 // first, last of each log object, by first
	// Reaches is the last batch the oldest snapshot at or after the
	// journal's base and the log objects after it cover without a gap
	// (so every newer snapshot's chain reaches it too).
	Reaches int64
	// Compared counts the batches of log objects compared with the
	// journal's rows (those it still holds).
	Compared int
}

// CheckBackupChain reads what the bucket holds of vcluster name's
// current incarnation and checks it against the journal: no two log
// objects hold the same batch, and every batch in them that the journal
// still holds is byte for byte its row.
func CheckBackupChain(ctx context.Context, bucket objstore.Bucket, j *journal.Journal, name string) (BackupChain, error) {
	var out BackupChain
	reg, err := j.VCluster(ctx, name)
	if err != nil {
		return out, err
	}
	out.ID = reg.ID
	keys, sizes, err := listBackups(ctx, bucket, name, reg.ID)
	if err != nil {
		return out, err
	}
	var logs []backupKey
	for _, k := range keys {
		if k.kind == kindSnapshot {
			out.Snapshots = append(out.Snapshots, k.last)
		} else {
			logs = append(logs, k)
		}
	}
	slices.Sort(out.Snapshots)
	slices.SortFunc(logs, func(x, y backupKey) int { return cmp.Compare(x.first, y.first) })
	if i := slices.IndexFunc(out.Snapshots, func(s int64) bool { return s >= reg.BaseSeq }); i >= 0 {
		out.Reaches = out.Snapshots[i]
	} else if reg.BaseSeq > 0 {
		return out, fmt.Errorf("no snapshot at or after the journal's base #%d: %v", reg.BaseSeq, out.Snapshots)
	}
	for i, k := range logs {
		out.Logs = append(out.Logs, [2]int64{k.first, k.last})
		if i > 0 && k.first <= logs[i-1].last {
			return out, fmt.Errorf("log objects #%d..#%d and #%d..#%d overlap", logs[i-1].first, logs[i-1].last, k.first, k.last)
		}
		if k.first <= out.Reaches+1 && k.last > out.Reaches {
			out.Reaches = k.last
		}
		rows := map[int64][]byte{}
		err := j.Read(ctx, name, max(k.first, reg.BaseSeq+1), func(e journal.Entry) error {
			if e.Seq > k.last {
				return errEnough
			}
			rows[e.Seq] = e.Batch
			return nil
		})
		if err != nil && !errors.Is(err, errEnough) {
			return out, err
		}
		raw, err := getBounded(ctx, bucket, logKey(name, reg.ID, k.first, k.last), sizes[k], MaxLogObject)
		if err != nil {
			return out, err
		}
		_, err = decodeLog(raw, k, func(e journal.Entry) error {
			row, ok := rows[e.Seq]
			if !ok {
				if e.Seq > reg.BaseSeq {
					return fmt.Errorf("batch #%d is in the bucket, not in the journal", e.Seq)
				}
				return nil // trimmed
			}
			if !bytes.Equal(row, e.Batch) {
				return fmt.Errorf("batch #%d in log object #%d..#%d differs from the journal's row", e.Seq, k.first, k.last)
			}
			out.Compared++
			return nil
		})
		if err != nil {
			return out, err
		}
	}
	return out, nil
}
