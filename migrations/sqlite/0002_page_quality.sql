-- Page cleanup (orientation, deskew, blank pages) and the quality flags the clerk sees.

-- JSON of the page's quality flags: blank, low_confidence, low_resolution, rotated_degrees,
-- deskewed_degrees, orientation_uncertain.
ALTER TABLE pages ADD COLUMN quality TEXT NOT NULL DEFAULT '{}';
-- Short flag names, comma-separated, for filtering: blank,low-confidence,low-resolution,rotated,...
ALTER TABLE pages ADD COLUMN flags TEXT NOT NULL DEFAULT '';
-- JSON of how the page OCR read maps onto the master (scale, quarter turns, deskew): word boxes are on the
-- page OCR read.
ALTER TABLE pages ADD COLUMN geometry TEXT NOT NULL DEFAULT 'null';
-- The page's number in the packaged PDF; NULL for a page left out of it (a blank page).
ALTER TABLE pages ADD COLUMN pdf_page INTEGER;
UPDATE pages SET pdf_page = number;
