//! Fixity: every stored object read back and hashed against the BLAKE3 it is recorded under, every check
//! recorded. Run whole by `sohoa audit`, and a little at a time by the server's background pass (the
//! longest-unchecked objects first), so a flipped bit or a lost file is found before anyone asks for it.

use serde::Serialize;

use crate::archive::Archive;
use crate::blobs::BlobError;
use crate::codes::ContentHash;
use crate::repo::RepoError;

/// What a check found wrong with one object.
#[derive(Debug, Clone, Serialize)]
pub struct FixityProblem {
    /// The object's BLAKE3.
    pub blake3: String,
    /// `missing`, `corrupt` or `unreadable`.
    pub outcome: &'static str,
    /// In words.
    pub detail: String,
}

/// The result of a fixity pass.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FixityReport {
    /// Objects checked.
    pub checked: usize,
    /// Of those, intact.
    pub ok: usize,
    /// The others.
    pub problems: Vec<FixityProblem>,
}

/// Objects read per database page during a pass.
const BATCH: i64 = 200;

impl Archive {
    /// Checks stored objects against their recorded hashes: every object when `older_than` is `None`,
    /// else those not checked since then (RFC 3339), at most `limit`. Each check is recorded; `progress`
    /// is told (checked, total) after each object.
    pub async fn check_fixity(
        &self,
        older_than: Option<&str>,
        limit: Option<usize>,
        progress: impl Fn(usize, usize),
    ) -> Result<FixityReport, RepoError> {
        let total = usize::try_from(self.repo().object_count().await?).unwrap_or(0);
        let total = limit.map_or(total, |l| l.min(total));
        let mut report = FixityReport::default();
        // Objects checked in this pass get a later time and fall out of it.
        let started = crate::time::now_rfc3339();
        let before = older_than.map_or(started.clone(), |o| o.min(started.as_str()).to_owned());
        let mut after: Option<(String, String)> = None;
        'pages: loop {
            let page = self
                .repo()
                .objects_to_check(
                    Some(&before),
                    after.as_ref().map(|(c, h)| (c.as_str(), h.as_str())),
                    BATCH,
                )
                .await?;
            let Some(last) = page.last() else { break };
            after = Some((last.1.clone(), last.0.clone()));
            for (blake3, _) in page {
                if limit.is_some_and(|l| report.checked >= l) {
                    break 'pages;
                }
                let problem = self.check_object(&blake3).await;
                let (outcome, detail) = problem
                    .as_ref()
                    .map_or(("ok", String::new()), |p| (p.outcome, p.detail.clone()));
                self.repo().record_fixity(&blake3, outcome, &detail).await?;
                report.checked += 1;
                match problem {
                    None => report.ok += 1,
                    Some(problem) => {
                        tracing::error!(object = %problem.blake3, outcome = problem.outcome, detail = %problem.detail, "fixity check failed");
                        report.problems.push(problem);
                    }
                }
                progress(report.checked, total);
            }
        }
        Ok(report)
    }

    async fn check_object(&self, blake3: &str) -> Option<FixityProblem> {
        let problem = |outcome, detail: String| {
            Some(FixityProblem {
                blake3: blake3.to_owned(),
                outcome,
                detail,
            })
        };
        let hash = match ContentHash::parse(blake3) {
            Ok(hash) => hash,
            Err(e) => return problem("unreadable", format!("the recorded hash is damaged: {e}")),
        };
        match self.blobs().get(&hash).await {
            Ok(_) => None,
            Err(BlobError::NotFound(_)) => problem(
                "missing",
                "recorded in the database but not in the object store; restore it from backup"
                    .into(),
            ),
            Err(e @ BlobError::Corrupt { .. }) => {
                problem("corrupt", format!("{e}; restore it from backup"))
            }
            Err(e) => problem("unreadable", e.to_string()),
        }
    }
}
