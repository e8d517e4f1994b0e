-- Floe metadata schema, version 2: background jobs (leases, the object
-- ledger). Same portability rules as 0001_init.sql.

-- How many extents name each object. A commit registers its object with
-- the number of extents it wrote; retention, replacement and topic
-- deletion count down, and an object reaching zero is copied to
-- unreferenced_objects.
ALTER TABLE objects ADD COLUMN refs BIGINT NOT NULL DEFAULT 0;
UPDATE objects SET refs = (SELECT count(*) FROM extents WHERE extents.object = objects.object);

-- Objects no extent names any more, since when (database clock), until
-- the cleaner deletes them from the bucket and forgets them.
CREATE TABLE unreferenced_objects (
    object TEXT        NOT NULL PRIMARY KEY,
    size   BIGINT      NOT NULL,
    since  TIMESTAMPTZ NOT NULL
);
CREATE INDEX unreferenced_objects_since ON unreferenced_objects (since);
INSERT INTO unreferenced_objects (object, size, since)
    SELECT object, size, now() FROM objects WHERE refs = 0;

-- Job leases: one row per lease name ever taken; expires from the
-- database clock. A released lease keeps its row (and epoch) and expires
-- at its release.
CREATE TABLE job_leases (
    name     TEXT        NOT NULL PRIMARY KEY,
    holder   TEXT        NOT NULL,
    epoch    BIGINT      NOT NULL,
    acquired TIMESTAMPTZ NOT NULL,
    renewed  TIMESTAMPTZ NOT NULL,
    expires  TIMESTAMPTZ NOT NULL
);
