package coordinator

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/floe-io/floe/internal/groups"
	"github.com/floe-io/floe/internal/groups/consumer"
)

// ConsumerHeartbeat handles a ConsumerGroupHeartbeat (KIP-848). An empty
// classic group (or one that never existed) becomes a consumer group; a
// classic group with members is upgraded when a member joins and the
// migration policy allows it (upgrade), else GROUP_ID_NOT_FOUND. The response is
// returned only once any change it reports is in the store, so that a
// coordinator taking the group over knows every epoch and partition a
// member was told about.
func (c *Coordinator) ConsumerHeartbeat(ctx context.Context, group string, r consumer.HeartbeatRequest) consumer.HeartbeatResponse {
	fail := func(code int16, msg string) consumer.HeartbeatResponse {
		return consumer.HeartbeatResponse{Err: code, ErrMessage: msg, MemberID: r.MemberID, MemberEpoch: r.MemberEpoch}
	}
	if !c.opts.Owns(group) {
		return fail(kerr.NotCoordinator.Code, "")
	}
	// The topics are read before the group's turn is taken: no I/O but
	// the group's own save happens in its turn.
	img, err := c.image(ctx)
	if err != nil {
		return fail(errCode(err), "")
	}
	e, err := c.lock(ctx, group)
	if err != nil {
		return fail(errCode(err), "")
	}
	defer c.unlock(e)
	if e.cg == nil {
		switch {
		case e.g.Idle() || e.g.Len() == 0: // no members (pending ones are not)
			if e.stored {
				c.log.Info("empty classic group becomes a consumer group", "group", group)
			}
			e.g, e.cg = nil, consumer.New(group, c.opts.Consumer, newConsumerMemberID)
		case r.MemberEpoch != 0:
			// Only a joining member upgrades a group (Kafka creates or
			// converts groups for epoch 0 alone).
			return fail(kerr.GroupIDNotFound.Code, "group "+group+" is not a consumer group")
		default:
			if code, msg := c.upgrade(e, img); code != 0 {
				return fail(code, msg)
			}
		}
	}
	resp, eff := e.cg.Heartbeat(c.opts.Now(), img, r)
	c.applyConsumer(e, eff)
	if e.dead {
		return fail(kerr.NotCoordinator.Code, "")
	}
	return resp
}

// upgrade converts a classic group with members into a consumer group
// (KIP-848's online upgrade) when a ConsumerGroupHeartbeat joins it, as
// Kafka does: only if group.consumer.migration.policy allows upgrades,
// the group uses the consumer protocol type and fits in
// group.consumer.max.size, else GROUP_ID_NOT_FOUND. Requests waiting in
// a classic rebalance are answered REBALANCE_IN_PROGRESS: their members
// rejoin, now as classic members of the consumer group. The new group is
// saved with the joining member's heartbeat. e is locked.
func (c *Coordinator) upgrade(e *entry, img consumer.Image) (int16, string) {
	notFound := func(why string) (int16, string) {
		c.log.Info("classic group not upgraded to a consumer group: "+why, "group", e.name)
		return kerr.GroupIDNotFound.Code, "Group " + e.name + " is not a consumer group (" + why + ")."
	}
	switch max := c.opts.Consumer.MaxSize; {
	case !c.opts.Consumer.MigrationPolicy.UpgradeEnabled():
		return notFound("online upgrade is disabled")
	case e.g.ProtocolType() != consumer.Type:
		return notFound("the group does not use the consumer protocol type")
	case max > 0 && e.g.Len() > max:
		return notFound("the group is larger than group.consumer.max.size")
	}
	cg, err := consumer.FromClassic(e.name, c.opts.Consumer, newConsumerMemberID, e.g.Snapshot(), img, c.opts.Now())
	if err != nil {
		c.log.Warn("classic group not upgraded to a consumer group", "group", e.name, "err", err)
		return kerr.GroupIDNotFound.Code, "Cannot upgrade the classic group " + e.name + ": malformed consumer protocol metadata."
	}
	for _, r := range e.g.Kill(kerr.RebalanceInProgress.Code).Replies {
		c.deliver(e, r)
	}
	c.log.Info("classic group upgraded to a consumer group", "group", e.name, "epoch", cg.Epoch(), "members", cg.Len())
	e.g, e.cg = nil, cg
	c.metrics.migrations.WithLabelValues("upgrade").Inc()
	return 0, ""
}

