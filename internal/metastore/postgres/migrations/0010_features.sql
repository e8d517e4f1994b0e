-- Floe metadata schema, version 10: the cluster's finalized feature
-- levels (KIP-584), changed by UpdateFeatures. Same portability rules as
-- 0001_init.sql. A database of an older version has none: the agents
-- finalize their flags' levels on their first start after the upgrade.

-- One row per feature finalized at a level above 0.
CREATE TABLE finalized_features (
    name  TEXT PRIMARY KEY,
    level SMALLINT NOT NULL
);

-- The single row holding the number of updates so far (the epoch
-- ApiVersions reports); absent until the levels are first finalized.
CREATE TABLE finalized_features_epoch (
    id    SMALLINT PRIMARY KEY CHECK (id = 1),
    epoch BIGINT NOT NULL
);
