package remote

import (
	"context"
	"fmt"
	"time"

	"github.com/floe-io/floe/internal/metastore"
)

// The metastore.Store methods of Client, one line each over ops.go.

func (c *Client) Topic(ctx context.Context, name string) (metastore.Topic, error) {
	return opTopic.call(ctx, c, name)
}

func (c *Client) Topics(ctx context.Context) ([]metastore.Topic, error) {
	return opTopics.call(ctx, c, none{})
}

func (c *Client) CreateTopic(ctx context.Context, spec metastore.TopicSpec) (metastore.Topic, error) {
	return opCreateTopic.call(ctx, c, spec)
}

func (c *Client) DeleteTopic(ctx context.Context, name string) (metastore.Topic, error) {
	return opDeleteTopic.call(ctx, c, name)
}

func (c *Client) CreatePartitions(ctx context.Context, name string, total int32) (metastore.Topic, error) {
	return opCreatePartitions.call(ctx, c, createPartitionsArgs{name, total})
}

func (c *Client) AlterTopicConfigs(ctx context.Context, name string, changes []metastore.ConfigChange) (metastore.Topic, error) {
	return opAlterTopicConfigs.call(ctx, c, alterConfigsArgs{name, changes})
}

func (c *Client) CommitSegment(ctx context.Context, sc metastore.SegmentCommit) ([]metastore.BatchResult, error) {
	rs, err := opCommitSegment.call(ctx, c, sc)
	if err != nil {
		return nil, err
	}
	return batchResults(rs), nil
}

// CommitSegments implements metastore.GroupSequencer. A control plane
// that does not know the op (an older build) applied nothing: the client
// then answers ErrGroupsUnsupported, and keeps answering it without
// asking for groupsRetry, after which a newer leader may have taken over.
func (c *Client) CommitSegments(ctx context.Context, cs []metastore.SegmentCommit) ([][]metastore.BatchResult, error) {
	if until := c.groupsRefusedUntil.Load(); until != 0 && time.Now().UnixNano() < until {
		return nil, metastore.ErrGroupsUnsupported
	}
	rs, err := opCommitSegments.call(ctx, c, cs)
	if unknownOp(err) {
		c.groupsRefusedUntil.Store(time.Now().Add(groupsRetry).UnixNano())
		return nil, fmt.Errorf("%w: %v", metastore.ErrGroupsUnsupported, err)
	}
	if err != nil {
		return nil, err
	}
	if len(rs) != len(cs) {
		return nil, fmt.Errorf("CommitSegments: %d results for %d segments", len(rs), len(cs))
	}
	out := make([][]metastore.BatchResult, len(rs))
	for k, seg := range rs {
		out[k] = batchResults(seg)
	}
	return out, nil
}

// groupsRetry is how long a client that found its control plane unable
// to commit groups commits one segment per call before asking again.
const groupsRetry = time.Minute

func (c *Client) Offsets(ctx context.Context, id metastore.TopicID, partition int32) (metastore.PartitionOffsets, error) {
	return opOffsets.call(ctx, c, partitionArgs{id, partition})
}

func (c *Client) Extents(ctx context.Context, id metastore.TopicID, partition int32, from int64, limit int) ([]metastore.Extent, error) {
	return opExtents.call(ctx, c, extentsArgs{id, partition, from, limit})
}

func (c *Client) ExtentAtTimestamp(ctx context.Context, id metastore.TopicID, partition int32, ts int64) (metastore.Extent, bool, error) {
	r, err := opExtentAtTimestamp.call(ctx, c, extentAtArgs{id, partition, ts})
	return r.Extent, r.Found, err
}

func (c *Client) ExtentWithMaxTimestamp(ctx context.Context, id metastore.TopicID, partition int32) (metastore.Extent, bool, error) {
	r, err := opExtentWithMaxTimestamp.call(ctx, c, partitionArgs{id, partition})
	return r.Extent, r.Found, err
}

func (c *Client) InitProducerID(ctx context.Context, producerID int64, epoch int16) (int64, int16, error) {
	r, err := opInitProducerID.call(ctx, c, producerArgs{producerID, epoch})
	return r.ProducerID, r.Epoch, err
}

func (c *Client) ClientQuotas(ctx context.Context) ([]metastore.ClientQuota, error) {
	return opClientQuotas.call(ctx, c, none{})
}

func (c *Client) AlterClientQuotas(ctx context.Context, changes []metastore.QuotaChange) error {
	_, err := opAlterClientQuotas.call(ctx, c, changes)
	return err
}

func (c *Client) CommitOffsets(ctx context.Context, group string, offsets []metastore.CommittedOffset) error {
	_, err := opCommitOffsets.call(ctx, c, groupOffsetsArgs{group, offsets})
	return err
}

func (c *Client) FetchOffsets(ctx context.Context, group string) ([]metastore.CommittedOffset, error) {
	return opFetchOffsets.call(ctx, c, group)
}

