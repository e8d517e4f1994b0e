-- Floe metadata schema, version 7: transactions (docs/transactions.md).
-- Same portability rules as 0001_init.sql. Transactional ids are client
-- strings Kafka does not restrict: BYTEA.

-- One record per transactional id (metastore.Txn), changed by
-- compare-and-swap of version. partitions is 20 bytes per partition
-- (topic id, partition big-endian), sorted; group_names is each name's uvarint
-- length and bytes, sorted (metastore.EncodeTxnPartitions, EncodeTxnGroups).
-- started_at is NULL when the transaction is not Ongoing.
CREATE TABLE transactions (
    transactional_id    BYTEA       NOT NULL PRIMARY KEY,
    producer_id         BIGINT      NOT NULL,
    producer_epoch      SMALLINT    NOT NULL,
    last_producer_id    BIGINT      NOT NULL,
    last_producer_epoch SMALLINT    NOT NULL,
    state               TEXT        NOT NULL,
    timeout_ms          INTEGER     NOT NULL,
    partitions          BYTEA       NOT NULL,
    group_names         BYTEA       NOT NULL,
    started_at          TIMESTAMPTZ,
    updated_at          TIMESTAMPTZ NOT NULL,
    version             BIGINT      NOT NULL
);
-- A commit with transactional batches finds their transactions by
-- producer id.
CREATE INDEX transactions_producer ON transactions (producer_id);

-- The first offset of every transaction open on a partition, per
-- producer: the last stable offset is the smallest. Written by commits,
-- deleted by EndTxn, both under the partition's row lock.
CREATE TABLE txn_open (
    topic_id     BYTEA   NOT NULL,
    part         INTEGER NOT NULL,
    producer_id  BIGINT  NOT NULL,
    first_offset BIGINT  NOT NULL,
    PRIMARY KEY (topic_id, part, producer_id)
);

-- The aborted transaction index: the producer's records in
-- [first_offset, last_offset] were aborted; last_offset is the ABORT
-- marker's. stable_offset is the partition's last stable offset right
-- after the marker, which bounds AbortedTxns' scan.
CREATE TABLE txn_aborted (
    topic_id      BYTEA   NOT NULL,
    part          INTEGER NOT NULL,
    last_offset   BIGINT  NOT NULL,
    producer_id   BIGINT  NOT NULL,
    first_offset  BIGINT  NOT NULL,
    stable_offset BIGINT  NOT NULL,
    PRIMARY KEY (topic_id, part, last_offset)
);

-- Offsets committed inside a transaction (TxnOffsetCommit), pending until
-- EndTxn publishes them into group_offsets or drops them.
CREATE TABLE txn_offsets (
    transactional_id BYTEA       NOT NULL,
    group_name       BYTEA       NOT NULL,
    topic_id         BYTEA       NOT NULL,
    part             INTEGER     NOT NULL,
    committed_offset BIGINT      NOT NULL,
    leader_epoch     INTEGER     NOT NULL,
    metadata         BYTEA       NOT NULL,
    committed_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (transactional_id, group_name, topic_id, part)
);
-- DeleteTopic removes every transaction's pending offsets of the topic.
CREATE INDEX txn_offsets_topic ON txn_offsets (topic_id);

-- The max timestamp of each producer's last batch on a partition, for
-- DescribeProducers; -1 for rows written before.
ALTER TABLE producer_state ADD COLUMN last_timestamp BIGINT NOT NULL DEFAULT -1;
