-- Phoenix store schema, version 1 (PostgreSQL).
-- Timestamps are nanoseconds since the Unix epoch (UTC) in BIGINT columns: they order exactly
-- and keep the full precision that the listing cursor relies on (TIMESTAMPTZ keeps only
-- microseconds). Text that is compared or prefix-matched uses the "C" collation, so that it
-- orders byte-wise like the other backends and LIKE 'prefix%' can use the index.

-- Experiments: the whole record as JSON (`body`), plus the columns that listing filters and
-- orders by. `version` guards updates; `event_seq` numbers the experiment's events.
CREATE TABLE experiments (
    id            TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    name          TEXT COLLATE "C" NOT NULL,
    owner         TEXT COLLATE "C" NOT NULL,
    phase         TEXT   NOT NULL,
    version       BIGINT NOT NULL CHECK (version >= 0),
    created_at_ns BIGINT NOT NULL,
    updated_at_ns BIGINT NOT NULL,
    event_seq     BIGINT NOT NULL DEFAULT 0,
    body          TEXT   NOT NULL
);

CREATE INDEX experiments_by_creation ON experiments (created_at_ns, id);
CREATE INDEX experiments_by_phase ON experiments (phase, created_at_ns, id);
CREATE INDEX experiments_by_owner ON experiments (owner, created_at_ns, id);
CREATE INDEX experiments_by_name ON experiments (name);

-- Each experiment's event log, in the order the events were written (`seq` from 1).
CREATE TABLE experiment_events (
    experiment_id TEXT COLLATE "C" NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
    seq           BIGINT NOT NULL CHECK (seq >= 1),
    at_ns         BIGINT NOT NULL,
    actor         TEXT   NOT NULL,
    kind          TEXT   NOT NULL,
    body          TEXT   NOT NULL,
    PRIMARY KEY (experiment_id, seq)
);

-- API users. The password hash is opaque to the store.
CREATE TABLE users (
    name          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('viewer', 'experimenter', 'operator', 'admin')),
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at_ns BIGINT  NOT NULL,
    updated_at_ns BIGINT  NOT NULL
);

-- Pipeline targets (`local`, `k8s/<namespace>`) and the last revision number handed out.
CREATE TABLE pipeline_targets (
    target        TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    last_revision BIGINT NOT NULL CHECK (last_revision >= 1)
);

-- Every activation of a pipeline config on a target. At most one revision per target is
-- active. The experiment id is kept without a foreign key: the history outlives experiments.
CREATE TABLE pipeline_revisions (
    target        TEXT COLLATE "C" NOT NULL REFERENCES pipeline_targets (target),
    revision      BIGINT NOT NULL CHECK (revision >= 1),
    config        TEXT   NOT NULL,
    experiment_id TEXT,
    variant       TEXT   CHECK (variant IN ('baseline', 'candidate')),
    state         TEXT   NOT NULL CHECK (state IN ('active', 'superseded', 'rolledBack')),
    created_at_ns BIGINT NOT NULL,
    updated_at_ns BIGINT NOT NULL,
    PRIMARY KEY (target, revision),
    CHECK ((experiment_id IS NULL) = (variant IS NULL))
);

CREATE UNIQUE INDEX pipeline_revisions_one_active ON pipeline_revisions (target)
    WHERE state = 'active';
