-- Floe metadata schema, version 3: the agents' peer listeners. Same
-- portability rules as 0001_init.sql.

-- HOST:PORT of each agent's peer listener ('' for none).
ALTER TABLE agents ADD COLUMN peer_addr TEXT NOT NULL DEFAULT '';

-- Cluster-wide secrets; 'cluster-secret' is what agents prove to each
-- other on their peer listeners, made by the first agent that asks.
CREATE TABLE secrets (
    name  TEXT  NOT NULL PRIMARY KEY,
    value BYTEA NOT NULL
);
