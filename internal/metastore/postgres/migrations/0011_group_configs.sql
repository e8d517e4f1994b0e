-- Floe metadata schema, version 11: groups' dynamic configs
-- (metastore.GroupConfigStore; docs/share-groups.md). Same portability
-- rules as 0001_init.sql.

-- One row per group with configs: a JSON object of strings, as topics'
-- configs are stored.
CREATE TABLE group_configs (
    group_name BYTEA NOT NULL PRIMARY KEY,
    configs    TEXT  NOT NULL
);
