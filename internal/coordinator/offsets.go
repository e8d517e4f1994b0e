package coordinator

import (
	"context"
	"errors"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/floe-io/floe/internal/groups"
	"github.com/floe-io/floe/internal/metastore"
)

// CommitOffsets validates an OffsetCommit's member and generation and, if
// they pass, stores the offsets. It returns once the store has them (or
// an error code that applies to every partition). names gives topic names
// for the lag metrics.
//
// GROUP_ID_NOT_FOUND is returned for a member commit (generation >= 0)
// into a group that does not exist; OffsetCommit before v9 answers it as
// ILLEGAL_GENERATION.
func (c *Coordinator) CommitOffsets(ctx context.Context, group, memberID, instanceID string, generation int32,
	offsets []metastore.CommittedOffset, names map[metastore.TopicID]string) int16 {
	e, err := c.lock(ctx, group)
	if err != nil {
		return errCode(err)
	}
	defer e.mu.Unlock()
	if !e.stored && e.g.State() == groups.Empty && e.g.Len() == 0 && generation >= 0 {
		return kerr.GroupIDNotFound.Code
	}
	code := e.g.ValidateCommit(c.opts.Now(), memberID, instanceID, generation)
	c.arm(e)
	if code != 0 {
		return code
	}
	if len(offsets) == 0 {
		return 0
	}
	if generation >= 0 && e.version > 0 {
		// Fence a coordinator that lost the group: if another agent
		// saved the group since we loaded it, this generation is stale.
		rec, found, err := c.store.LoadGroup(ctx, group)
		if err != nil {
			return errCode(err)
		}
		if !found || rec.Version != e.version {
			c.log.Warn("group changed by another coordinator; giving it up", "group", group)
			c.kill(e, kerr.NotCoordinator.Code, groups.Effects{})
			return kerr.NotCoordinator.Code
		}
	}
	if err := c.store.CommitOffsets(ctx, group, offsets); err != nil {
		if errors.Is(err, metastore.ErrUnknownTopicOrPartition) {
			return kerr.UnknownTopicOrPartition.Code
		}
		c.log.Warn("commit offsets failed", "group", group, "err", err)
		return errCode(err)
	}
	e.stored = true
	for _, o := range offsets {
		c.metrics.committedOffset(ctx, c.store, group, names[o.TopicID], o)
	}
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

// Description is a group as DescribeGroups shows it.
type Description struct {
	Exists       bool
	State        groups.State
	Generation   int32
	ProtocolType string
	Protocol     string // "" unless Stable
	Members      []groups.MemberInfo
}

// Describe describes a group. A group with neither a record, members nor
// offsets does not exist (Kafka reports it as Dead).
func (c *Coordinator) Describe(ctx context.Context, group string) (Description, int16) {
	e, err := c.lock(ctx, group)
	if err != nil {
		return Description{}, errCode(err)
	}
	defer e.mu.Unlock()
	d := Description{
		Exists: true, State: e.g.State(), Generation: e.g.Generation(),
		ProtocolType: e.g.ProtocolType(), Members: e.g.Members(),
	}
	if d.State == groups.Stable {
		d.Protocol = e.g.Protocol()
	}
	if !e.stored && e.g.Len() == 0 {
		offs, err := c.store.FetchOffsets(ctx, group)
		if err != nil {
			return Description{}, errCode(err)
		}
		if len(offs) == 0 {
			d.Exists, d.State = false, groups.Dead
		}
	}
	return d, 0
}

// View calls fn with the group locked, for reads that need the state
// machine itself (OffsetDelete decodes the members' subscriptions).
func (c *Coordinator) View(ctx context.Context, group string, fn func(g *groups.Group)) int16 {
	e, err := c.lock(ctx, group)
	if err != nil {
		return errCode(err)
	}
	defer e.mu.Unlock()
	fn(e.g)
	return 0
}

// Summary is a group as ListGroups shows it.
type Summary struct {
	Name         string
	ProtocolType string
	State        groups.State
}

// List lists the groups this agent coordinates: those in the store and
// those only in memory so far (a first rebalance in progress).
func (c *Coordinator) List(ctx context.Context) ([]Summary, error) {
	stored, err := c.store.ListGroups(ctx)
	if err != nil {
		return nil, err
	}
	byName := map[string]Summary{}
	for _, s := range stored {
		if !c.opts.Owns(s.Name) {
			continue
		}
		st, ok := groups.ParseState(s.State)
		if !ok {
			st = groups.Empty
		}
		byName[s.Name] = Summary{Name: s.Name, ProtocolType: s.ProtocolType, State: st}
	}
	c.mu.Lock()
	entries := make([]*entry, 0, len(c.entries))
	for _, e := range c.entries {
		entries = append(entries, e)
	}
	c.mu.Unlock()
	for _, e := range entries {
		e.mu.Lock()
		if !e.dead && e.g != nil && (e.g.Len() > 0 || e.stored) {
			byName[e.name] = Summary{Name: e.name, ProtocolType: e.g.ProtocolType(), State: e.g.State()}
		}
		e.mu.Unlock()
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
	defer e.mu.Unlock()
	if e.g.Len() > 0 || e.g.State() != groups.Empty {
		return kerr.NonEmptyGroup.Code
	}
	if err := c.store.DeleteGroup(ctx, group); err != nil {
		if errors.Is(err, metastore.ErrUnknownGroup) {
			return kerr.GroupIDNotFound.Code
		}
		return errCode(err)
	}
	c.kill(e, kerr.GroupIDNotFound.Code, groups.Effects{})
	c.log.Info("group deleted", "group", group)
	return 0
}

// DeleteOffsets runs OffsetDelete: decide (with the group locked) returns
// the partitions whose offsets may go and a group-level error code; the
// chosen offsets are deleted before DeleteOffsets returns.
func (c *Coordinator) DeleteOffsets(ctx context.Context, group string,
	decide func(g *groups.Group, exists bool) ([]metastore.TopicPartition, int16)) int16 {
	e, err := c.lock(ctx, group)
	if err != nil {
		return errCode(err)
	}
	defer e.mu.Unlock()
	exists := e.stored || e.g.Len() > 0
	if !exists {
		offs, err := c.store.FetchOffsets(ctx, group)
		if err != nil {
			return errCode(err)
		}
		exists = len(offs) > 0
	}
	parts, code := decide(e.g, exists)
	if code != 0 || len(parts) == 0 {
		return code
	}
	if err := c.store.DeleteOffsets(ctx, group, parts); err != nil {
		return errCode(err)
	}
	// The next lag scan restores the series of the offsets that remain.
	c.metrics.forget(group)
	return 0
}
