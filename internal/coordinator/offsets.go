package coordinator

import (
	"context"
	"errors"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/floe-io/floe/internal/groups"
	"github.com/floe-io/floe/internal/groups/consumer"
	"github.com/floe-io/floe/internal/metastore"
)

// CommitOffsets validates an OffsetCommit's member and generation (for
// consumer-protocol groups: member epoch) and, if they pass, stores the
// offsets. It returns once the store has them, with an error code that
// applies to every partition, or 0 and one code per offset (consumer
// groups refuse some partitions alone: STALE_MEMBER_EPOCH). version is
// the OffsetCommit version. names gives topic names for the lag metrics.
//
// GROUP_ID_NOT_FOUND is returned for a member commit (generation >= 0)
// into a group that does not exist; OffsetCommit before v9 answers it as
// ILLEGAL_GENERATION.
func (c *Coordinator) CommitOffsets(ctx context.Context, group, memberID, instanceID string, generation int32, version int16,
	offsets []metastore.CommittedOffset, names map[metastore.TopicID]string) (int16, []int16) {
	e, err := c.lock(ctx, group)
	if err != nil {
		return errCode(err), nil
	}
	defer c.unlock(e)
	if !e.stored && e.empty() && generation >= 0 {
		return kerr.GroupIDNotFound.Code, nil
	}
	codes := make([]int16, len(offsets))
	if e.cg != nil {
		tps := make([]consumer.TP, len(offsets))
		for i, o := range offsets {
			tps[i] = consumer.TP{Topic: consumer.TopicID(o.TopicID), Partition: o.Partition}
		}
		var code int16
		if code, codes = e.cg.ValidateCommit(memberID, generation, version, tps); code != 0 {
			return code, nil
		}
		accepted := offsets[:0:0]
		for i, o := range offsets {
			if codes[i] == 0 {
				accepted = append(accepted, o)
			}
		}
		offsets = accepted
	} else {
		code := e.g.ValidateCommit(c.opts.Now(), memberID, instanceID, generation)
		c.arm(e)
		if code != 0 {
			return code, nil
		}
	}
	if code := c.storeOffsets(ctx, e, generation, offsets, names); code != 0 {
		return code, nil
	}
	return 0, codes
}

// storeOffsets writes validated offsets, e locked; the store is called
// outside e.mu, with the group's turn held.
func (c *Coordinator) storeOffsets(ctx context.Context, e *entry, generation int32,
	offsets []metastore.CommittedOffset, names map[metastore.TopicID]string) int16 {
	group := e.name
	if len(offsets) == 0 {
		return 0
	}
	if generation >= 0 && e.version > 0 {
		// Fence a coordinator that lost the group: if another agent
		// saved the group since we loaded it, this generation is stale.
		var (
			rec   metastore.Group
			found bool
			err   error
		)
		e.outside(func() { rec, found, err = c.store.LoadGroup(ctx, group) })
		if err != nil {
			return errCode(err)
		}
		if !found || rec.Version != e.version {
			c.log.Warn("group changed by another coordinator; giving it up", "group", group)
			c.kill(e, kerr.NotCoordinator.Code, groups.Effects{})
			return kerr.NotCoordinator.Code
		}
	}
	var err error
	e.outside(func() { err = c.store.CommitOffsets(ctx, group, offsets) })
	if err != nil {
		if errors.Is(err, metastore.ErrUnknownTopicOrPartition) {
			return kerr.UnknownTopicOrPartition.Code
		}
		c.log.Warn("commit offsets failed", "group", group, "err", err)
		return errCode(err)
	}
	e.stored = true
	e.outside(func() {
		for _, o := range offsets {
			c.metrics.committedOffset(ctx, c.store, group, names[o.TopicID], o)
		}
	})
	return 0
}

// FetchOffsets returns a group's committed offsets (none for an unknown
// group).
func (c *Coordinator) FetchOffsets(ctx context.Context, group string) ([]metastore.CommittedOffset, int16) {
	if !c.opts.Owns(group) {
		return nil, kerr.NotCoordinator.Code
	}
	offs, err := c.store.FetchOffsets(ctx, group)
	if err != nil {
		return nil, errCode(err)
	}
	return offs, 0
}

// Group types, as ListGroups v5+ names them (KIP-848).
const (
	TypeClassic  = "classic"
	TypeConsumer = consumer.Type
)

// Description is a group as DescribeGroups shows it.
type Description struct {
	Exists       bool
	Type         string // TypeClassic or TypeConsumer
	State        string // Kafka's state name
	Generation   int32  // the group epoch for consumer groups
	ProtocolType string
	Protocol     string // "" unless Stable; the assignor for consumer groups
	Members      []groups.MemberInfo
	// Consumer describes a consumer-protocol group (Members is empty).
	Consumer *consumer.Description
}

// Describe describes a group. A group with neither a record, members nor
// offsets does not exist (Kafka reports it as Dead).
func (c *Coordinator) Describe(ctx context.Context, group string) (Description, int16) {
	e, err := c.lock(ctx, group)
	if err != nil {
		return Description{}, errCode(err)
	}
	defer c.unlock(e)
	var d Description
	if e.cg != nil {
		cd := e.cg.Describe()
		d = Description{
			Exists: true, Type: TypeConsumer, State: cd.State.String(), Generation: cd.Epoch,
			ProtocolType: consumer.Type, Protocol: cd.Assignor, Consumer: &cd,
		}
	} else {
		d = Description{
			Exists: true, Type: TypeClassic, State: e.g.State().String(), Generation: e.g.Generation(),
			ProtocolType: e.g.ProtocolType(), Members: e.g.Members(),
		}
		if e.g.State() == groups.Stable {
			d.Protocol = e.g.Protocol()
		}
	}
	if !e.stored && e.members() == 0 {
		var offs []metastore.CommittedOffset
		e.outside(func() { offs, err = c.store.FetchOffsets(ctx, group) })
		if err != nil {
			return Description{}, errCode(err)
		}
		if len(offs) == 0 {
			d.Exists, d.State = false, groups.Dead.String()
		}
	}
	return d, 0
}

