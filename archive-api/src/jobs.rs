//! Processing jobs: packaging the pages uploaded to a dossier into a document, off the request that asked
//! for it, with live progress.
//!
//! A job is a database row first (queued), so a server that stops mid-way finds it again on start and
//! runs it again: the pages wait in `pending_pages` until their document is recorded, and recording the
//! same document twice changes nothing. Progress goes to subscribers at once (a broadcast channel per
//! running job, every update in order, which the API streams as Server-Sent Events) and to the job's row
//! (through a `watch` channel, which keeps only the latest).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use scanner_drivers::FileImport;
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, broadcast, watch};

use crate::archive::{Archive, IngestProgress, IngestRequest};
use crate::codes::{ContentHash, DocumentKind, DossierCode, ProcedureCode, UnitCode};
use crate::repo::{JobRecord, NewDossier, RepoError};

/// What a packaging job does: package these waiting pages (ids, in order) as a document of `kind`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PackageRequest {
    /// Submitted component or result.
    pub kind: DocumentKind,
    /// The waiting pages, in order.
    pub pages: Vec<i64>,
}

/// Why a job could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
    /// No pages wait to be packaged.
    #[error("dossier {dossier} has no {} pages waiting to be packaged; upload pages first", kind.as_str())]
    NothingToPackage {
        /// The dossier.
        dossier: String,
        /// The kind asked for.
        kind: DocumentKind,
    },
    /// The database failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// The running jobs' live progress, and the gate that runs one job at a time (the pipeline already uses
/// every core for one document).
pub struct JobBoard {
    live: Mutex<HashMap<String, Updates>>,
    gate: Arc<Semaphore>,
}

/// Where a running job's updates go.
#[derive(Clone)]
struct Updates {
    latest: watch::Sender<JobRecord>,
    every: broadcast::Sender<JobRecord>,
}

impl Updates {
    fn send(&self, job: JobRecord) {
        // No subscriber is not an error: the update is still the latest.
        let _ = self.every.send(job.clone());
        self.latest.send_replace(job);
    }
}

/// Updates this many behind are dropped for a slow subscriber, which then gets the latest.
const EVENT_BUFFER: usize = 1024;

impl Default for JobBoard {
    fn default() -> Self {
        Self {
            live: Mutex::new(HashMap::new()),
            gate: Arc::new(Semaphore::new(1)),
        }
    }
}

impl JobBoard {
    /// Every update of a job from now on, and its state now, while it is queued or running in this
    /// process.
    pub fn subscribe(&self, id: &str) -> Option<(JobRecord, broadcast::Receiver<JobRecord>)> {
        let live = self.live.lock().ok()?;
        let updates = live.get(id)?;
        // Subscribed first, so nothing after the snapshot is missed.
        let receiver = updates.every.subscribe();
        let now = updates.latest.borrow().clone();
        Some((now, receiver))
    }

    fn publish(&self, job: &JobRecord) -> Updates {
        let updates = Updates {
            latest: watch::channel(job.clone()).0,
            every: broadcast::channel(EVENT_BUFFER).0,
        };
        if let Ok(mut live) = self.live.lock() {
            live.insert(job.id.clone(), updates.clone());
        }
        updates
    }

    fn retire(&self, id: &str) {
        if let Ok(mut live) = self.live.lock() {
            live.remove(id);
        }
    }
}

