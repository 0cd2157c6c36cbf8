-- Fixity: every check of a stored object against its recorded BLAKE3, and when each object was last checked
-- (the background pass checks the longest-unchecked first).
CREATE TABLE fixity_checks (
    id         INTEGER PRIMARY KEY,
    blake3     TEXT NOT NULL,
    checked_at TEXT NOT NULL,                       -- RFC 3339, +07:00
    outcome    TEXT NOT NULL CHECK (outcome IN ('ok', 'missing', 'corrupt', 'unreadable')),
    detail     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX fixity_by_object ON fixity_checks (blake3, id);
ALTER TABLE objects ADD COLUMN checked_at TEXT;
CREATE INDEX objects_by_check ON objects (checked_at);
