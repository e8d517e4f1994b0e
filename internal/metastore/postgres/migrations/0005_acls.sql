-- Floe metadata schema, version 4: Kafka ACL bindings. Same portability
-- rules as 0001_init.sql.

-- One row per binding. The enumerations are Kafka's wire codes
-- (resource type, pattern type, operation, permission), which the
-- protocol never renumbers.
CREATE TABLE acls (
    resource_type SMALLINT NOT NULL,
    resource_name TEXT     NOT NULL,
    pattern_type  SMALLINT NOT NULL,
    principal     TEXT     NOT NULL,
    host          TEXT     NOT NULL,
    operation     SMALLINT NOT NULL,
    permission    SMALLINT NOT NULL,
    PRIMARY KEY (resource_type, resource_name, pattern_type, principal, host, operation, permission)
);

-- Moved by every change to acls, so that agents poll one row to know
-- whether their cached ACLs are current.
INSERT INTO counters (name, value) VALUES ('acl_version', 0);
