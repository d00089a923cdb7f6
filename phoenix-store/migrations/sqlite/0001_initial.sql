-- Phoenix store schema, version 1 (SQLite).
-- Timestamps are nanoseconds since the Unix epoch (UTC): they order exactly and keep the full
-- precision that the listing cursor relies on.

-- Experiments: the whole record as JSON (`body`), plus the columns that listing filters and
-- orders by. `version` guards updates; `event_seq` numbers the experiment's events.
CREATE TABLE experiments (
    id            TEXT    NOT NULL PRIMARY KEY,
    name          TEXT    NOT NULL,
    owner         TEXT    NOT NULL,
    phase         TEXT    NOT NULL,
    version       INTEGER NOT NULL CHECK (version >= 0),
    created_at_ns INTEGER NOT NULL,
    updated_at_ns INTEGER NOT NULL,
    event_seq     INTEGER NOT NULL DEFAULT 0,
    body          TEXT    NOT NULL
) STRICT;

CREATE INDEX experiments_by_creation ON experiments (created_at_ns, id);
CREATE INDEX experiments_by_phase ON experiments (phase, created_at_ns, id);
CREATE INDEX experiments_by_owner ON experiments (owner, created_at_ns, id);
CREATE INDEX experiments_by_name ON experiments (name);

-- Each experiment's event log, in the order the events were written (`seq` from 1).
CREATE TABLE experiment_events (
    experiment_id TEXT    NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
    seq           INTEGER NOT NULL CHECK (seq >= 1),
    at_ns         INTEGER NOT NULL,
    actor         TEXT    NOT NULL,
    kind          TEXT    NOT NULL,
    body          TEXT    NOT NULL,
    PRIMARY KEY (experiment_id, seq)
) STRICT, WITHOUT ROWID;

-- API users. The password hash is opaque to the store.
CREATE TABLE users (
    name          TEXT    NOT NULL PRIMARY KEY,
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('viewer', 'experimenter', 'operator', 'admin')),
    disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at_ns INTEGER NOT NULL,
    updated_at_ns INTEGER NOT NULL
) STRICT;

-- Pipeline targets (`local`, `k8s/<namespace>`) and the last revision number handed out.
CREATE TABLE pipeline_targets (
    target        TEXT    NOT NULL PRIMARY KEY,
    last_revision INTEGER NOT NULL CHECK (last_revision >= 1)
) STRICT;

-- Every activation of a pipeline config on a target. At most one revision per target is
-- active. The experiment id is kept without a foreign key: the history outlives experiments.
CREATE TABLE pipeline_revisions (
    target        TEXT    NOT NULL REFERENCES pipeline_targets (target),
    revision      INTEGER NOT NULL CHECK (revision >= 1),
    config        TEXT    NOT NULL,
    experiment_id TEXT,
    variant       TEXT    CHECK (variant IN ('baseline', 'candidate')),
    state         TEXT    NOT NULL CHECK (state IN ('active', 'superseded', 'rolledBack')),
    created_at_ns INTEGER NOT NULL,
    updated_at_ns INTEGER NOT NULL,
    PRIMARY KEY (target, revision),
    CHECK ((experiment_id IS NULL) = (variant IS NULL))
) STRICT;

CREATE UNIQUE INDEX pipeline_revisions_one_active ON pipeline_revisions (target)
    WHERE state = 'active';