/// A new job id: 128 random bits, hexadecimal.
fn new_job_id() -> String {
    let mut bytes = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Queues a job that packages the pages of `kind` waiting in `dossier`, and starts it. Pages already in a
/// job still queued or running are left to it; when that leaves none, that job is returned (asking twice
/// gives the same job).
pub async fn enqueue_package(
    archive: &Arc<Archive>,
    dossier: &str,
    kind: DocumentKind,
    actor: &str,
) -> Result<JobRecord, JobError> {
    let mut taken = std::collections::HashSet::new();
    let mut earlier = None;
    for job in archive.repo().unfinished_jobs().await? {
        let Ok(request) = serde_json::from_str::<PackageRequest>(&job.request) else {
            continue;
        };
        if job.dossier == dossier && request.kind == kind {
            taken.extend(request.pages);
            earlier = Some(job);
        }
    }
    let pages: Vec<i64> = archive
        .repo()
        .pending_pages(dossier, Some(kind.as_str()))
        .await?
        .iter()
        .map(|p| p.id)
        .filter(|id| !taken.contains(id))
        .collect();
    if pages.is_empty() {
        return earlier.ok_or_else(|| JobError::NothingToPackage {
            dossier: dossier.to_owned(),
            kind,
        });
    }
    let request = serde_json::to_string(&PackageRequest { kind, pages }).unwrap_or_default();
    let job = archive
        .repo()
        .create_job(&new_job_id(), "package", dossier, actor, &request)
        .await?;
    start(archive, job.clone());
    Ok(job)
}

/// Starts again every job left queued or running by a server that stopped.
pub async fn resume(archive: &Arc<Archive>) -> Result<usize, RepoError> {
    let jobs = archive.repo().unfinished_jobs().await?;
    let count = jobs.len();
    for job in jobs {
        tracing::info!(job = %job.id, dossier = %job.dossier, "resuming a job left unfinished");
        start(archive, job);
    }
    Ok(count)
}

fn start(archive: &Arc<Archive>, job: JobRecord) {
    let archive = Arc::clone(archive);
    let updates = archive.jobs().publish(&job);
    tokio::spawn(async move {
        let gate = Arc::clone(&archive.jobs().gate);
        let _turn = gate.acquire_owned().await;
        let id = job.id.clone();
        let outcome = run_package(&archive, &job, &updates).await;
        let last = updates.latest.borrow().clone();
        if last.state == "running" {
            let _ = archive
                .repo()
                .job_progress(&id, last.done, last.total, last.failed)
                .await;
        }
        let recorded = match &outcome {
            Ok(report) => archive.repo().finish_job(&id, Ok(report)).await,
            Err(why) => {
                tracing::warn!(job = %id, error = %why, "job failed");
                archive.repo().finish_job(&id, Err(why)).await
            }
        };
        if let Err(e) = recorded {
            tracing::error!(job = %id, error = %e, "could not record how the job ended; it will run again on restart");
        }
        if let Ok(Some(finished)) = archive.repo().job(&id).await {
            updates.send(finished);
        }
        archive.jobs().retire(&id);
    });
}

async fn run_package(
    archive: &Arc<Archive>,
    job: &JobRecord,
    updates: &Updates,
) -> Result<serde_json::Value, String> {
    let request: PackageRequest = serde_json::from_str(&job.request)
        .map_err(|e| format!("the job's request is unreadable: {e}"))?;
    let repo = archive.repo();
    let dossier = repo
        .dossier(&job.dossier)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("dossier {} is no longer recorded", job.dossier))?;
    let new_dossier = (|| {
        Ok::<_, crate::codes::CodeError>(NewDossier {
            code: DossierCode::parse(&dossier.code)?,
            procedure: ProcedureCode::parse(&dossier.procedure)?,
            unit: UnitCode::parse(&dossier.unit)?,
        })
    })()
    .map_err(|e| e.to_string())?;
    let waiting = repo
        .pending_pages(&job.dossier, Some(request.kind.as_str()))
        .await
        .map_err(|e| e.to_string())?;
    let pages: Vec<_> = request
        .pages
        .iter()
        .filter_map(|id| waiting.iter().find(|p| p.id == *id))
        .collect();
    if pages.is_empty() {
        return Err("the pages to package were removed before the job ran".to_owned());
    }

    // The pages come back from the store (verified against their hashes) into a work folder.
    let spool = tempfile::tempdir_in(archive.tmp_dir()).map_err(|e| e.to_string())?;
    let mut files = Vec::with_capacity(pages.len());
    for (i, page) in pages.iter().enumerate() {
        let hash = ContentHash::parse(&page.blake3).map_err(|e| e.to_string())?;
        let bytes = archive
            .blobs()
            .get(&hash)
            .await
            .map_err(|e| format!("page {} ({}): {e}", i + 1, page.origin))?;
        let path = spool.path().join(format!("{:05}", i + 1));
        tokio::fs::write(&path, &bytes)
            .await
            .map_err(|e| e.to_string())?;
        files.push((path, page.origin.clone()));
    }
    let source = FileImport::labelled(files).map_err(|e| e.to_string())?;

    // Progress reaches subscribers from the pipeline's thread at once, and the job's row shortly after.
    let live = updates.clone();
    let progress = Arc::new(move |p: IngestProgress| {
        let mut job = live.latest.borrow().clone();
        job.state = "running".to_owned();
        job.done = i64::try_from(p.done).unwrap_or(i64::MAX);
        job.total = p.total.and_then(|t| i64::try_from(t).ok());
        job.failed = i64::try_from(p.failed).unwrap_or(i64::MAX);
        live.send(job);
    });
    let persist = {
        let mut watching = updates.latest.subscribe();
        let repo = repo.clone();
        tokio::spawn(async move {
            while watching.changed().await.is_ok() {
                let job = watching.borrow_and_update().clone();
                if job.state != "running" {
                    continue;
                }
                if let Err(e) = repo
                    .job_progress(&job.id, job.done, job.total, job.failed)
                    .await
                {
                    tracing::warn!(job = %job.id, error = %e, "could not record job progress");
                }
            }
        })
    };
    let ingest_request = IngestRequest {
        dossier: new_dossier,
        kind: request.kind,
    };
    let outcome = archive
        .ingest(ingest_request, Box::new(source), progress)
        .await;
    persist.abort();
    drop(spool);
    let report = outcome.map_err(|e| e.to_string())?;
    let ids: Vec<i64> = pages.iter().map(|p| p.id).collect();
    repo.remove_pending_pages(&job.dossier, &ids)
        .await
        .map_err(|e| e.to_string())?;
    serde_json::to_value(&report).map_err(|e| e.to_string())
}
