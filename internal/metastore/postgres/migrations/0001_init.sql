-- Floe metadata schema, version 1.
--
-- Portable to PostgreSQL-compatible distributed databases: only BIGINT,
-- INTEGER, SMALLINT, TEXT, BYTEA and TIMESTAMPTZ columns, plain primary
-- keys and secondary indexes, no foreign keys (DeleteTopic deletes every
-- table's rows itself, inside one transaction), no sequences, triggers or
-- stored procedures. See docs/postgres.md.
--
-- Client-supplied strings that Kafka does not restrict (group names,
-- protocol types, offset metadata) are BYTEA: they may hold NUL bytes or
-- invalid UTF-8, which a TEXT column rejects, and BYTEA sorts in byte order
-- as Go strings do.

-- One row per topic incarnation; id is the 16-byte topic UUID.
CREATE TABLE topics (
    id          BYTEA       NOT NULL PRIMARY KEY,
    name        TEXT        NOT NULL UNIQUE,
    partitions  INTEGER     NOT NULL,
    configs     TEXT        NOT NULL, -- JSON object of the explicit configs
    created_at  TIMESTAMPTZ NOT NULL
);

-- One row per partition, created with the topic (or CreatePartitions). A
-- segment commit locks the rows of the partitions it writes (SELECT … FOR
-- UPDATE, sorted by topic_id, part): this row lock is the sequencer.
CREATE TABLE partitions (
    topic_id         BYTEA   NOT NULL,
    part             INTEGER NOT NULL,
    high_watermark   BIGINT  NOT NULL,
    log_start_offset BIGINT  NOT NULL,
    PRIMARY KEY (topic_id, part)
);

-- Offset range [base_offset, end_offset) of a partition stored at bytes
-- [byte_offset, byte_offset+byte_length) of one object.
CREATE TABLE extents (
    topic_id      BYTEA       NOT NULL,
    part          INTEGER     NOT NULL,
    base_offset   BIGINT      NOT NULL,
    end_offset    BIGINT      NOT NULL,
    object        TEXT        NOT NULL,
    object_size   BIGINT      NOT NULL,
    byte_offset   BIGINT      NOT NULL,
    byte_length   BIGINT      NOT NULL,
    max_timestamp BIGINT      NOT NULL,
    committed_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (topic_id, part, base_offset)
);

-- Idempotent-producer state of one producer on one partition; recent is
-- the JSON array of the last batches (sequence.State.Recent).
CREATE TABLE producer_state (
    topic_id    BYTEA    NOT NULL,
    part        INTEGER  NOT NULL,
    producer_id BIGINT   NOT NULL,
    epoch       SMALLINT NOT NULL,
    last_seq    INTEGER  NOT NULL,
    recent      TEXT     NOT NULL,
    PRIMARY KEY (topic_id, part, producer_id)
);

-- The current epoch of every producer id InitProducerID handed out.
CREATE TABLE producers (
    producer_id BIGINT   NOT NULL PRIMARY KEY,
    epoch       SMALLINT NOT NULL
);

-- Every object a commit ever referenced, for the cleaner.
CREATE TABLE objects (
    object TEXT   NOT NULL PRIMARY KEY,
    size   BIGINT NOT NULL
);

-- Counters: the next producer id and the next node id.
CREATE TABLE counters (
    name  TEXT   NOT NULL PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO counters (name, value) VALUES ('next_producer_id', 1000), ('next_node_id', 1);

-- Committed offsets of consumer groups.
CREATE TABLE group_offsets (
    group_name       BYTEA       NOT NULL,
    topic_id         BYTEA       NOT NULL,
    part             INTEGER     NOT NULL,
    committed_offset BIGINT      NOT NULL,
    leader_epoch     INTEGER     NOT NULL,
    metadata         BYTEA       NOT NULL,
    committed_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (group_name, topic_id, part)
);
-- DeleteTopic removes every group's offsets of the topic.
CREATE INDEX group_offsets_topic ON group_offsets (topic_id);

-- The durable record of a consumer group (metastore.Group).
CREATE TABLE consumer_groups (
    name          BYTEA       NOT NULL PRIMARY KEY,
    protocol_type BYTEA       NOT NULL,
    state         TEXT        NOT NULL,
    data          BYTEA       NOT NULL,
    version       BIGINT      NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);

-- Registered agents; expires is set from the database clock.
CREATE TABLE agents (
    id      TEXT        NOT NULL PRIMARY KEY,
    node_id INTEGER     NOT NULL,
    host    TEXT        NOT NULL,
    port    INTEGER     NOT NULL,
    zone    TEXT        NOT NULL,
    roles   TEXT        NOT NULL, -- JSON array of strings
    expires TIMESTAMPTZ NOT NULL
);
