//! The warehouse statistics provinces publish, per unit or level and period.
//!
//! Periods are whole days in Vietnam time, `from` and `to` inclusive. Every time is stored as RFC 3339 in
//! +07:00, so its first ten characters are its Vietnamese date and compare as text.

use serde::Serialize;
use sqlx::Row;

use super::{Repo, RepoError};

/// How to split the figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatsGroup {
    /// One row per unit.
    Unit,
    /// One row per level (province, district, commune; empty for units not registered).
    Level,
    /// One row for everything.
    Total,
}

/// What to count.
#[derive(Debug, Clone)]
pub struct StatsQuery {
    /// First day, `YYYY-MM-DD`.
    pub from: String,
    /// The day after the last, `YYYY-MM-DD`.
    pub until: String,
    /// Only this unit.
    pub unit: Option<String>,
    /// Only units of this level.
    pub level: Option<String>,
    /// Only these units (the caller's scope); `None` for all.
    pub units: Option<Vec<String>>,
    /// How to split.
    pub group: StatsGroup,
}

/// The figures for one unit, level, or the whole.
#[derive(Debug, Clone, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct StatsRow {
    /// The unit code or level this row counts; `total` for the whole.
    pub key: String,
    /// Received before the period and still open at its start.
    pub carried_over: i64,
    /// Received in the period.
    pub received: i64,
    /// Of those, received in person.
    pub in_person: i64,
    /// Received online.
    pub online: i64,
    /// Received by post.
    pub postal: i64,
    /// Resolved in the period.
    pub resolved: i64,
    /// Resolved before their due day.
    pub early: i64,
    /// Resolved on their due day (or with no due time).
    pub on_time: i64,
    /// Resolved after their due day.
    pub late: i64,
    /// Open at the end of the period and being processed.
    pub in_progress: i64,
    /// Open at the end of the period and waiting on the citizen (statuses 5 and 6).
    pub paused: i64,
    /// Received in the period with digitized components.
    pub digitized: i64,
    /// Pages digitized for dossiers received in the period.
    pub digitized_pages: i64,
    /// Resolved in the period with a digitized (electronic) result.
    pub electronic_result: i64,
    /// Digitized results reused by dossiers received in the period.
    pub reused_results: i64,
    /// Share resolved early or on time, percent (two decimals); absent when none were resolved.
    pub on_time_rate: Option<f64>,
    /// Share received online, percent (two decimals); absent when none were received.
    pub online_share: Option<f64>,
}

impl Repo {
    /// Counts the figures of `query`, one row per group, and a `total` row last.
    pub async fn stats(&self, query: &StatsQuery) -> Result<Vec<StatsRow>, RepoError> {
        let key = match query.group {
            StatsGroup::Unit => "d.unit_code",
            StatsGroup::Level => "COALESCE(u.level, '')",
            StatsGroup::Total => "'total'",
        };
        let mut rows = self.stats_grouped(query, key).await?;
        if query.group != StatsGroup::Total {
            rows.extend(self.stats_grouped(query, "'total'").await?);
        }
        Ok(rows)
    }

