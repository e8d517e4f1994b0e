-- Floe metadata schema, version 13: the outage manifest name an agent
-- queues commits under (--outage-manifest-name), so that no two live
-- agents use one name. Same portability rules as 0001_init.sql. Rows
-- written before this version hold no name (NULL).

ALTER TABLE agents ADD COLUMN outage_manifest TEXT;

-- At most one registration holds a name. An expired holder's name is
-- cleared by the Heartbeat that takes it over (agents.go), so a dead
-- agent's row, kept for AgentPruneAfter, does not block its successor.
CREATE UNIQUE INDEX agents_outage_manifest ON agents (outage_manifest) WHERE outage_manifest IS NOT NULL;
