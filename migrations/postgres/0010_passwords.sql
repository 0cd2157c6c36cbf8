-- Signing in by name and password (the web UI's desk and archive): the password as an Argon2id PHC string
-- (algorithm, parameters, salt and hash); NULL for accounts that use tokens only (systems).
ALTER TABLE users ADD COLUMN password_hash TEXT;
