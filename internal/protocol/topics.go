package protocol

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/metastore"
)

// topicLookup caches topic lookups for the duration of one request.
type topicLookup struct {
	h      *Handler
	ctx    context.Context
	byName map[string]topicResult
}

type topicResult struct {
	t   metastore.Topic
	err error
}

func (h *Handler) lookup(ctx context.Context) *topicLookup {
	return &topicLookup{h: h, ctx: ctx, byName: map[string]topicResult{}}
}

// name looks a topic up by name in the agent's topic cache, the same
// answer for the whole request.
func (l *topicLookup) name(name string) (metastore.Topic, error) {
	if r, ok := l.byName[name]; ok {
		return r.t, r.err
	}
	t, err := l.h.topics.Topic(l.ctx, name)
	l.byName[name] = topicResult{t, err}
	return t, err
}

// id looks a topic up by ID in the agent's topic cache. An unknown ID's
// error is both metastore.ErrUnknownTopicOrPartition and
// errUnknownTopicID, which errorCode answers UNKNOWN_TOPIC_ID.
func (l *topicLookup) id(id [16]byte) (metastore.Topic, error) {
	t, err := l.h.topics.TopicByID(l.ctx, id)
	if errors.Is(err, metastore.ErrUnknownTopicOrPartition) {
		return t, fmt.Errorf("%w: %w", errUnknownTopicID, err)
	}
	return t, err
}

// named looks a topic up by ID when byID (the versions of a request that
// name topics by ID), else by name.
func (l *topicLookup) named(byID bool, name string, id [16]byte) (metastore.Topic, error) {
	if byID {
		return l.id(id)
	}
	return l.name(name)
}

// errUnknownTopicID marks a lookup of a topic ID the agent does not know.
var errUnknownTopicID = errors.New("unknown topic id")

// isUnknownTopicID reports a lookup of an unknown topic ID.
func isUnknownTopicID(err error) bool { return errors.Is(err, errUnknownTopicID) }

// partition checks that the topic has partition p.
func partitionErr(t metastore.Topic, err error, p int32) int16 {
	if err != nil {
		return errorCode(err)
	}
	if p < 0 || p >= t.Partitions {
		return kerr.UnknownTopicOrPartition.Code
	}
	return 0
}

// createTopic creates a topic after validating it as CreateTopics does,
// returning a Kafka error code and message.
func (h *Handler) createTopic(ctx context.Context, name string, partitions int32, replication int16, configs map[string]string, validateOnly bool) (metastore.Topic, int16, error) {
	if err := config.ValidTopicName(name); err != nil {
		return metastore.Topic{}, kerr.InvalidTopicException.Code, err
	}
	if partitions == -1 {
		partitions = h.cfg.DefaultPartitions
	}
	if partitions < 1 {
		return metastore.Topic{}, kerr.InvalidPartitions.Code, errors.New("number of partitions must be at least 1")
	}
	if replication != -1 && replication < 1 {
		return metastore.Topic{}, kerr.InvalidReplicationFactor.Code, errors.New("replication factor must be at least 1 (Floe keeps data in the bucket; any factor is accepted and reported as one replica)")
	}
	for k, v := range configs {
		if err := config.ValidateTopic(k, v); err != nil {
			return metastore.Topic{}, kerr.InvalidConfig.Code, err
		}
	}
	if !validateOnly {
		release, err := h.creationTurn(ctx)
		if err != nil {
			return metastore.Topic{}, kerr.RequestTimedOut.Code, err
		}
		defer release()
	}
	if code, err := h.checkCreate(ctx, name, 0, partitions); code != 0 {
		return metastore.Topic{}, code, err
	}
	if validateOnly {
		if _, err := h.store.Topic(ctx, name); err == nil {
			return metastore.Topic{}, kerr.TopicAlreadyExists.Code, errors.New("topic '" + name + "' already exists")
		}
		return metastore.Topic{Name: name, Partitions: partitions, Configs: configs}, 0, nil
	}
	t, err := h.store.CreateTopic(ctx, metastore.TopicSpec{Name: name, Partitions: partitions, Configs: configs})
	if err != nil {
		if errors.Is(err, metastore.ErrTopicExists) {
			return t, kerr.TopicAlreadyExists.Code, errors.New("topic '" + name + "' already exists")
		}
		return t, errorCode(err), err
	}
	// Logged here, where the request is known, and not by the metadata
	// store as well (DeleteTopics likewise).
	h.log.Info("topic created", "topic", name, "partitions", partitions, "id", topicIDString(t.ID), "configs", configs)
	return t, 0, nil
}

// maxMessageBytes is the largest batch a topic accepts.
func (h *Handler) maxMessageBytes(t metastore.Topic) int64 {
	if v, ok := t.Configs["max.message.bytes"]; ok {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			return n
		}
	}
	return int64(h.cfg.MaxMessageBytes)
}

func topicIDString(id metastore.TopicID) string {
	const hex = "0123456789abcdef"
	b := make([]byte, 0, 36)
	for i, c := range id {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b = append(b, '-')
		}
		b = append(b, hex[c>>4], hex[c&0xf])
	}
	return string(b)
}