func (c *Client) DeleteOffsets(ctx context.Context, group string, partitions []metastore.TopicPartition) error {
	_, err := opDeleteOffsets.call(ctx, c, groupPartitionsArgs{group, partitions})
	return err
}

func (c *Client) ExpireOffsets(ctx context.Context, group string, olderThan time.Time) (int, error) {
	return opExpireOffsets.call(ctx, c, expireArgs{group, olderThan})
}

func (c *Client) LoadGroup(ctx context.Context, name string) (metastore.Group, bool, error) {
	r, err := opLoadGroup.call(ctx, c, name)
	return r.Group, r.Found, err
}

func (c *Client) SaveGroup(ctx context.Context, g metastore.Group) (int64, error) {
	return opSaveGroup.call(ctx, c, g)
}

func (c *Client) ListGroups(ctx context.Context) ([]metastore.GroupSummary, error) {
	return opListGroups.call(ctx, c, none{})
}

func (c *Client) DeleteGroup(ctx context.Context, name string) error {
	_, err := opDeleteGroup.call(ctx, c, name)
	return err
}

func (c *Client) Heartbeat(ctx context.Context, a metastore.AgentInfo, ttl time.Duration) (metastore.AgentInfo, error) {
	return opHeartbeat.call(ctx, c, heartbeatArgs{a, ttl})
}

func (c *Client) LiveAgents(ctx context.Context) ([]metastore.AgentInfo, error) {
	return opLiveAgents.call(ctx, c, none{})
}

func (c *Client) Deregister(ctx context.Context, id string) error {
	_, err := opDeregister.call(ctx, c, id)
	return err
}

func (c *Client) ClusterSecret(ctx context.Context) ([]byte, error) {
	return opClusterSecret.call(ctx, c, none{})
}

func (c *Client) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (metastore.Lease, bool, error) {
	r, err := opAcquireLease.call(ctx, c, acquireArgs{name, holder, ttl})
	return r.Lease, r.Acquired, err
}

func (c *Client) RenewLease(ctx context.Context, l metastore.Lease, ttl time.Duration) (metastore.Lease, error) {
	return opRenewLease.call(ctx, c, renewArgs{l, ttl})
}

func (c *Client) ReleaseLease(ctx context.Context, l metastore.Lease) error {
	_, err := opReleaseLease.call(ctx, c, l)
	return err
}

func (c *Client) Leases(ctx context.Context) ([]metastore.Lease, error) {
	return opLeases.call(ctx, c, none{})
}

func (c *Client) AdvanceLogStart(ctx context.Context, id metastore.TopicID, partition int32, offset int64) (metastore.PartitionOffsets, error) {
	return opAdvanceLogStart.call(ctx, c, advanceArgs{id, partition, offset})
}

func (c *Client) PartitionUsage(ctx context.Context, id metastore.TopicID) ([]metastore.PartitionUsage, error) {
	return opPartitionUsage.call(ctx, c, id)
}

func (c *Client) ReplaceExtents(ctx context.Context, rs []metastore.PartitionReplacement) error {
	_, err := opReplaceExtents.call(ctx, c, rs)
	return err
}

func (c *Client) ListDeletable(ctx context.Context, before time.Time, limit int) ([]metastore.UnreferencedObject, error) {
	return opListDeletable.call(ctx, c, deletableArgs{before, limit})
}

func (c *Client) ForgetObject(ctx context.Context, key string) error {
	_, err := opForgetObject.call(ctx, c, key)
	return err
}

func (c *Client) KnownObjects(ctx context.Context, keys []string) (map[string]bool, error) {
	return opKnownObjects.call(ctx, c, keys)
}

func (c *Client) ObjectUsage(ctx context.Context) (metastore.ObjectUsage, error) {
	return opObjectUsage.call(ctx, c, none{})
}

func (c *Client) ObjectSize(ctx context.Context, key string) (int64, bool, error) {
	r, err := opObjectSize.call(ctx, c, key)
	return r.Size, r.Known, err
}

func (c *Client) CreateACLs(ctx context.Context, acls []metastore.ACL) error {
	_, err := opCreateACLs.call(ctx, c, acls)
	return err
}

func (c *Client) DeleteACLs(ctx context.Context, acls []metastore.ACL) ([]metastore.ACL, error) {
	return opDeleteACLs.call(ctx, c, acls)
}

func (c *Client) ACLs(ctx context.Context) ([]metastore.ACL, int64, error) {
	r, err := opACLs.call(ctx, c, none{})
	return r.ACLs, r.Version, err
}

func (c *Client) ACLVersion(ctx context.Context) (int64, error) {
	return opACLVersion.call(ctx, c, none{})
}

func (c *Client) ScramCredential(ctx context.Context, user string, m metastore.ScramMechanism) (metastore.ScramCredential, error) {
	return opScramCredential.call(ctx, c, userMechArgs{user, m})
}

func (c *Client) ScramUsers(ctx context.Context) ([]metastore.UserScram, error) {
	return opScramUsers.call(ctx, c, none{})
}

func (c *Client) SetScramCredential(ctx context.Context, user string, cred metastore.ScramCredential) error {
	_, err := opSetScramCredential.call(ctx, c, setScramArgs{user, cred})
	return err
}

