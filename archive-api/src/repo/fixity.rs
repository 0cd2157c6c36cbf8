//! Fixity checks of stored objects, and which stored objects are recorded.

use sqlx::Row;

use super::{Repo, RepoError};
use crate::time::now_rfc3339;

impl Repo {
    /// How many objects are recorded.
    pub async fn object_count(&self) -> Result<i64, RepoError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM objects")
            .fetch_one(&self.pool)
            .await?)
    }

    /// Up to `limit` objects never checked or last checked before `before` (RFC 3339; `None` for every
    /// object), longest-unchecked first, after `after` in that order (for paging through all of them).
    pub async fn objects_to_check(
        &self,
        before: Option<&str>,
        after: Option<(&str, &str)>,
        limit: i64,
    ) -> Result<Vec<(String, String)>, RepoError> {
        let (after_checked, after_hash) = after.unzip();
        let rows = sqlx::query(
            "SELECT blake3, COALESCE(checked_at, '') AS checked FROM objects
             WHERE ($1 IS NULL OR COALESCE(checked_at, '') < $1)
               AND ($2 IS NULL OR (COALESCE(checked_at, ''), blake3) > ($2, $3))
             ORDER BY COALESCE(checked_at, ''), blake3 LIMIT $4",
        )
        .bind(before)
        .bind(after_checked)
        .bind(after_hash)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Records one check of an object.
    pub async fn record_fixity(
        &self,
        blake3: &str,
        outcome: &str,
        detail: &str,
    ) -> Result<(), RepoError> {
        let now = now_rfc3339();
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO fixity_checks (blake3, checked_at, outcome, detail) VALUES ($1, $2, $3, $4)",
        )
        .bind(blake3)
        .bind(&now)
        .bind(outcome)
        .bind(detail)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE objects SET checked_at = $1 WHERE blake3 = $2")
            .bind(&now)
            .bind(blake3)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// How many fixity checks of `blake3` are on record.
    pub async fn fixity_check_count(&self, blake3: &str) -> Result<i64, RepoError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM fixity_checks WHERE blake3 = $1")
                .bind(blake3)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Which of `hashes` are recorded as objects (referenced by a row written in the same transaction).
    pub async fn recorded_objects(
        &self,
        hashes: &[String],
    ) -> Result<std::collections::HashSet<String>, RepoError> {
        let list = serde_json::to_string(hashes).unwrap_or_default();
        let sql = format!(
            "SELECT blake3 FROM objects WHERE {}",
            self.backend.in_json_list("blake3", "$1")
        );
        let rows = sqlx::query(&sql).bind(list).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }
}
