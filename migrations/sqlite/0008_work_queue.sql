-- The work queue: any number of workers (in the server, or `sohoa worker` processes) claim queued jobs with
-- a lease they renew while working; a job whose worker stopped renewing is taken over once the lease has
-- run out. A failed attempt is retried after a back-off; after the last attempt the job is parked as
-- `failed` with its error. Times are UNIX milliseconds.
ALTER TABLE jobs ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN run_after INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN lease_until INTEGER;
ALTER TABLE jobs ADD COLUMN worker TEXT;
CREATE INDEX jobs_claimable ON jobs (state, run_after);

-- The job that packaged a document: recorded in the same transaction that takes its pages off the waiting
-- list, so a job interrupted after that finds its document instead of packaging the pages twice.
ALTER TABLE documents ADD COLUMN job TEXT;
CREATE INDEX documents_by_job ON documents (job) WHERE job IS NOT NULL;
