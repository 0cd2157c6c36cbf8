-- Each change of a dossier's status (from which to which, when), so the statistics of a past period count a
-- dossier by the status it had then: open, waiting on the citizen, or closed. A dossier with no change
-- recorded had its current status all along. Times are RFC 3339 in Vietnam time, like every other.
CREATE TABLE status_changes (
    id            INTEGER PRIMARY KEY,
    dossier_id    INTEGER NOT NULL REFERENCES dossiers (id),
    status_before INTEGER NOT NULL,
    status        INTEGER NOT NULL,
    at            TEXT NOT NULL
);
CREATE INDEX status_changes_by_dossier ON status_changes (dossier_id, id);
