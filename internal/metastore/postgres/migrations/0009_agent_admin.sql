-- Floe metadata schema, version 9: what agents tell each other's web
-- consoles. Same portability rules as 0001_init.sql. Rows written
-- before this version get the defaults: no admin URL, no version, not
-- known to serve.

-- Base URL of the agent's admin API ('' for none), its build version,
-- and when it began serving (NULL until then).
ALTER TABLE agents ADD COLUMN admin TEXT NOT NULL DEFAULT '';
ALTER TABLE agents ADD COLUMN version TEXT NOT NULL DEFAULT '';
ALTER TABLE agents ADD COLUMN started TIMESTAMPTZ;
