package metastore

import (
	"fmt"
	"slices"
	"strings"
)

// Rules of ExtentReplacer shared by the backends, so that they decide
// alike; like package sequence, they do no I/O.

// ValidateReplacements checks what can be checked without the store: each
// replacement names Old and New extents in order, consecutive, and a
// partition at most once. It returns ErrInvalidReplacement (wrapped).
func ValidateReplacements(rs []PartitionReplacement) error {
	seen := map[TopicPartition]bool{}
	for i, r := range rs {
		tp := TopicPartition{r.TopicID, r.Partition}
		if seen[tp] {
			return fmt.Errorf("%w: replacement %d: partition %d named twice", ErrInvalidReplacement, i, r.Partition)
		}
		seen[tp] = true
		if err := validateReplacement(r); err != nil {
			return fmt.Errorf("%w: replacement %d (partition %d): %v", ErrInvalidReplacement, i, r.Partition, err)
		}
	}
	return nil
}

func validateReplacement(r PartitionReplacement) error {
	if len(r.Old) == 0 || len(r.New) == 0 {
		return fmt.Errorf("%d old and %d new extents; need at least one of each", len(r.Old), len(r.New))
	}
	for i, o := range r.Old {
		if o.Object == "" {
			return fmt.Errorf("old extent %d: empty object", i)
		}
		if i > 0 && o.BaseOffset <= r.Old[i-1].BaseOffset {
			return fmt.Errorf("old extents not in offset order at %d", i)
		}
	}
	if r.New[0].BaseOffset != r.Old[0].BaseOffset {
		return fmt.Errorf("new extents start at %d, old at %d", r.New[0].BaseOffset, r.Old[0].BaseOffset)
	}
	for _, m := range r.DropAborted {
		if m < r.New[0].BaseOffset || m >= r.New[len(r.New)-1].EndOffset {
			return fmt.Errorf("aborted entry at %d outside the replaced range [%d, %d)", m, r.New[0].BaseOffset, r.New[len(r.New)-1].EndOffset)
		}
	}
	for i, e := range r.New {
		switch {
		case e.TopicID != (TopicID{}) && e.TopicID != r.TopicID, e.TopicID != (TopicID{}) && e.Partition != r.Partition:
			return fmt.Errorf("new extent %d names another partition", i)
		case e.BaseOffset >= e.EndOffset:
			return fmt.Errorf("new extent %d: offsets [%d, %d)", i, e.BaseOffset, e.EndOffset)
		case e.Object == "":
			return fmt.Errorf("new extent %d: empty object", i)
		case e.ByteOffset < 0 || e.ByteLength <= 0 || e.ByteOffset+e.ByteLength > e.ObjectSize:
			return fmt.Errorf("new extent %d: bytes [%d, +%d) outside object of %d bytes", i, e.ByteOffset, e.ByteLength, e.ObjectSize)
		case i > 0 && e.BaseOffset != r.New[i-1].EndOffset:
			return fmt.Errorf("new extents %d and %d are not consecutive", i-1, i)
		}
	}
	return nil
}

// ResolveReplacement checks a validated replacement against stored, the
// partition's extents read in the replacing transaction from
// r.Old[0].BaseOffset onwards (at least len(r.Old) of them when they are
// there), and the partition's log start offset. conflict reports old
// extents that are missing or differ; err, new extents that do not end
// where the old ones do. It returns the new extents to insert, completed
// (partition, CommittedAt), and the old ones as stored. New extents that
// end at or below the log start are left out: retention would have
// dropped them.
func ResolveReplacement(r PartitionReplacement, stored []Extent, logStart int64) (newExtents, old []Extent, conflict bool, err error) {
	if len(stored) < len(r.Old) {
		return nil, nil, true, nil
	}
	for i, o := range r.Old {
		s := stored[i]
		if s.BaseOffset != o.BaseOffset || s.Object != o.Object {
			return nil, nil, true, nil
		}
		if i > 0 && stored[i-1].EndOffset != s.BaseOffset {
			return nil, nil, true, nil // a gap: not consecutive
		}
	}
	old = stored[:len(r.Old)]
	end := old[len(old)-1].EndOffset
	if last := r.New[len(r.New)-1].EndOffset; last != end {
		return nil, nil, false, fmt.Errorf("%w: partition %d: new extents end at %d, old at %d", ErrInvalidReplacement, r.Partition, last, end)
	}
	for _, e := range r.New {
		if e.EndOffset > logStart {
			newExtents = append(newExtents, e)
		}
	}
	for i := range newExtents {
		e := &newExtents[i]
		e.TopicID, e.Partition = r.TopicID, r.Partition
		if !e.CommittedAt.IsZero() {
			continue
		}
		for _, o := range old {
			if o.BaseOffset < e.EndOffset && e.BaseOffset < o.EndOffset && o.CommittedAt.After(e.CommittedAt) {
				e.CommittedAt = o.CommittedAt
			}
		}
	}
	return newExtents, old, false, nil
}

// ObjectRef is the net change of one object's reference count.
type ObjectRef struct {
	Key   string
	Size  int64 // from the extents that name it
	Delta int64 // extents added minus extents removed
}

// RefChanges sums how many extents of each object are removed and added,
// sorted by key (the order in which backends lock object records). Objects
// whose count does not change are left out.
func RefChanges(removed, added []Extent) []ObjectRef {
	t := RefTally{}
	for _, e := range removed {
		t.Remove(e)
	}
	for _, e := range added {
		t.Add(e)
	}
	return t.Changes()
}

// RefTally sums reference changes extent by extent, for a caller that
// walks more extents than it should hold at once (a topic's, deleted).
type RefTally map[string]*ObjectRef

func (t RefTally) ref(e Extent) *ObjectRef {
	r := t[e.Object]
	if r == nil {
		r = &ObjectRef{Key: e.Object, Size: e.ObjectSize}
		t[e.Object] = r
	}
	return r
}

// Remove counts e off its object.
func (t RefTally) Remove(e Extent) { t.ref(e).Delta-- }

// Add counts e on its object.
func (t RefTally) Add(e Extent) { t.ref(e).Delta++ }

// Changes are the sums, as RefChanges returns them.
func (t RefTally) Changes() []ObjectRef {
	out := make([]ObjectRef, 0, len(t))
	for _, r := range t {
		if r.Delta != 0 {
			out = append(out, *r)
		}
	}
	slices.SortFunc(out, func(a, b ObjectRef) int { return strings.Compare(a.Key, b.Key) })
	return out
}
