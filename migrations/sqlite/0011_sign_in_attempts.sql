-- Sign-in attempts, counted in the database so that every server of the archive counts alike: an attempt is
-- written before its password is checked and deleted when the password is right, so what stays are the
-- failures. Housekeeping deletes rows older than the counting window. Times are UNIX milliseconds.
CREATE TABLE sign_in_attempts (
    id      INTEGER PRIMARY KEY,
    account TEXT NOT NULL,
    address TEXT NOT NULL,
    at_ms   INTEGER NOT NULL
);
CREATE INDEX sign_in_attempts_by_account ON sign_in_attempts (account, at_ms);
CREATE INDEX sign_in_attempts_by_time ON sign_in_attempts (at_ms);
