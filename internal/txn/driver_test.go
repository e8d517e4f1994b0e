package txn_test

import (
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/txn"
)

// store is the tests' metadata store for one transactional id: a record
// compared and swapped on its version, and a producer id counter. run
// drives decisions as the runtime (internal/txncoord) does: allocate a
// producer id when asked, write, and on a version conflict load the
// record again and decide again.
type store struct {
	rec     metastore.Txn
	found   bool
	nextPID int64
	start   time.Time
	// ended records every end applied, for the property test.
	ended []txn.Ending
	// onWrite, if set, sees every write the store accepts, with the
	// record it replaces and the decision's time.
	onWrite func(prev metastore.Txn, prevFound bool, st step)
}

func newStore(start time.Time) *store { return &store{nextPID: 1000, start: start} }

// decision decides a request on a record; resp describes the answer.
type decision func(cur metastore.Txn, found bool, in txn.Input) (resp string, eff txn.Effect)

// step is one write a decision asked for, taken against the record it saw.
type step struct {
	eff   txn.Effect
	resp  string
	in    txn.Input
	cur   metastore.Txn
	found bool
}

// decide takes a decision on the stored record as it is now, allocating a
// producer id if needed, and returns the write it wants (not applied).
func (s *store) decide(now time.Time, d decision, out *[]string) step {
	in := txn.Input{Now: now, NewProducerID: -1}
	for {
		resp, eff := d(s.rec, s.found, in)
		if eff.NeedProducerID {
			in.NewProducerID = s.nextPID
			s.nextPID++
			*out = append(*out, fmt.Sprintf("allocate producer id %d", in.NewProducerID))
			continue
		}
		return step{eff: eff, resp: resp, in: in, cur: s.rec, found: s.found}
	}
}

// apply writes st and, like the runtime, decides again after a conflict
// or a write that was not the request's own; it returns the answer.
func (s *store) apply(now time.Time, d decision, st step, out *[]string) string {
	for range 10 {
		conflict := false
		prev, prevFound := s.rec, s.found
		switch {
		case st.eff.Save != nil:
			if !s.write(*st.eff.Save) {
				conflict = true
				break
			}
			s.wrote(prev, prevFound, st)
			*out = append(*out, fmt.Sprintf("save v%d", s.rec.Version))
		case st.eff.End != nil:
			e := st.eff.End
			if !s.write(e.Next) {
				conflict = true
				break
			}
			s.ended = append(s.ended, *e)
			s.wrote(prev, prevFound, st)
			*out = append(*out, fmt.Sprintf("end %s: %s producer %d marker epoch %d markers %s groups %s, v%d",
				e.Reason, commitWord(e.Commit), e.ProducerID, e.MarkerEpoch, parts(e.Partitions), groups(e.Groups), s.rec.Version))
		}
		switch {
		case conflict:
			*out = append(*out, fmt.Sprintf("conflict: decided on v%d, stored v%d; decide again", st.cur.Version, s.rec.Version))
		case st.eff.Again:
			*out = append(*out, "decide the request again")
		default:
			return st.resp
		}
		st = s.decide(now, d, out)
	}
	return "gave up after 10 conflicts"
}

func (s *store) wrote(prev metastore.Txn, prevFound bool, st step) {
	if s.onWrite != nil {
		s.onWrite(prev, prevFound, st)
	}
}

// write stores next if the version it replaces is the stored one.
func (s *store) write(next metastore.Txn) bool {
	if s.found && next.Version != s.rec.Version || !s.found && next.Version != 0 {
		return false
	}
	next.Version++
	s.rec, s.found = next, true
	return true
}

func commitWord(commit bool) string {
	if commit {
		return "COMMIT"
	}
	return "ABORT"
}

func codeName(c int16) string {
	if c == 0 {
		return "OK"
	}
	if e, ok := kerr.ErrorForCode(c).(*kerr.Error); ok {
		return e.Message
	}
	return fmt.Sprintf("code %d", c)
}

// tp names partition p of topic letter t ("a0": topic a, partition 0);
// the topic id is the letter followed by zeros.
func tp(s string) metastore.TopicPartition {
	var id metastore.TopicID
	id[0] = s[0]
	var p int32
	fmt.Sscanf(s[1:], "%d", &p)
	return metastore.TopicPartition{TopicID: id, Partition: p}
}

func tpName(p metastore.TopicPartition) string { return fmt.Sprintf("%c%d", p.TopicID[0], p.Partition) }

func parts(ps []metastore.TopicPartition) string {
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = tpName(p)
	}
	return "[" + strings.Join(names, " ") + "]"
}

func groups(gs []string) string { return "[" + strings.Join(gs, " ") + "]" }

func (s *store) describe() string {
	if !s.found {
		return "no record"
	}
	r := s.rec
	str := fmt.Sprintf("%s producer %d epoch %d last %d/%d timeout %s", r.State, r.ProducerID, r.ProducerEpoch,
		r.LastProducerID, r.LastProducerEpoch, time.Duration(r.TimeoutMs)*time.Millisecond)
	if r.State == metastore.TxnOngoing {
		str += fmt.Sprintf(" partitions %s groups %s started +%s", parts(r.Partitions), groups(r.Groups), r.StartedAt.Sub(s.start))
	}
	return str + fmt.Sprintf(" v%d", r.Version)
}
