-- Certified copies (bản sao điện tử có chứng thực): a document's PDF with the unit's certification line and
-- digital signature, stored as an object of its own. One copy per document and signing certificate is kept
-- and served again; every issue of a copy is recorded.
CREATE TABLE copies (
    blake3       TEXT PRIMARY KEY REFERENCES objects (blake3),  -- the certified copy's PDF
    document     TEXT NOT NULL,                                 -- BLAKE3 of the archived document's PDF
    unit_code    TEXT NOT NULL,                                 -- the certifying unit
    certificate  TEXT NOT NULL,                                 -- SHA-256 of the signer's certificate (DER)
    subject      TEXT NOT NULL,                                 -- the certificate's subject
    development  INTEGER NOT NULL,                              -- signed with the development certificate
    signed_at    TEXT NOT NULL,                                 -- RFC 3339, +07:00
    created_at   TEXT NOT NULL
);
CREATE INDEX copies_by_document ON copies (document, certificate);

-- Append-only: who was given which copy, when.
CREATE TABLE copy_issues (
    id         INTEGER PRIMARY KEY,
    copy       TEXT NOT NULL REFERENCES copies (blake3),
    document   TEXT NOT NULL,
    issued_to  TEXT NOT NULL,       -- the caller: command-line user or HTTP client address
    issued_at  TEXT NOT NULL
);
CREATE INDEX copy_issues_by_document ON copy_issues (document, issued_at);
