-- Floe metadata schema, version 12: share groups' membership
-- (metastore.ShareStore's LoadShareGroup/SaveShareGroup;
-- docs/share-groups.md). Same portability rules as 0001_init.sql.

-- One row per share group whose coordinator saved its membership, changed
-- by compare-and-swap of version. data is internal/sharegroup's encoding,
-- which the store never reads.
CREATE TABLE share_groups (
    group_name BYTEA       NOT NULL PRIMARY KEY,
    data       BYTEA       NOT NULL,
    version    BIGINT      NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
