-- A password an administrator set for someone else is temporary (1): its owner's signed-in sessions may
-- only change it (`PUT /v1/me/password`) until they do.
ALTER TABLE users ADD COLUMN password_temporary BIGINT NOT NULL DEFAULT 0;