    async fn stats_grouped(
        &self,
        query: &StatsQuery,
        key: &str,
    ) -> Result<Vec<StatsRow>, RepoError> {
        // $1 first day, $2 day after the last. `open` = not closed before a date: not resolved by then
        // and not refused, withdrawn or stopped (3, 7, 8), by the status the dossier had then.
        let sql = format!(
            "WITH scoped AS (
                 SELECT d.*, {key} AS key,
                        substr(d.received_at, 1, 10) AS received_day,
                        substr(d.resolved_at, 1, 10) AS resolved_day,
                        substr(d.due_at, 1, 10) AS due_day,
                        EXISTS (SELECT 1 FROM documents doc WHERE doc.dossier_id = d.id
                                AND doc.kind = 'submitted' AND doc.superseded_by IS NULL) AS has_components,
                        EXISTS (SELECT 1 FROM documents doc WHERE doc.dossier_id = d.id
                                AND doc.kind = 'result' AND doc.superseded_by IS NULL) AS has_result,
                        (SELECT COUNT(*) FROM pages p JOIN documents doc ON doc.id = p.document_id
                          WHERE doc.dossier_id = d.id AND doc.superseded_by IS NULL) AS page_count,
                        (SELECT COUNT(*) FROM result_reuses r WHERE r.dossier_id = d.id) AS reuses,
                        {status_at_start} AS status_at_start,
                        {status_at_end} AS status_at_end
                 FROM dossiers d LEFT JOIN units u ON u.code = d.unit_code
                 WHERE ($3 IS NULL OR d.unit_code = $3) AND ($4 IS NULL OR u.level = $4)
                   AND ($5 IS NULL OR {in_units})
             )
             SELECT key,
               CAST(SUM(CASE WHEN received_day < $1 AND status_at_start NOT IN (3, 7, 8)
                   AND (resolved_day IS NULL OR resolved_day >= $1) THEN 1 ELSE 0 END) AS BIGINT),
               CAST(SUM(CASE WHEN received_day >= $1 AND received_day < $2 THEN 1 ELSE 0 END) AS BIGINT),
               CAST(SUM(CASE WHEN received_day >= $1 AND received_day < $2 AND channel = 1 THEN 1 ELSE 0 END) AS BIGINT),
               CAST(SUM(CASE WHEN received_day >= $1 AND received_day < $2 AND channel = 2 THEN 1 ELSE 0 END) AS BIGINT),
               CAST(SUM(CASE WHEN received_day >= $1 AND received_day < $2 AND channel = 3 THEN 1 ELSE 0 END) AS BIGINT),
               CAST(SUM(CASE WHEN resolved_day >= $1 AND resolved_day < $2 THEN 1 ELSE 0 END) AS BIGINT),
               CAST(SUM(CASE WHEN resolved_day >= $1 AND resolved_day < $2 AND due_day IS NOT NULL AND resolved_day < due_day THEN 1 ELSE 0 END) AS BIGINT),
               CAST(SUM(CASE WHEN resolved_day >= $1 AND resolved_day < $2 AND (due_day IS NULL OR resolved_day = due_day) THEN 1 ELSE 0 END) AS BIGINT),
               CAST(SUM(CASE WHEN resolved_day >= $1 AND resolved_day < $2 AND due_day IS NOT NULL AND resolved_day > due_day THEN 1 ELSE 0 END) AS BIGINT),
               CAST(SUM(CASE WHEN received_day < $2 AND (resolved_day IS NULL OR resolved_day >= $2)
                   AND status_at_end NOT IN (3, 5, 6, 7, 8) THEN 1 ELSE 0 END) AS BIGINT),
               CAST(SUM(CASE WHEN received_day < $2 AND (resolved_day IS NULL OR resolved_day >= $2) AND status_at_end IN (5, 6) THEN 1 ELSE 0 END) AS BIGINT),
               CAST(SUM(CASE WHEN received_day >= $1 AND received_day < $2 AND has_components THEN 1 ELSE 0 END) AS BIGINT),
               CAST(SUM(CASE WHEN received_day >= $1 AND received_day < $2 THEN page_count ELSE 0 END) AS BIGINT),
               CAST(SUM(CASE WHEN resolved_day >= $1 AND resolved_day < $2 AND has_result THEN 1 ELSE 0 END) AS BIGINT),
               CAST(SUM(CASE WHEN received_day >= $1 AND received_day < $2 THEN reuses ELSE 0 END) AS BIGINT)
             FROM scoped GROUP BY key ORDER BY key",
            in_units = self.backend.in_json_list("d.unit_code", "$5"),
            status_at_start = status_on("$1"),
            status_at_end = status_on("$2"),
        );
        let units = query
            .units
            .as_ref()
            .map(|units| serde_json::to_string(units).unwrap_or_default());
        let rows = sqlx::query(&sql)
            .bind(&query.from)
            .bind(&query.until)
            .bind(&query.unit)
            .bind(&query.level)
            .bind(units)
            .fetch_all(&self.pool)
            .await?;
        let mut out: Vec<StatsRow> = rows
            .iter()
            .map(|r| {
                let n = |i: usize| r.get::<Option<i64>, _>(i).unwrap_or(0);
                let mut row = StatsRow {
                    key: r.get(0),
                    carried_over: n(1),
                    received: n(2),
                    in_person: n(3),
                    online: n(4),
                    postal: n(5),
                    resolved: n(6),
                    early: n(7),
                    on_time: n(8),
                    late: n(9),
                    in_progress: n(10),
                    paused: n(11),
                    digitized: n(12),
                    digitized_pages: n(13),
                    electronic_result: n(14),
                    reused_results: n(15),
                    ..Default::default()
                };
                row.on_time_rate = percent(row.early + row.on_time, row.resolved);
                row.online_share = percent(row.online, row.received);
                row
            })
            .collect();
        if out.is_empty() && key == "'total'" {
            out.push(StatsRow {
                key: "total".to_owned(),
                ..Default::default()
            });
        }
        Ok(out)
    }
}

