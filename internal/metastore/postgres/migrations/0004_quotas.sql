-- Floe metadata schema: client quotas (KIP-546). Same
-- portability rules as 0001_init.sql.

-- One row per entity with quotas: its canonical key (QuotaEntity.Key),
-- the entity and its values as JSON text.
CREATE TABLE client_quotas (
    entity_key   TEXT NOT NULL PRIMARY KEY,
    entity       TEXT NOT NULL,
    quota_values TEXT NOT NULL
);
