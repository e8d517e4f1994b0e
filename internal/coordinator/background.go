package coordinator

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/floe-io/floe/internal/groups"
	"github.com/floe-io/floe/internal/metastore"
)

// run is the coordinator's background work: refreshing lag gauges,
// dropping groups this agent no longer owns (or that sit idle), and
// expiring the offsets of groups without members.
func (c *Coordinator) run() {
	defer close(c.done)
	lag := time.NewTicker(c.opts.LagInterval)
	defer lag.Stop()
	retention := time.NewTicker(c.opts.RetentionCheckInterval)
	defer retention.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-c.stop
		cancel()
	}()
	for {
		select {
		case <-c.stop:
			return
		case <-lag.C:
			c.sweep(ctx)
			c.refreshLag(ctx)
		case <-retention.C:
			c.ExpireOffsets(ctx)
		}
	}
}

func (c *Coordinator) snapshotEntries() []*entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*entry, 0, len(c.entries))
	for _, e := range c.entries {
		out = append(out, e)
	}
	return out
}

// sweep drops the groups this agent no longer owns, answering their
// members NOT_COORDINATOR so that they find the new coordinator, and
// forgets idle empty groups (the store has all there is to know). It
// waits for each group's turn, so a group busy with its store is swept
// once that is done.
func (c *Coordinator) sweep(ctx context.Context) {
	for _, e := range c.snapshotEntries() {
		if e.takeTurn(ctx) != nil {
			return
		}
		owned := c.opts.Owns(e.name) // reads the membership's lock: not under e.mu
		e.mu.Lock()
		switch {
		case e.dead:
		case !owned:
			c.log.Info("group moved to another coordinator", "group", e.name)
			c.kill(e, kerr.NotCoordinator.Code, groups.Effects{})
		case e.idle():
			e.dead = true
			if e.timer != nil {
				e.timer.Stop()
			}
			c.forget(e)
		default:
			c.metrics.members.WithLabelValues(label(e.name)).Set(float64(e.members()))
		}
		c.unlock(e)
	}
}

// refreshLag re-reads committed offsets and high watermarks of every
// group this agent owns.
func (c *Coordinator) refreshLag(ctx context.Context) {
	summaries, err := c.store.ListGroups(ctx)
	if err != nil {
		if ctx.Err() == nil {
			c.log.Warn("lag scan: list groups", "err", err)
		}
		return
	}
	topics, err := c.store.Topics(ctx)
	if err != nil {
		c.log.Warn("lag scan: topics", "err", err)
		return
	}
	names := make(map[metastore.TopicID]string, len(topics))
	for _, t := range topics {
		names[t.ID] = t.Name
	}
	for _, s := range summaries {
		if !c.opts.Owns(s.Name) {
			c.metrics.forget(s.Name)
			continue
		}
		offs, err := c.store.FetchOffsets(ctx, s.Name)
		if err != nil {
			continue
		}
		c.metrics.forget(s.Name)
		for _, o := range offs {
			c.metrics.committedOffset(ctx, c.store, s.Name, names[o.TopicID], o)
		}
	}
}

// ExpireOffsets applies offsets.retention.minutes: in every group this
// agent owns that has no members, offsets committed longer ago than the
// retention are deleted; a group left with neither offsets nor members
// is deleted. It runs every RetentionCheckInterval.
func (c *Coordinator) ExpireOffsets(ctx context.Context) {
	summaries, err := c.store.ListGroups(ctx)
	if err != nil {
		c.log.Warn("offset retention: list groups", "err", err)
		return
	}
	olderThan := c.opts.Now().Add(-c.opts.OffsetsRetention)
	for _, s := range summaries {
		if ctx.Err() != nil {
			return
		}
		if !c.opts.Owns(s.Name) {
			continue
		}
		e, err := c.lock(ctx, s.Name)
		if err != nil {
			continue
		}
		if e.empty() {
			var n int
			e.outside(func() { n, err = c.store.ExpireOffsets(ctx, s.Name, olderThan) })
			switch {
			case err != nil:
				c.log.Warn("offset retention", "group", s.Name, "err", err)
			case n > 0:
				c.log.Info("expired committed offsets", "group", s.Name, "offsets", n, "before", olderThan)
				c.metrics.forget(s.Name)
				var left []metastore.CommittedOffset
				e.outside(func() { left, err = c.store.FetchOffsets(ctx, s.Name) })
				if err == nil && len(left) == 0 && e.idle() {
					e.outside(func() { err = c.store.DeleteGroup(ctx, s.Name) })
					if err == nil || errors.Is(err, metastore.ErrUnknownGroup) {
						c.kill(e, kerr.GroupIDNotFound.Code, groups.Effects{})
						if err == nil {
							c.log.Info("group deleted", "group", s.Name, "reason", "no members and no committed offsets left")
						}
					}
				}
			}
		}
		c.unlock(e)
	}
}