// View calls fn with a classic group's turn held, for reads that need
// the state machine itself; consumer-protocol groups answer
// INCONSISTENT_GROUP_PROTOCOL. fn must not change the group.
func (c *Coordinator) View(ctx context.Context, group string, fn func(g *groups.Group)) int16 {
	e, err := c.lock(ctx, group)
	if err != nil {
		return errCode(err)
	}
	defer c.unlock(e)
	if e.g == nil {
		return kerr.InconsistentGroupProtocol.Code
	}
	e.outside(func() { fn(e.g) })
	return 0
}

// Summary is a group as ListGroups shows it.
type Summary struct {
	Name         string
	Type         string // TypeClassic or TypeConsumer
	ProtocolType string
	State        string // Kafka's state name
}

// List lists the groups this agent coordinates: those in the store and
// those only in memory so far (a first rebalance in progress).
func (c *Coordinator) List(ctx context.Context) ([]Summary, error) {
	stored, err := c.store.ListGroups(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	entries := make([]*entry, 0, len(c.entries))
	for _, e := range c.entries {
		entries = append(entries, e)
	}
	c.mu.Unlock()
	byName := map[string]Summary{}
	for _, e := range entries {
		// A group that moved to another agent is listed by that agent
		// only, also before the sweep drops it here. Owns reads the
		// membership's lock: not under e.mu.
		owned := c.opts.Owns(e.name)
		e.mu.Lock()
		switch {
		case e.dead || !owned || (e.g == nil && e.cg == nil) || (e.members() == 0 && !e.stored):
		case e.cg != nil:
			byName[e.name] = Summary{Name: e.name, Type: TypeConsumer, ProtocolType: consumer.Type, State: e.cg.State().String()}
		default:
			byName[e.name] = Summary{Name: e.name, Type: TypeClassic, ProtocolType: e.g.ProtocolType(), State: e.g.State().String()}
		}
		e.mu.Unlock()
	}
	for _, s := range stored {
		if _, inMemory := byName[s.Name]; inMemory || !c.opts.Owns(s.Name) {
			continue
		}
		sum := Summary{Name: s.Name, Type: TypeClassic, ProtocolType: s.ProtocolType, State: s.State}
		if s.State == "" {
			sum.State = groups.Empty.String()
		}
		// The record says which protocol the group speaks; a group with
		// offsets only has none and is classic.
		if rec, found, err := c.store.LoadGroup(ctx, s.Name); err == nil && found && consumer.IsSnapshot(rec.Data) {
			sum.Type = TypeConsumer
		}
		byName[s.Name] = sum
	}
	out := make([]Summary, 0, len(byName))
	for _, s := range byName {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b Summary) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return out, nil
}

// DeleteGroup deletes a group without members, with its offsets.
func (c *Coordinator) DeleteGroup(ctx context.Context, group string) int16 {
	e, err := c.lock(ctx, group)
	if err != nil {
		return errCode(err)
	}
	defer c.unlock(e)
	if !e.empty() {
		return kerr.NonEmptyGroup.Code
	}
	e.outside(func() { err = c.store.DeleteGroup(ctx, group) })
	if err != nil {
		if errors.Is(err, metastore.ErrUnknownGroup) {
			return kerr.GroupIDNotFound.Code
		}
		return errCode(err)
	}
	c.kill(e, kerr.GroupIDNotFound.Code, groups.Effects{})
	c.log.Info("group deleted", "group", group)
	return 0
}

// DeleteOffsets runs OffsetDelete: decide (with the group's turn held,
// so the group does not change, but not its mutex: decide may read the
// store) returns the partitions whose offsets may go and a group-level
// error code; the chosen offsets are deleted before DeleteOffsets
// returns. decide gets the group's state machine: g for a classic group,
// cg for a consumer group (the other is nil); it must not change it.
func (c *Coordinator) DeleteOffsets(ctx context.Context, group string,
	decide func(g *groups.Group, cg *consumer.Group, exists bool) ([]metastore.TopicPartition, int16)) int16 {
	e, err := c.lock(ctx, group)
	if err != nil {
		return errCode(err)
	}
	defer c.unlock(e)
	exists := e.stored || e.members() > 0
	if !exists {
		var offs []metastore.CommittedOffset
		e.outside(func() { offs, err = c.store.FetchOffsets(ctx, group) })
		if err != nil {
			return errCode(err)
		}
		exists = len(offs) > 0
	}
	var (
		parts []metastore.TopicPartition
		code  int16
	)
	e.outside(func() { parts, code = decide(e.g, e.cg, exists) })
	if code != 0 || len(parts) == 0 {
		return code
	}
	e.outside(func() { err = c.store.DeleteOffsets(ctx, group, parts) })
	if err != nil {
		return errCode(err)
	}
	// The next lag scan restores the series of the offsets that remain.
	c.metrics.forget(group)
	return 0
}
