-- Floe metadata schema, version 8: share groups (docs/share-groups.md).
-- Same portability rules as 0001_init.sql.

-- One row per share partition of a share group (metastore.ShareState),
-- changed by compare-and-swap of version. batches is 19 bytes per run of
-- in-flight offsets (first, last big-endian, state, delivery count), in
-- offset order (metastore.EncodeShareBatches). DeleteTopic removes a
-- topic's rows.
CREATE TABLE share_partitions (
    group_name   BYTEA       NOT NULL,
    topic_id     BYTEA       NOT NULL,
    part         INTEGER     NOT NULL,
    state_epoch  INTEGER     NOT NULL,
    start_offset BIGINT      NOT NULL,
    batches      BYTEA       NOT NULL,
    version      BIGINT      NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (group_name, topic_id, part)
);
CREATE INDEX share_partitions_topic ON share_partitions (topic_id);
