-- Floe metadata schema, version 6: Kafka listeners and SASL users. Same
-- portability rules as 0001_init.sql.

-- Each Kafka listener's advertised HOST:PORT, by listener name, as a JSON
-- object ('{}' for agents with one listener: host and port).
ALTER TABLE agents ADD COLUMN listeners TEXT NOT NULL DEFAULT '{}';

-- SCRAM credentials (RFC 5802): never the password, only what verifies
-- it. mechanism is Kafka's number: 1 SCRAM-SHA-256, 2 SCRAM-SHA-512.
CREATE TABLE scram_credentials (
    username   TEXT     NOT NULL,
    mechanism  SMALLINT NOT NULL,
    iterations INTEGER  NOT NULL,
    salt       BYTEA    NOT NULL,
    stored_key BYTEA    NOT NULL,
    server_key BYTEA    NOT NULL,
    PRIMARY KEY (username, mechanism)
);
