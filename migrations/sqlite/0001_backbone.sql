-- The archive's source of truth: dossiers, their documents and pages, and every stored object.
-- The full-text index is a view rebuilt from these tables.

CREATE TABLE dossiers (
    id             INTEGER PRIMARY KEY,
    code           TEXT NOT NULL UNIQUE,     -- 000.00.15.H27-231128-0042
    procedure_code TEXT NOT NULL,            -- 1.001234
    unit_code      TEXT NOT NULL,            -- 000.00.15.H27
    received_at    TEXT NOT NULL,            -- RFC 3339, +07:00
    created_at     TEXT NOT NULL
);
CREATE INDEX dossiers_by_unit ON dossiers (unit_code, received_at);
CREATE INDEX dossiers_by_procedure ON dossiers (procedure_code, received_at);

-- Every object in the store: content-addressed by BLAKE3.
CREATE TABLE objects (
    blake3     TEXT PRIMARY KEY,
    size       INTEGER NOT NULL,
    media_type TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE documents (
    id         INTEGER PRIMARY KEY,
    dossier_id INTEGER NOT NULL REFERENCES dossiers (id),
    kind       TEXT NOT NULL CHECK (kind IN ('submitted', 'result')),
    blake3     TEXT NOT NULL REFERENCES objects (blake3),   -- the packaged PDF
    page_count INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (dossier_id, blake3)
);
CREATE INDEX documents_by_hash ON documents (blake3);

CREATE TABLE pages (
    id            INTEGER PRIMARY KEY,                        -- the index follows pages in id order
    document_id   INTEGER NOT NULL REFERENCES documents (id),
    number        INTEGER NOT NULL,                           -- from 1
    blake3        TEXT NOT NULL REFERENCES objects (blake3),  -- the page master
    source_blake3 TEXT REFERENCES objects (blake3),           -- the multi-page file it came from
    origin        TEXT NOT NULL,                              -- file name as the clerk gave it
    width         INTEGER NOT NULL,
    height        INTEGER NOT NULL,
    dpi           REAL NOT NULL,
    dpi_assumed   INTEGER NOT NULL,
    confidence    REAL NOT NULL,
    text          TEXT NOT NULL,                              -- NFC
    words         TEXT NOT NULL,                              -- JSON word boxes
    UNIQUE (document_id, number)
);
CREATE INDEX pages_by_hash ON pages (blake3);
