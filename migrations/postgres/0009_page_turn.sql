-- A waiting page turned by the clerk before packaging: quarter turns clockwise (0-3), read instead of the
-- orientation the OCR engine would detect. The scanner's image is kept as it is; the PDF shows it turned.
ALTER TABLE pending_pages ADD COLUMN turn BIGINT NOT NULL DEFAULT 0 CHECK (turn BETWEEN 0 AND 3);