/// The status dossier `d` had at the start of `day` (a bound `YYYY-MM-DD`): the status before its first
/// change on or after that day, else its status now (so the current period always counts the live
/// status, whatever the history says).
fn status_on(day: &str) -> String {
    format!(
        "COALESCE(
             (SELECT s.status_before FROM status_changes s
               WHERE s.dossier_id = d.id AND substr(s.at, 1, 10) >= {day} ORDER BY s.id LIMIT 1),
             d.status)"
    )
}

fn percent(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| (part as f64 * 10_000.0 / whole as f64).round() / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::{DossierCode, ProcedureCode, UnitCode};
    use crate::repo::{DossierChange, DossierDetails, NewDossier};

    /// A dossier received on 2023-01-10 and paused on 2023-02-15 (additional documents requested, 5) is
    /// in progress at the end of January and paused at the end of February, whatever it is now; resumed
    /// (4) on the first day of March, it is still paused when March starts and in progress at its end;
    /// withdrawn (7) in April, it is closed at the end of April.
    #[tokio::test]
    async fn a_past_period_counts_each_dossier_by_its_status_then() {
        let dir = tempfile::tempdir().unwrap();
        for repo in crate::repo::backend::test_repos(dir.path()).await {
            counts_by_status_then(repo).await;
        }
    }

    async fn counts_by_status_then(repo: Repo) {
        let code = "000.00.15.H27-230110-0001";
        let details = DossierDetails {
            dossier: NewDossier {
                code: DossierCode::parse(code).unwrap(),
                procedure: ProcedureCode::parse("1.001234").unwrap(),
                unit: UnitCode::parse("000.00.15.H27").unwrap(),
            },
            applicant: "Nguyễn Văn An".to_owned(),
            received_at: "2023-01-10T09:00:00+07:00".to_owned(),
            due_at: None,
            resolved_at: None,
            status: 4,
            channel: 1,
        };
        repo.create_dossier(&details).await.unwrap();
        // Changes recorded now; the history is dated as the desk would have dated it.
        for status in [5, 5, 4, 7] {
            let change = DossierChange {
                status: Some(status),
                ..Default::default()
            };
            repo.update_dossier(code, &change).await.unwrap().unwrap();
        }
        let recorded: Vec<(i64, i64)> =
            sqlx::query_as("SELECT status_before, status FROM status_changes ORDER BY id")
                .fetch_all(&repo.pool)
                .await
                .unwrap();
        assert_eq!(
            recorded,
            [(4, 5), (5, 4), (4, 7)],
            "an unchanged status is no change"
        );
        for (id, at) in [
            (1, "2023-02-15T10:00:00+07:00"),
            (2, "2023-03-01T08:00:00+07:00"),
            (3, "2023-04-02T16:30:00+07:00"),
        ] {
            sqlx::query("UPDATE status_changes SET at = $1 WHERE id = (SELECT MIN(id) + $2 FROM status_changes)")
                .bind(at)
                .bind(id - 1)
                .execute(&repo.pool)
                .await
                .unwrap();
        }
        let figures = |from: &str, until: &str| {
            let query = StatsQuery {
                from: from.to_owned(),
                until: until.to_owned(),
                unit: None,
                level: None,
                units: None,
                group: StatsGroup::Total,
            };
            let repo = repo.clone();
            async move {
                let row = repo.stats(&query).await.unwrap().remove(0);
                (row.carried_over, row.in_progress, row.paused)
            }
        };
        assert_eq!(
            figures("2023-01-01", "2023-02-01").await,
            (0, 1, 0),
            "January"
        );
        assert_eq!(
            figures("2023-02-01", "2023-03-01").await,
            (1, 0, 1),
            "February"
        );
        assert_eq!(
            figures("2023-03-01", "2023-04-01").await,
            (1, 1, 0),
            "March"
        );
        // Withdrawn in April: closed at the end of it, and not carried into May.
        assert_eq!(
            figures("2023-04-01", "2023-05-01").await,
            (1, 0, 0),
            "April"
        );
        assert_eq!(figures("2023-05-01", "2023-06-01").await, (0, 0, 0), "May");
    }

    #[test]
    fn shares_are_percent_with_two_decimals() {
        // The province's published figure: 73,385 of 73,427 on time.
        assert_eq!(super::percent(73_385, 73_427), Some(99.94));
        assert_eq!(super::percent(1, 0), None);
    }
}
