package coordinator

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/floe-io/floe/internal/groups"
	"github.com/floe-io/floe/internal/groups/consumer"
)

// ConsumerHeartbeat handles a ConsumerGroupHeartbeat (KIP-848). A classic
// group with members answers GROUP_ID_NOT_FOUND; an empty classic group
// (or one that never existed) becomes a consumer group. The response is
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
	topics, err := c.store.Topics(ctx)
	if err != nil {
		return fail(errCode(err), "")
	}
	image := make([]consumer.Topic, len(topics))
	for i, t := range topics {
		image[i] = consumer.Topic{ID: consumer.TopicID(t.ID), Name: t.Name, Partitions: t.Partitions}
	}
	e, err := c.lock(ctx, group)
	if err != nil {
		return fail(errCode(err), "")
	}
	defer c.unlock(e)
	if e.cg == nil {
		if !e.g.Idle() {
			return fail(kerr.GroupIDNotFound.Code, "group "+group+" is a classic group with members")
		}
		if e.stored {
			c.log.Info("empty classic group becomes a consumer group", "group", group)
		}
		e.g, e.cg = nil, consumer.New(group, c.opts.Consumer, newConsumerMemberID)
	}
	img := consumer.NewImage(image)
	if c.opts.Racks != nil {
		img.Racks = c.opts.Racks()
	}
	resp, eff := e.cg.Heartbeat(c.opts.Now(), img, r)
	c.apply(e, groups.Effects{Persist: eff.Persist})
	if e.dead {
		return fail(kerr.NotCoordinator.Code, "")
	}
	return resp
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
