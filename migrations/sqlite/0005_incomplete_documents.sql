-- A scan that stopped early (paper jam, cover open, cancelled, device gone) keeps the pages it delivered: the
-- document is recorded with them, and marked incomplete with the reason, for the clerk to finish.
ALTER TABLE documents ADD COLUMN incomplete TEXT;
