//! Processing jobs with their progress, the work queue workers claim them from, and the answers kept for
//! idempotent retries.

use serde::Serialize;
use sqlx::Row;

use super::{Repo, RepoError};
use crate::time::now_rfc3339;

/// A processing job as recorded.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct JobRecord {
    /// Its id.
    pub id: String,
    /// What it does: `package`.
    pub kind: String,
    /// `queued`, `running`, `done` or `failed`.
    pub state: String,
    /// The dossier it works on.
    pub dossier: String,
    /// Who asked for it.
    pub actor: String,
    /// Pages to process, once known.
    pub total: Option<i64>,
    /// Pages processed.
    pub done: i64,
    /// Pages that failed.
    pub failed: i64,
    /// The report when done (the packaged document).
    #[schema(value_type = Option<Object>)]
    pub result: Option<serde_json::Value>,
    /// Why it failed.
    pub error: Option<String>,
    /// When it was asked for.
    pub created_at: String,
    /// When it last changed.
    pub updated_at: String,
    /// Attempts started so far.
    pub attempts: i64,
    /// The worker holding the job while it runs.
    pub worker: Option<String>,
    /// What to do (JSON).
    #[serde(skip)]
    pub request: String,
}

/// The PostgreSQL channel on which workers announce each change of a job (JSON [`JobAnnouncement`]), so
/// a server streams the progress of jobs run by other processes page by page.
pub const JOB_CHANNEL: &str = "sohoa_jobs";

/// What a worker announces of a job's change.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct JobAnnouncement {
    /// The job.
    pub id: String,
    /// Its state now.
    pub state: String,
    /// Pages processed.
    pub done: i64,
    /// Pages to process, once known.
    pub total: Option<i64>,
    /// Pages that failed.
    pub failed: i64,
}

/// An answer kept under an idempotency key.
#[derive(Debug, Clone)]
pub struct KeptAnswer {
    /// Fingerprint of the request that got it.
    pub fingerprint: String,
    /// HTTP status.
    pub status: u16,
    /// Body (JSON).
    pub response: String,
}

const JOB_FIELDS: &str = "id, kind, state, dossier, actor, total, done, failed, result, error, created_at, \
                          updated_at, request, attempts, worker";
const JOB_COLUMNS: &str = "SELECT id, kind, state, dossier, actor, total, done, failed, result, error, \
                           created_at, updated_at, request, attempts, worker FROM jobs";

fn job(row: &sqlx::any::AnyRow) -> JobRecord {
    JobRecord {
        id: row.get(0),
        kind: row.get(1),
        state: row.get(2),
        dossier: row.get(3),
        actor: row.get(4),
        total: row.get(5),
        done: row.get(6),
        failed: row.get(7),
        result: row
            .get::<Option<String>, _>(8)
            .and_then(|r| serde_json::from_str(&r).ok()),
        error: row.get(9),
        created_at: row.get(10),
        updated_at: row.get(11),
        request: row.get(12),
        attempts: row.get(13),
        worker: row.get(14),
    }
}

impl Repo {
    /// Records a new queued job.
    pub async fn create_job(
        &self,
        id: &str,
        kind: &str,
        dossier: &str,
        actor: &str,
        request: &str,
    ) -> Result<JobRecord, RepoError> {
        let now = now_rfc3339();
        sqlx::query(
            "INSERT INTO jobs (id, kind, state, dossier, actor, request, created_at, updated_at)
             VALUES ($1, $2, 'queued', $3, $4, $5, $6, $7)",
        )
        .bind(id)
        .bind(kind)
        .bind(dossier)
        .bind(actor)
        .bind(request)
        .bind(&now)
        .bind(&now)
        .execute(&self.pool)
        .await?;
        self.job(id)
            .await?
            .ok_or_else(|| RepoError::NotFound(format!("job {id} vanished")))
    }

    /// A job by id.
    pub async fn job(&self, id: &str) -> Result<Option<JobRecord>, RepoError> {
        let sql = format!("{JOB_COLUMNS} WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(job))
    }

    /// Jobs not finished (queued, or running when the server stopped), oldest first.
    pub async fn unfinished_jobs(&self) -> Result<Vec<JobRecord>, RepoError> {
        let sql = format!("{JOB_COLUMNS} WHERE state IN ('queued', 'running') ORDER BY created_at");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(job).collect())
    }