// applyConsumer carries out a consumer group's effects with e locked:
// the downgrade first (the classic group is what is saved), then the
// save.
func (c *Coordinator) applyConsumer(e *entry, eff consumer.Effects) {
	if eff.Downgrade {
		c.downgrade(e)
	}
	c.apply(e, groups.Effects{Persist: eff.Persist || eff.Downgrade})
}

// downgrade converts a consumer group whose members all use the classic
// protocol back into a classic group in PreparingRebalance (KIP-848's
// online downgrade): the members are told to rejoin by their heartbeats
// and the classic rebalance assigns again. e is locked.
func (c *Coordinator) downgrade(e *entry) {
	snap := e.cg.ToClassic()
	g, err := groups.Restore(e.name, c.opts.Groups, newMemberID, snap, c.opts.Now())
	if err != nil {
		c.log.Warn("consumer group not downgraded to a classic group", "group", e.name, "err", err)
		return
	}
	c.log.Info("consumer group downgraded to a classic group", "group", e.name, "generation", g.Generation(), "members", g.Len())
	e.cg, e.g = nil, g
	c.metrics.migrations.WithLabelValues("downgrade").Inc()
}

// image reads the cluster's topics for the consumer groups' assignors,
// with no lock held.
func (c *Coordinator) image(ctx context.Context) (consumer.Image, error) {
	topics, err := c.store.Topics(ctx)
	if err != nil {
		return consumer.Image{}, err
	}
	image := make([]consumer.Topic, len(topics))
	for i, t := range topics {
		image[i] = consumer.Topic{ID: consumer.TopicID(t.ID), Name: t.Name, Partitions: t.Partitions}
	}
	img := consumer.NewImage(image)
	if c.opts.Racks != nil {
		img.Racks = c.opts.Racks()
	}
	return img, nil
}

// ValidateFetch checks the member id and epoch of an OffsetFetch v9+
// against a consumer group (STALE_MEMBER_EPOCH, UNKNOWN_MEMBER_ID).
// Classic groups ignore them, as Kafka does.
func (c *Coordinator) ValidateFetch(ctx context.Context, group string, memberID *string, epoch int32) int16 {
	e, err := c.lock(ctx, group)
	if err != nil {
		return errCode(err)
	}
	defer c.unlock(e)
	if e.cg == nil {
		return 0
	}
	return e.cg.ValidateFetch(memberID, epoch)
}

// DescribeConsumer describes a consumer group for ConsumerGroupDescribe:
// GROUP_ID_NOT_FOUND for a classic group or one that does not exist.
func (c *Coordinator) DescribeConsumer(ctx context.Context, group string) (consumer.Description, int16) {
	e, err := c.lock(ctx, group)
	if err != nil {
		return consumer.Description{}, errCode(err)
	}
	defer c.unlock(e)
	if e.cg == nil || (!e.stored && e.cg.Idle()) {
		return consumer.Description{}, kerr.GroupIDNotFound.Code
	}
	return e.cg.Describe(), 0
}

// classicJoin handles a JoinGroup into a consumer group with members,
// answered at once (after the save). e is locked.
func (c *Coordinator) classicJoin(e *entry, img consumer.Image, r groups.JoinRequest) groups.JoinResponse {
	if g := c.opts.Groups; (g.MinSessionTimeout > 0 && r.SessionTimeout < g.MinSessionTimeout) ||
		(g.MaxSessionTimeout > 0 && r.SessionTimeout > g.MaxSessionTimeout) {
		return groups.JoinResponse{Err: kerr.InvalidSessionTimeout.Code, MemberID: r.MemberID, Generation: -1}
	}
	resp, eff := e.cg.ClassicJoin(c.opts.Now(), img, r)
	c.applyConsumer(e, eff)
	if e.dead {
		return groups.JoinResponse{Err: kerr.NotCoordinator.Code, MemberID: r.MemberID, Generation: -1}
	}
	return resp
}
