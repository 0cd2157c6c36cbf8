//! Sign-in attempts, counted in the database: every server of the archive sees the same count, so running
//! several servers does not multiply the tries a guesser gets.

use sqlx::Row;

use super::{Backend, Repo, RepoError};

/// How many failed sign-ins an account may have, and over what time.
#[derive(Debug, Clone, Copy)]
pub struct SignInLimits {
    /// From one address.
    pub per_address: i64,
    /// From every address together.
    pub overall: i64,
    /// The counting window, in milliseconds.
    pub window_ms: i64,
}

impl Repo {
    /// How long, in milliseconds, `account` must wait before trying again from `address`, when it has failed
    /// too often there or everywhere; `None` when it may try.
    pub async fn sign_in_wait(
        &self,
        account: &str,
        address: &str,
        limits: SignInLimits,
    ) -> Result<Option<i64>, RepoError> {
        let mut conn = self.pool.acquire().await?;
        sign_in_wait(self.backend, &mut conn, account, address, limits).await
    }

    /// Counts an attempt by `account` from `address` before its password is checked: `Ok` with the
    /// attempt's id (to take it back with [`Repo::sign_in_succeeded`]), or `Err` with how long to wait
    /// when the account has failed too often. Attempts on one account take turns, so requests sent at once
    /// cannot all read the count before any of them is written.
    pub async fn count_sign_in(
        &self,
        account: &str,
        address: &str,
        limits: SignInLimits,
    ) -> Result<Result<i64, i64>, RepoError> {
        let mut tx = self.begin_write().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock(7404827, hashtext($1))")
                .bind(account)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(wait) = sign_in_wait(self.backend, &mut tx, account, address, limits).await? {
            // Ends the turn (the advisory lock) now rather than when the pool gets round to it.
            tx.rollback().await?;
            return Ok(Err(wait));
        }
        let id: i64 = sqlx::query_scalar(&format!(
            "INSERT INTO sign_in_attempts (account, address, at_ms) VALUES ($1, $2, {})
             RETURNING id",
            self.backend.now_ms()
        ))
        .bind(account)
        .bind(address)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Ok(id))
    }

    /// The right password: attempt `id` no longer counts, and `account` starts afresh from `address`.
    pub async fn sign_in_succeeded(
        &self,
        id: i64,
        account: &str,
        address: &str,
    ) -> Result<(), RepoError> {
        sqlx::query(
            "DELETE FROM sign_in_attempts WHERE id = $1 OR (account = $2 AND address = $3)",
        )
        .bind(id)
        .bind(account)
        .bind(address)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Deletes the attempts older than `window_ms` (housekeeping); returns how many.
    pub async fn forget_sign_in_attempts(&self, window_ms: i64) -> Result<u64, RepoError> {
        let done = sqlx::query(&format!(
            "DELETE FROM sign_in_attempts WHERE at_ms <= {} - $1",
            self.backend.now_ms()
        ))
        .bind(window_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}

async fn sign_in_wait(
    backend: Backend,
    conn: &mut sqlx::AnyConnection,
    account: &str,
    address: &str,
    limits: SignInLimits,
) -> Result<Option<i64>, RepoError> {
    let now: i64 = sqlx::query_scalar(&format!("SELECT {}", backend.now_ms()))
        .fetch_one(&mut *conn)
        .await?;
    let row = sqlx::query(
        "SELECT CAST(COUNT(*) AS BIGINT),
                CAST(SUM(CASE WHEN address = $2 THEN 1 ELSE 0 END) AS BIGINT),
                MIN(at_ms), MIN(CASE WHEN address = $2 THEN at_ms END)
         FROM sign_in_attempts WHERE account = $1 AND at_ms > $3",
    )
    .bind(account)
    .bind(address)
    .bind(now - limits.window_ms)
    .fetch_one(&mut *conn)
    .await?;
    let overall: i64 = row.get(0);
    let here: Option<i64> = row.get(1);
    let oldest: Option<i64> = row.get(2);
    let oldest_here: Option<i64> = row.get(3);
    // Attempts past a limit are not written, so the count is at the limit and the window opens again as
    // the oldest counted attempt leaves it.
    let wait = |count: i64, limit: i64, oldest: Option<i64>| {
        (count >= limit).then(|| oldest.map_or(limits.window_ms, |at| at + limits.window_ms - now))
    };
    Ok(wait(here.unwrap_or(0), limits.per_address, oldest_here)
        .into_iter()
        .chain(wait(overall, limits.overall, oldest))
        .max()
        .map(|ms| ms.max(1_000)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: SignInLimits = SignInLimits {
        per_address: 5,
        overall: 12,
        window_ms: 15 * 60 * 1000,
    };

    #[tokio::test]
    async fn failed_sign_ins_are_counted_per_address_and_overall_and_parallel_tries_get_no_more() {
        let dir = tempfile::tempdir().unwrap();
        for repo in crate::repo::backend::test_repos(dir.path()).await {
            counts_failures(repo).await;
        }
    }

    async fn counts_failures(repo: Repo) {
        let (stranger, desk) = ("203.0.113.9", "10.0.0.3");
        // Sent at once, from one address: exactly the limit is counted.
        let tries = (0..10).map(|_| repo.count_sign_in("lan", stranger, LIMITS));
        let counted = futures::future::join_all(tries).await;
        let counted: Vec<_> = counted.into_iter().map(Result::unwrap).collect();
        assert_eq!(
            counted.iter().filter(|c| c.is_ok()).count(),
            5,
            "{counted:?}"
        );
        let wait = repo
            .sign_in_wait("lan", stranger, LIMITS)
            .await
            .unwrap()
            .expect("the stranger waits");
        assert!(wait > LIMITS.window_ms - 60_000 && wait <= LIMITS.window_ms);

        // The clerk at her own desk is not locked out, and her right password starts her afresh.
        let mine = repo.count_sign_in("lan", desk, LIMITS).await.unwrap();
        assert!(
            repo.count_sign_in("lan", desk, LIMITS)
                .await
                .unwrap()
                .is_ok()
        );
        repo.sign_in_succeeded(mine.unwrap(), "lan", desk)
            .await
            .unwrap();
        assert_eq!(repo.sign_in_wait("lan", desk, LIMITS).await.unwrap(), None);
        assert!(
            repo.sign_in_wait("lan", stranger, LIMITS)
                .await
                .unwrap()
                .is_some()
        );

        // Guessing from everywhere stops at the overall limit (5 from the stranger counted already).
        let mut allowed = 0;
        for i in 0..20 {
            let from = format!("198.51.100.{i}");
            allowed += usize::from(
                repo.count_sign_in("lan", &from, LIMITS)
                    .await
                    .unwrap()
                    .is_ok(),
            );
        }
        assert_eq!(allowed, 12 - 5);
        assert!(
            repo.sign_in_wait("lan", desk, LIMITS)
                .await
                .unwrap()
                .is_some()
        );
        // Another account is not touched.
        assert_eq!(
            repo.sign_in_wait("minh", stranger, LIMITS).await.unwrap(),
            None
        );

        // Housekeeping forgets what left the window.
        assert_eq!(
            repo.forget_sign_in_attempts(LIMITS.window_ms)
                .await
                .unwrap(),
            0
        );
        assert_eq!(repo.forget_sign_in_attempts(-1_000).await.unwrap(), 12);
        assert_eq!(
            repo.sign_in_wait("lan", stranger, LIMITS).await.unwrap(),
            None
        );
    }
}
