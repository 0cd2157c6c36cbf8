//! Garbage collection: objects in the store that no database row records. Every write puts the object
//! first and records it after, in one transaction with the rows that reference it, so a crash in between
//! (or a refused ingest) leaves at most such an object. They are removed once older than a grace period,
//! which keeps the objects of work still in progress.

use std::time::Duration;

use serde::Serialize;

use crate::archive::Archive;
use crate::blobs::BlobError;
use crate::repo::RepoError;

/// What a collection found and did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GcReport {
    /// Objects in the store.
    pub stored: usize,
    /// Of those, recorded in the database.
    pub recorded: usize,
    /// Unrecorded but younger than the grace period: kept.
    pub young: usize,
    /// Unrecorded and older than the grace period: removed (or, in a dry run, to be removed).
    pub removed: Vec<String>,
    /// Their total size in bytes.
    pub removed_bytes: u64,
    /// Whether this was a dry run.
    pub dry_run: bool,
}

/// Why a collection stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GcError {
    /// The store could not be listed or an object deleted.
    #[error(transparent)]
    Store(#[from] BlobError),
    /// The database failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// Hashes looked up in the database per query.
const BATCH: usize = 500;

impl Archive {
    /// Removes stored objects that no row records and that were written more than `grace` ago; with
    /// `dry_run`, only reports them. In service, `grace` should exceed [`crate::REFRESH_AFTER`]
    /// (an hour) and the longest packaging job.
    pub async fn collect_garbage(
        &self,
        grace: Duration,
        dry_run: bool,
    ) -> Result<GcReport, GcError> {
        let cutoff = std::time::SystemTime::now()
            .checked_sub(grace)
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let stored = self.blobs().list().await?;
        let mut report = GcReport {
            stored: stored.len(),
            dry_run,
            ..GcReport::default()
        };
        for batch in stored.chunks(BATCH) {
            let hashes: Vec<String> = batch.iter().map(|o| o.hash.to_hex()).collect();
            let recorded = self.repo().recorded_objects(&hashes).await?;
            for object in batch {
                let hex = object.hash.to_hex();
                if recorded.contains(&hex) {
                    report.recorded += 1;
                } else if object.written > cutoff {
                    report.young += 1;
                } else {
                    // Looked up again just before it goes: a row may have been written since the batch.
                    if self
                        .repo()
                        .recorded_objects(std::slice::from_ref(&hex))
                        .await?
                        .is_empty()
                    {
                        if !dry_run {
                            self.blobs().delete(&object.hash).await?;
                            tracing::info!(object = %hex, bytes = object.size, "removed an unrecorded object");
                        }
                        report.removed_bytes += object.size;
                        report.removed.push(hex);
                    } else {
                        report.recorded += 1;
                    }
                }
            }
        }
        Ok(report)
    }
}
