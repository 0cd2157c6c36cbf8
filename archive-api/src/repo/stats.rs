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
        // and not refused, withdrawn or stopped (3, 7, 8).
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
                        (SELECT COUNT(*) FROM result_reuses r WHERE r.dossier_id = d.id) AS reuses
                 FROM dossiers d LEFT JOIN units u ON u.code = d.unit_code
                 WHERE ($3 IS NULL OR d.unit_code = $3) AND ($4 IS NULL OR u.level = $4)
                   AND ($5 IS NULL OR {in_units})
             )
             SELECT key,
               CAST(SUM(CASE WHEN received_day < $1 AND status NOT IN (3, 7, 8)
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
                   AND status NOT IN (3, 5, 6, 7, 8) THEN 1 ELSE 0 END) AS BIGINT),
               CAST(SUM(CASE WHEN received_day < $2 AND (resolved_day IS NULL OR resolved_day >= $2) AND status IN (5, 6) THEN 1 ELSE 0 END) AS BIGINT),
               CAST(SUM(CASE WHEN received_day >= $1 AND received_day < $2 AND has_components THEN 1 ELSE 0 END) AS BIGINT),
               CAST(SUM(CASE WHEN received_day >= $1 AND received_day < $2 THEN page_count ELSE 0 END) AS BIGINT),
               CAST(SUM(CASE WHEN resolved_day >= $1 AND resolved_day < $2 AND has_result THEN 1 ELSE 0 END) AS BIGINT),
               CAST(SUM(CASE WHEN received_day >= $1 AND received_day < $2 THEN reuses ELSE 0 END) AS BIGINT)
             FROM scoped GROUP BY key ORDER BY key",
            in_units = self.backend.in_json_list("d.unit_code", "$5"),
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

fn percent(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| (part as f64 * 10_000.0 / whole as f64).round() / 100.0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn shares_are_percent_with_two_decimals() {
        // The province's published figure: 73,385 of 73,427 on time.
        assert_eq!(super::percent(73_385, 73_427), Some(99.94));
        assert_eq!(super::percent(1, 0), None);
    }
}