func (c *Client) DeleteScramCredential(ctx context.Context, user string, m metastore.ScramMechanism) error {
	_, err := opDeleteScramCredential.call(ctx, c, userMechArgs{user, m})
	return err
}

func (c *Client) LoadTxn(ctx context.Context, id string) (metastore.Txn, bool, error) {
	r, err := opLoadTxn.call(ctx, c, id)
	return r.Txn, r.Found, err
}

func (c *Client) SaveTxn(ctx context.Context, t metastore.Txn) (int64, error) {
	return opSaveTxn.call(ctx, c, t)
}

func (c *Client) DeleteTxn(ctx context.Context, id string, version int64) error {
	_, err := opDeleteTxn.call(ctx, c, deleteTxnArgs{id, version})
	return err
}

func (c *Client) ListTxns(ctx context.Context) ([]metastore.Txn, error) {
	return opListTxns.call(ctx, c, none{})
}

func (c *Client) EndTxn(ctx context.Context, e metastore.TxnEnd) (metastore.TxnEndResult, error) {
	return opEndTxn.call(ctx, c, e)
}

func (c *Client) CommitTxnOffsets(ctx context.Context, id string, producerID int64, epoch int16, group string, offsets []metastore.CommittedOffset) error {
	_, err := opCommitTxnOffsets.call(ctx, c, txnOffsetsArgs{id, producerID, epoch, group, offsets})
	return err
}

func (c *Client) PendingTxnOffsets(ctx context.Context, group string) ([]metastore.TopicPartition, error) {
	return opPendingTxnOffsets.call(ctx, c, group)
}

func (c *Client) AbortedTxns(ctx context.Context, id metastore.TopicID, partition int32, from, to int64) ([]metastore.AbortedTxn, error) {
	return opAbortedTxns.call(ctx, c, rangeArgs{id, partition, from, to})
}

func (c *Client) ActiveProducers(ctx context.Context, id metastore.TopicID, partition int32) ([]metastore.ActiveProducer, error) {
	return opActiveProducers.call(ctx, c, partitionArgs{id, partition})
}

func (c *Client) LoadShareStates(ctx context.Context, group string) ([]metastore.ShareState, error) {
	return opLoadShareStates.call(ctx, c, group)
}

func (c *Client) ListShareGroups(ctx context.Context) ([]string, error) {
	return opListShareGroups.call(ctx, c, none{})
}

func (c *Client) WriteShareStates(ctx context.Context, group string, states []metastore.ShareState) ([]int64, error) {
	return opWriteShareStates.call(ctx, c, shareStatesArgs{group, states})
}

func (c *Client) DeleteShareStates(ctx context.Context, group string, partitions []metastore.TopicPartition) error {
	_, err := opDeleteShareStates.call(ctx, c, groupPartitionsArgs{group, partitions})
	return err
}

func (c *Client) LoadShareGroup(ctx context.Context, group string) (metastore.ShareGroupRecord, bool, error) {
	r, err := opLoadShareGroup.call(ctx, c, group)
	return r.Record, r.Found, err
}

func (c *Client) SaveShareGroup(ctx context.Context, group string, rec metastore.ShareGroupRecord) (int64, error) {
	if err := metastore.CheckShareGroupRecord(rec); err != nil {
		return 0, err // before it makes a frame too large to send
	}
	return opSaveShareGroup.call(ctx, c, shareGroupArgs{group, rec})
}

var _ metastore.FeatureStore = (*Client)(nil)

func (c *Client) FinalizedFeatures(ctx context.Context) (metastore.FinalizedFeatures, error) {
	return opFinalizedFeatures.call(ctx, c, none{})
}

func (c *Client) UpdateFeatures(ctx context.Context, epoch int64, levels map[string]int16) (metastore.FinalizedFeatures, error) {
	return opUpdateFeatures.call(ctx, c, updateFeaturesArgs{epoch, levels})
}

func (c *Client) GroupConfigs(ctx context.Context, group string) (map[string]string, error) {
	configs, err := opGroupConfigs.call(ctx, c, group)
	if err == nil && configs == nil {
		configs = map[string]string{}
	}
	return configs, err
}

func (c *Client) AlterGroupConfigs(ctx context.Context, group string, changes []metastore.ConfigChange) (map[string]string, error) {
	configs, err := opAlterGroupConfigs.call(ctx, c, groupConfigArgs{group, changes})
	if err == nil && configs == nil {
		configs = map[string]string{}
	}
	return configs, err
}

// GroupsWithConfigs holds the server to limit too: a longer answer is
// an error, not a list the caller did not bound.
func (c *Client) GroupsWithConfigs(ctx context.Context, limit int) ([]string, error) {
	groups, err := opGroupsWithConfigs.call(ctx, c, limit)
	if err == nil && len(groups) > max(limit, 0) {
		return nil, fmt.Errorf("groups with configs: %d names for a limit of %d", len(groups), limit)
	}
	return groups, err
}