    /// How many jobs wait or run.
    pub async fn queue_depth(&self) -> Result<i64, RepoError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'running')")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Claims the oldest job ready to run (queued and past its back-off, or running under a lease that
    /// ran out) for `worker`, leased for `lease_ms` by the database's clock, counting an attempt.
    /// Concurrent claimers never get the same job.
    pub async fn claim_job(
        &self,
        worker: &str,
        lease_ms: i64,
    ) -> Result<Option<JobRecord>, RepoError> {
        let now = self.backend.now_ms();
        let sql = format!(
            "UPDATE jobs SET state = 'running', worker = $1, lease_until = {now} + $2,
                    attempts = attempts + 1, updated_at = $3
             WHERE id = (SELECT id FROM jobs
                         WHERE (state = 'queued' AND run_after <= {now})
                            OR (state = 'running' AND lease_until < {now})
                         ORDER BY created_at, id LIMIT 1{})
             RETURNING {JOB_FIELDS}",
            self.backend.skip_locked()
        );
        let row = sqlx::query(&sql)
            .bind(worker)
            .bind(lease_ms)
            .bind(now_rfc3339())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(job))
    }

    /// Extends `worker`'s lease on job `id` to `lease_ms` from now by the database's clock; `false` if
    /// the job is no longer `worker`'s (its lease ran out and another worker took it, or it ended).
    pub async fn renew_lease(
        &self,
        id: &str,
        worker: &str,
        lease_ms: i64,
    ) -> Result<bool, RepoError> {
        let sql = format!(
            "UPDATE jobs SET lease_until = {} + $1 WHERE id = $2 AND worker = $3 AND state = 'running'",
            self.backend.now_ms()
        );
        let done = sqlx::query(&sql)
            .bind(lease_ms)
            .bind(id)
            .bind(worker)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Running jobs and the workers holding them.
    pub async fn held_jobs(&self) -> Result<Vec<(String, String)>, RepoError> {
        let rows = sqlx::query(
            "SELECT id, worker FROM jobs WHERE state = 'running' AND worker IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Puts job `id` back in the queue at once if `worker` still holds it (a worker known to be gone).
    pub async fn release_job(&self, id: &str, worker: &str) -> Result<bool, RepoError> {
        let done = sqlx::query(
            "UPDATE jobs SET state = 'queued', worker = NULL, lease_until = NULL, run_after = 0
             WHERE id = $1 AND worker = $2 AND state = 'running'",
        )
        .bind(id)
        .bind(worker)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// After a failed attempt by `worker`: queues job `id` again to run `retry_in_ms` from now by the
    /// database's clock, or with `None` parks it as failed for good. Either way the error is kept.
    pub async fn retry_or_park(
        &self,
        id: &str,
        worker: &str,
        why: &str,
        retry_in_ms: Option<i64>,
    ) -> Result<(), RepoError> {
        let (state, run_after) = match retry_in_ms {
            Some(_) => ("queued", format!("{} + $2", self.backend.now_ms())),
            None => ("failed", "$2".to_owned()),
        };
        let sql = format!(
            "UPDATE jobs SET state = $1, run_after = {run_after}, error = $3, worker = NULL,
                    lease_until = NULL, updated_at = $4
             WHERE id = $5 AND worker = $6 AND state = 'running'"
        );
        sqlx::query(&sql)
            .bind(state)
            .bind(retry_in_ms.unwrap_or(0))
            .bind(why)
            .bind(now_rfc3339())
            .bind(id)
            .bind(worker)
            .execute(&self.pool)
            .await?;
        self.announce(id).await
    }

    /// Forgets the answers kept under idempotency keys before `before` (RFC 3339); returns how many.
    pub async fn expire_idempotency_keys(&self, before: &str) -> Result<u64, RepoError> {
        let done = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// The document a job recorded, if it got that far: (BLAKE3 of the PDF, page count).
    pub async fn document_of_job(&self, id: &str) -> Result<Option<(String, i64)>, RepoError> {
        let row = sqlx::query("SELECT blake3, page_count FROM documents WHERE job = $1 LIMIT 1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }

    /// Records a job's progress, if `worker` still holds it.
    pub async fn job_progress(
        &self,
        id: &str,
        worker: &str,
        done: i64,
        total: Option<i64>,
        failed: i64,
    ) -> Result<(), RepoError> {
        let updated = sqlx::query(
            "UPDATE jobs SET done = $1, total = COALESCE($2, total), failed = $3, updated_at = $4
             WHERE id = $5 AND worker = $6 AND state = 'running'",
        )
        .bind(done)
        .bind(total)
        .bind(failed)
        .bind(now_rfc3339())
        .bind(id)
        .bind(worker)
        .execute(&self.pool)
        .await?;
        if updated.rows_affected() == 0 {
            return Ok(());
        }
        self.announce(id).await
    }

    /// Announces job `id` as it now is to other processes (PostgreSQL only).
    async fn announce(&self, id: &str) -> Result<(), RepoError> {
        if self.backend != super::Backend::Postgres {
            return Ok(());
        }
        let Some(job) = self.job(id).await? else {
            return Ok(());
        };
        let announcement = JobAnnouncement {
            id: job.id,
            state: job.state,
            done: job.done,
            total: job.total,
            failed: job.failed,
        };
        let payload = serde_json::to_string(&announcement).unwrap_or_default();
        self.notify(JOB_CHANNEL, &payload).await
    }

    /// Records how a job ended, if `worker` still holds it: its report, or why it failed for good.
    pub async fn finish_job(
        &self,
        id: &str,
        worker: &str,
        result: Result<&serde_json::Value, &str>,
    ) -> Result<(), RepoError> {
        let (state, result, error) = match result {
            Ok(report) => ("done", Some(report.to_string()), None),
            Err(why) => ("failed", None, Some(why)),
        };
        sqlx::query(
            "UPDATE jobs SET state = $1, result = $2, error = $3, updated_at = $4, worker = NULL,
                    lease_until = NULL
             WHERE id = $5 AND worker = $6 AND state = 'running'",
        )
        .bind(state)
        .bind(result)
        .bind(error)
        .bind(now_rfc3339())
        .bind(id)
        .bind(worker)
        .execute(&self.pool)
        .await?;
        self.announce(id).await
    }

    /// The answer kept for `actor`'s `key`, if any.
    pub async fn kept_answer(
        &self,
        actor: &str,
        key: &str,
    ) -> Result<Option<KeptAnswer>, RepoError> {
        let row = sqlx::query(
            "SELECT fingerprint, status, response FROM idempotency_keys WHERE actor = $1 AND key = $2",
        )
        .bind(actor)
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| KeptAnswer {
            fingerprint: r.get(0),
            status: r.get::<i64, _>(1).try_into().unwrap_or(500),
            response: r.get(2),
        }))
    }

    /// Keeps the answer to `actor`'s `key`; if another request kept one first, returns that one instead.
    pub async fn keep_answer(
        &self,
        actor: &str,
        key: &str,
        answer: &KeptAnswer,
    ) -> Result<KeptAnswer, RepoError> {
        sqlx::query(
            "INSERT INTO idempotency_keys (actor, key, fingerprint, status, response, created_at)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (actor, key) DO NOTHING",
        )
        .bind(actor)
        .bind(key)
        .bind(&answer.fingerprint)
        .bind(i64::from(answer.status))
        .bind(&answer.response)
        .bind(now_rfc3339())
        .execute(&self.pool)
        .await?;
        Ok(self
            .kept_answer(actor, key)
            .await?
            .unwrap_or_else(|| answer.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local_ms() -> i64 {
        i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis(),
        )
        .unwrap()
    }

    async fn lease_until(repo: &Repo, id: &str) -> (Option<i64>, i64) {
        let row = sqlx::query("SELECT lease_until, run_after FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_one(&repo.pool)
            .await
            .unwrap();
        (row.get(0), row.get(1))
    }

    /// Leases and back-offs are reckoned on the database's clock, in milliseconds, on either engine.
    #[tokio::test]
    async fn leases_and_back_offs_run_on_the_database_clock() {
        let dir = tempfile::tempdir().unwrap();
        for repo in crate::repo::backend::test_repos(dir.path()).await {
            repo.create_job("j1", "package", "D-1", "lan", "{}")
                .await
                .unwrap();

            let before = local_ms();
            let claimed = repo.claim_job("w1", 30_000).await.unwrap().unwrap();
            let after = local_ms();
            assert_eq!((claimed.id.as_str(), claimed.attempts), ("j1", 1));
            let (lease, _) = lease_until(&repo, "j1").await;
            let lease = lease.unwrap();
            // This test's database runs on this machine: its clock is ours, give or take a second.
            assert!(
                (before + 29_000..=after + 31_000).contains(&lease),
                "lease until {lease}, claimed between {before} and {after}"
            );
            assert!(
                repo.claim_job("w2", 30_000).await.unwrap().is_none(),
                "leased"
            );
            assert!(repo.renew_lease("j1", "w1", 60_000).await.unwrap());
            assert!(
                !repo.renew_lease("j1", "w2", 60_000).await.unwrap(),
                "not w2's"
            );
            assert!(lease_until(&repo, "j1").await.0.unwrap() >= lease + 29_000);

            repo.retry_or_park("j1", "w1", "store away", Some(60_000))
                .await
                .unwrap();
            let (lease, run_after) = lease_until(&repo, "j1").await;
            assert_eq!(lease, None);
            assert!((before + 59_000..=local_ms() + 61_000).contains(&run_after));
            assert!(
                repo.claim_job("w2", 30_000).await.unwrap().is_none(),
                "backing off for a minute"
            );

            sqlx::query("UPDATE jobs SET run_after = run_after - 61000")
                .execute(&repo.pool)
                .await
                .unwrap();
            let again = repo.claim_job("w2", 30_000).await.unwrap().unwrap();
            assert_eq!((again.attempts, again.worker.as_deref()), (2, Some("w2")));
            repo.retry_or_park("j1", "w2", "bad page", None)
                .await
                .unwrap();
            assert_eq!(repo.job("j1").await.unwrap().unwrap().state, "failed");
            assert!(repo.claim_job("w3", 30_000).await.unwrap().is_none());
        }
    }
}
