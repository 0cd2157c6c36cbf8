-- The archive API: dossier lifecycle, units and procedures, accounts and tokens, the audit log, processing
-- jobs, idempotent uploads, pages waiting to be packaged, and the change log the search index follows.

-- The dossier as the national public service portal tracks it (DOMAIN.md).
ALTER TABLE dossiers ADD COLUMN applicant TEXT NOT NULL DEFAULT '';
ALTER TABLE dossiers ADD COLUMN due_at TEXT;            -- legal due time, RFC 3339 +07:00
ALTER TABLE dossiers ADD COLUMN resolved_at TEXT;       -- set when resolved (status 9 or 10)
-- 1 newly registered, 2 accepted, 3 not accepted, 4 processing, 5 additional documents requested, 6 fees
-- requested, 7 withdrawn, 8 processing stopped, 9 resolved, 10 result returned.
ALTER TABLE dossiers ADD COLUMN status INTEGER NOT NULL DEFAULT 2 CHECK (status BETWEEN 1 AND 10);
-- 1 in person, 2 online, 3 postal.
ALTER TABLE dossiers ADD COLUMN channel INTEGER NOT NULL DEFAULT 1 CHECK (channel BETWEEN 1 AND 3);
ALTER TABLE dossiers ADD COLUMN updated_at TEXT;
CREATE INDEX dossiers_by_status ON dossiers (status);

-- Units and procedures, registered by an administrator: their level (and field) feed search filters and
-- statistics. A dossier whose unit or procedure is not registered still works; it has no level or field.
CREATE TABLE units (
    code  TEXT PRIMARY KEY,
    name  TEXT NOT NULL,
    level TEXT NOT NULL CHECK (level IN ('province', 'district', 'commune'))
);
CREATE TABLE procedures (
    code  TEXT PRIMARY KEY,
    name  TEXT NOT NULL,
    field TEXT NOT NULL DEFAULT '',        -- lĩnh vực: land, civil status, business...
    level TEXT NOT NULL DEFAULT ''
);

-- People and systems. `units` is '*' (every unit) or a comma-separated list of unit codes.
CREATE TABLE users (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    role        TEXT NOT NULL CHECK (role IN ('clerk', 'archivist', 'system', 'admin')),
    units       TEXT NOT NULL DEFAULT '*',
    created_at  TEXT NOT NULL,
    disabled_at TEXT
);

-- Bearer tokens, stored as SHA-256 of the token: the token itself is shown once.
CREATE TABLE tokens (
    id         INTEGER PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id),
    hash       TEXT NOT NULL UNIQUE,
    label      TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    expires_at TEXT,
    revoked_at TEXT
);

-- Append-only: every read of dossier content, every download and copy issued, every change, and every
-- refusal of an authenticated caller.
CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY,
    at      TEXT NOT NULL,
    actor   TEXT NOT NULL,
    role    TEXT NOT NULL,
    action  TEXT NOT NULL,          -- dossier.read, object.download, copy.issue, dossier.create, ...
    target  TEXT NOT NULL,          -- what was acted on: a dossier code, a hash, a user name, a query
    dossier TEXT,                   -- the dossier concerned, when there is one
    client  TEXT NOT NULL,          -- where the request came from
    outcome TEXT NOT NULL DEFAULT 'ok' CHECK (outcome IN ('ok', 'denied'))
);
CREATE INDEX audit_by_dossier ON audit_log (dossier, id);
CREATE INDEX audit_by_actor ON audit_log (actor, id);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

-- Pages uploaded to a dossier and waiting to be packaged into a document by `finalize`.
CREATE TABLE pending_pages (
    id         INTEGER PRIMARY KEY,
    dossier_id INTEGER NOT NULL REFERENCES dossiers (id),
    kind       TEXT NOT NULL CHECK (kind IN ('submitted', 'result')),
    position   INTEGER NOT NULL,
    blake3     TEXT NOT NULL REFERENCES objects (blake3),
    origin     TEXT NOT NULL,
    size       INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX pending_by_dossier ON pending_pages (dossier_id, kind, position);

-- A retried request with the same Idempotency-Key (per caller) gets the first answer again.
CREATE TABLE idempotency_keys (
    actor       TEXT NOT NULL,
    key         TEXT NOT NULL,
    fingerprint TEXT NOT NULL,      -- BLAKE3 of the request: method, path, query and body
    status      INTEGER NOT NULL,
    response    TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (actor, key)
);

-- Processing jobs (packaging a dossier's pages), with their progress.
CREATE TABLE jobs (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
    dossier    TEXT NOT NULL,
    actor      TEXT NOT NULL,
    request    TEXT NOT NULL,        -- JSON: what to do
    total      INTEGER,
    done       INTEGER NOT NULL DEFAULT 0,
    failed     INTEGER NOT NULL DEFAULT 0,
    result     TEXT,                 -- JSON report when done
    error      TEXT,                 -- why, when failed
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX jobs_by_state ON jobs (state, created_at);

-- Reuse of a digitized result by a later dossier (the national digitization index counts these).
CREATE TABLE result_reuses (
    id         INTEGER PRIMARY KEY,
    dossier_id INTEGER NOT NULL REFERENCES dossiers (id),
    document   TEXT NOT NULL,        -- BLAKE3 of the reused result document
    created_at TEXT NOT NULL,
    UNIQUE (dossier_id, document)
);

-- Dossiers whose indexed metadata changed (status, applicant, a document replaced): the search index
-- follows this log and re-indexes their pages.
CREATE TABLE dossier_changes (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    dossier TEXT NOT NULL
);
