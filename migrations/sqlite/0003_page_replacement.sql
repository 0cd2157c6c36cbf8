-- A flagged page rescanned and replaced: the document is packaged again as a new document that replaces the
-- old one. The old document stays stored and recorded (what was archived is never deleted) but leaves
-- search results.
ALTER TABLE documents ADD COLUMN replaces TEXT;        -- BLAKE3 of the document this one replaces
ALTER TABLE documents ADD COLUMN superseded_by TEXT;   -- BLAKE3 of the document that replaced this one
CREATE INDEX documents_superseded ON documents (superseded_by) WHERE superseded_by IS NOT NULL;
