//! Processing jobs: packaging the pages uploaded to a dossier into a document, off the request that asked
//! for it, with live progress, through a work queue in the database.
//!
//! A job is a database row first (queued). Workers (in the server with SQLite, `sohoa worker` processes on
//! any machine with PostgreSQL) claim jobs with a lease they renew while working; a worker that dies
//! stops renewing, and once its lease has run out another worker takes the job over (at once when the dead
//! worker ran on this machine). A failed attempt is retried with back-off when the failure may pass (the
//! database or the object store answered badly); after [`MAX_ATTEMPTS`], or at once when the input itself
//! is at fault, the job is parked as `failed` with its error. The pages wait in `pending_pages` until the
//! transaction that records their document takes them off, so a job run twice never packages them twice.
//!
//! Progress goes to subscribers in this process at once (a broadcast channel per job run here, every
//! update in order, which the API streams as Server-Sent Events) and to the job's row (through a `watch`
//! channel, which keeps only the latest), where other processes read it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use scanner_drivers::FileImport;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, broadcast, watch};

use crate::archive::{Archive, IngestError, IngestProgress, IngestRequest};
use crate::codes::{ContentHash, DocumentKind, DossierCode, ProcedureCode, UnitCode};
use crate::repo::{JobPages, JobRecord, NewDossier, RepoError};

/// What a packaging job does: package these waiting pages (ids, in order) as a document of `kind`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PackageRequest {
    /// Submitted component or result.
    pub kind: DocumentKind,
    /// The waiting pages, in order.
    pub pages: Vec<i64>,
}

/// Why a job could not be queued.
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

/// How long a claimed job is a worker's without renewal.
pub const LEASE: Duration = Duration::from_secs(30);
/// How often a working worker renews its lease.
const RENEW_EVERY: Duration = Duration::from_secs(10);
/// Attempts before a job whose failures may pass is parked.
pub const MAX_ATTEMPTS: i64 = 5;
/// How long an idle worker waits before looking at the queue again (new jobs queued by this process wake
/// it at once).
const IDLE_POLL: Duration = Duration::from_secs(1);

/// The wait before attempt `attempts + 1`: 10 s, 40 s, 160 s, then 10 minutes.
fn back_off(attempts: i64) -> Duration {
    let exponent = u32::try_from(attempts.clamp(1, 4) - 1).unwrap_or(0);
    Duration::from_secs(10 * 4u64.pow(exponent)).min(Duration::from_secs(600))
}

/// This process's jobs' live progress, its workers' names, and the bell that wakes them.
pub struct JobBoard {
    live: Mutex<HashMap<String, Updates>>,
    /// Jobs run by other processes whose announcements feed `live` (PostgreSQL).
    relayed: Mutex<std::collections::HashSet<String>>,
    wake: Notify,
    process: String,
    local_workers: std::sync::atomic::AtomicUsize,
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
            relayed: Mutex::new(std::collections::HashSet::new()),
            wake: Notify::new(),
            process: process_name(),
            local_workers: std::sync::atomic::AtomicUsize::new(0),
        }
    }
}

/// `HOST:PID:NONCE`: names this process's workers, so a restarted process on the same machine can tell
/// that the holder of a job is gone.
fn process_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".to_owned());
    // Containers can share a host name without sharing process ids: the pid namespace tells them apart.
    let namespace = std::fs::read_link("/proc/self/ns/pid")
        .ok()
        .and_then(|link| {
            let link = link.to_string_lossy().into_owned();
            let inode = link
                .trim_start_matches("pid:[")
                .trim_end_matches(']')
                .to_owned();
            (!inode.is_empty()).then_some(inode)
        })
        .unwrap_or_default();
    format!(
        "{host}+{namespace}:{}:{}",
        std::process::id(),
        &new_job_id()[..8]
    )
}

/// Whether a worker name is of a process on this machine that is no longer running.
fn is_dead_local_worker(worker: &str, process: &str) -> bool {
    let mut ours = process.split(':');
    let mut theirs = worker.split(':');
    let (Some(our_host), Some(their_host), Some(pid)) = (ours.next(), theirs.next(), theirs.next())
    else {
        return false;
    };
    let Ok(pid) = pid.parse::<i32>() else {
        return false;
    };
    if our_host != their_host || pid <= 0 || worker.starts_with(process) {
        return false;
    }
    // Signal 0 checks that the process exists without touching it.
    // SAFETY: kill with signal 0 sends nothing; it only reports whether `pid` exists.
    let exists = unsafe { libc::kill(pid, 0) } == 0
        || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    !exists
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

    /// Every update of a job run by another process from now on, relayed from its worker's announcements
    /// (see [`relay_announcements`]), and `job` (its row, read after this call) as the state now.
    pub fn follow_elsewhere(&self, job: &JobRecord) -> Option<broadcast::Receiver<JobRecord>> {
        let mut live = self.live.lock().ok()?;
        let updates = live.entry(job.id.clone()).or_insert_with(|| Updates {
            latest: watch::channel(job.clone()).0,
            every: broadcast::channel(EVENT_BUFFER).0,
        });
        if let Ok(mut relayed) = self.relayed.lock() {
            relayed.insert(job.id.clone());
        }
        Some(updates.every.subscribe())
    }

    /// Whether a job's updates here are relayed from another process.
    pub fn is_relayed(&self, id: &str) -> bool {
        self.relayed.lock().is_ok_and(|r| r.contains(id))
    }

    /// Whether `worker` is one of this process's workers.
    pub fn is_local(&self, worker: &str) -> bool {
        worker.starts_with(&self.process)
    }

    fn updates(&self, job: &JobRecord) -> Updates {
        let Ok(mut live) = self.live.lock() else {
            return Updates {
                latest: watch::channel(job.clone()).0,
                every: broadcast::channel(EVENT_BUFFER).0,
            };
        };
        let updates = live.entry(job.id.clone()).or_insert_with(|| Updates {
            latest: watch::channel(job.clone()).0,
            every: broadcast::channel(EVENT_BUFFER).0,
        });
        updates.send(job.clone());
        let updates = updates.clone();
        drop(live);
        // Run here from now on: announcements from elsewhere about it are not relayed into it.
        if let Ok(mut relayed) = self.relayed.lock() {
            relayed.remove(&job.id);
        }
        updates
    }

    /// Forgets a job's live updates (it ended, or is run elsewhere): its subscribers see the stream close.
    pub fn retire(&self, id: &str) {
        if let Ok(mut live) = self.live.lock() {
            live.remove(id);
        }
        if let Ok(mut relayed) = self.relayed.lock() {
            relayed.remove(id);
        }
    }

    /// Forgets the live updates nobody follows of jobs not running in this process: queued ones a worker
    /// elsewhere took, relayed ones whose ending was never heard (the feed dropped). A later follower
    /// reads the row, or subscribes afresh when a worker here takes the job. Returns how many went.
    pub async fn sweep(&self, repo: &crate::repo::Repo) -> usize {
        let idle: Vec<String> = match self.live.lock() {
            Ok(live) => live
                .iter()
                .filter(|(_, updates)| updates.every.receiver_count() == 0)
                .map(|(id, _)| id.clone())
                .collect(),
            Err(_) => return 0,
        };
        let mut swept = 0;
        for id in idle {
            let Ok(row) = repo.job(&id).await else {
                continue;
            };
            let held_here = row.as_ref().is_some_and(|job| {
                job.state == "running" && job.worker.as_deref().is_some_and(|w| self.is_local(w))
            });
            if held_here {
                continue;
            }
            let removed = self.live.lock().is_ok_and(|mut live| {
                live.get(&id)
                    .is_some_and(|updates| updates.every.receiver_count() == 0)
                    && live.remove(&id).is_some()
            });
            if removed {
                if let Ok(mut relayed) = self.relayed.lock() {
                    relayed.remove(&id);
                }
                swept += 1;
            }
        }
        swept
    }

    /// How many jobs' live updates this process keeps.
    pub fn live_count(&self) -> usize {
        self.live.lock().map_or(0, |live| live.len())
    }

    fn relayed_updates(&self, id: &str) -> Option<Updates> {
        if !self.is_relayed(id) {
            return None;
        }
        self.live.lock().ok()?.get(id).cloned()
    }
}

/// On PostgreSQL, passes what workers in other processes announce of their jobs to this process's
/// followers of those jobs, in order, until the process ends (reconnecting when the database connection
/// drops; a follower reads the job's row when it hears nothing for a while). Nothing to do on SQLite.
pub async fn relay_announcements(archive: Arc<Archive>) {
    use crate::repo::{JOB_CHANNEL, JobAnnouncement};
    loop {
        let mut listener = match archive.repo().listen(JOB_CHANNEL).await {
            None => return,
            Some(Ok(listener)) => listener,
            Some(Err(e)) => {
                tracing::warn!(error = %e, "cannot listen for job progress from workers; retrying");
                tokio::time::sleep(Duration::from_secs(5)).await;
                continue;
            }
        };
        loop {
            let notification = match listener.recv().await {
                Ok(notification) => notification,
                Err(e) => {
                    tracing::warn!(error = %e, "lost the job progress feed; reconnecting");
                    break;
                }
            };
            let Ok(heard) = serde_json::from_str::<JobAnnouncement>(notification.payload()) else {
                continue;
            };
            let board = archive.jobs();
            let Some(updates) = board.relayed_updates(&heard.id) else {
                continue;
            };
            let finished = heard.state == "done" || heard.state == "failed";
            let job = if finished {
                // The ending carries the report or the error: read the row.
                match archive.repo().job(&heard.id).await {
                    Ok(Some(job)) => job,
                    _ => continue,
                }
            } else {
                let mut job = updates.latest.borrow().clone();
                job.state = heard.state;
                job.done = heard.done;
                job.total = heard.total.or(job.total);
                job.failed = heard.failed;
                job
            };
            updates.send(job);
            if finished {
                board.retire(&heard.id);
            }
        }
    }
}

/// A new job id: 128 random bits, hexadecimal.
fn new_job_id() -> String {
    let mut bytes = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Queues a job that packages the pages of `kind` waiting in `dossier`. Pages already in a job still
/// queued or running are left to it; when that leaves none, that job is returned (asking twice gives the
/// same job).
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
    let board = archive.jobs();
    if board
        .local_workers
        .load(std::sync::atomic::Ordering::Relaxed)
        > 0
    {
        // A worker here will most likely take it: subscribers follow it live from the start.
        board.updates(&job);
    }
    board.wake.notify_waiters();
    Ok(job)
}

/// Puts back in the queue at once the jobs held by workers of processes on this machine that are gone
/// (killed, crashed): no need to wait for their leases to run out. Returns how many.
pub async fn release_dead_local_workers(archive: &Archive) -> Result<usize, RepoError> {
    let mut released = 0;
    for (id, worker) in archive.repo().held_jobs().await? {
        if is_dead_local_worker(&worker, &archive.jobs().process)
            && archive.repo().release_job(&id, &worker).await?
        {
            tracing::info!(job = %id, %worker, "taking over a job whose worker is gone");
            released += 1;
        }
    }
    Ok(released)
}

/// Runs `count` workers in this process until `stop` turns true: each claims a job, runs it, and claims
/// the next. With `until_idle`, each also stops when it finds the queue empty.
pub async fn run_workers(
    archive: Arc<Archive>,
    count: usize,
    until_idle: bool,
    stop: watch::Receiver<bool>,
) {
    if count == 0 {
        return;
    }
    if let Err(e) = release_dead_local_workers(&archive).await {
        tracing::warn!(error = %e, "cannot look for jobs left by stopped workers");
    }
    let board = archive.jobs();
    board
        .local_workers
        .fetch_add(count, std::sync::atomic::Ordering::Relaxed);
    let mut workers = tokio::task::JoinSet::new();
    for n in 1..=count {
        let name = format!("{}/{n}", board.process);
        workers.spawn(work(Arc::clone(&archive), name, until_idle, stop.clone()));
    }
    while workers.join_next().await.is_some() {}
    board
        .local_workers
        .fetch_sub(count, std::sync::atomic::Ordering::Relaxed);
}

async fn work(
    archive: Arc<Archive>,
    name: String,
    until_idle: bool,
    mut stop: watch::Receiver<bool>,
) {
    tracing::info!(worker = %name, "worker started");
    loop {
        if *stop.borrow() {
            break;
        }
        match archive.repo().claim_job(&name, ms(LEASE)).await {
            Ok(Some(job)) => run_claimed(&archive, &name, job).await,
            Ok(None) if until_idle => break,
            Ok(None) => {
                let bell = archive.jobs().wake.notified();
                tokio::select! {
                    _ = bell => {}
                    _ = tokio::time::sleep(IDLE_POLL) => {}
                    _ = stop.changed() => {}
                }
            }
            Err(e) => {
                tracing::warn!(worker = %name, error = %e, "cannot claim a job; retrying");
                tokio::time::sleep(IDLE_POLL * 2).await;
            }
        }
    }
    tracing::info!(worker = %name, "worker stopped");
}

/// Why an attempt failed, and whether another attempt may succeed.
struct Failure {
    message: String,
    passing: bool,
}

impl Failure {
    fn input(e: impl std::fmt::Display) -> Self {
        Self {
            message: e.to_string(),
            passing: false,
        }
    }

    fn passing(e: impl std::fmt::Display) -> Self {
        Self {
            message: e.to_string(),
            passing: true,
        }
    }
}

/// Aborts a background task when dropped, so no task outlives the job it serves (a panic included).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn run_claimed(archive: &Arc<Archive>, worker: &str, job: JobRecord) {
    let id = job.id.clone();
    tracing::info!(job = %id, dossier = %job.dossier, attempt = job.attempts, %worker, "job claimed");
    if job.attempts > MAX_ATTEMPTS {
        // Claimed again after its lease ran out more times than it may be attempted: its worker died
        // each time (a page that crashes the OCR engine, say). Park it rather than crash forever.
        let why = format!(
            "stopped without finishing {} times (its worker died each time); last error: {}",
            job.attempts - 1,
            job.error.as_deref().unwrap_or("none recorded")
        );
        tracing::error!(job = %id, "job parked after its workers died {} times", job.attempts - 1);
        if let Err(e) = archive.repo().retry_or_park(&id, worker, &why, None).await {
            tracing::error!(job = %id, error = %e, "could not park the job");
        }
        return;
    }
    let updates = archive.jobs().updates(&job);
    let lost = Arc::new(Notify::new());
    let _renew = {
        let repo = archive.repo().clone();
        let (id, worker, lost) = (id.clone(), worker.to_owned(), Arc::clone(&lost));
        AbortOnDrop(tokio::spawn(async move {
            loop {
                tokio::time::sleep(RENEW_EVERY).await;
                match repo.renew_lease(&id, &worker, ms(LEASE)).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(job = %id, %worker, "lost the job's lease: another worker has it; stopping");
                        lost.notify_one();
                        break;
                    }
                    Err(e) => tracing::warn!(job = %id, error = %e, "cannot renew the job's lease"),
                }
            }
        }))
    };
    let outcome = tokio::select! {
        outcome = run_package(archive, &job, &updates) => outcome,
        () = lost.notified() => {
            // Another worker runs it now: write nothing more about it.
            archive.jobs().retire(&id);
            return;
        }
    };
    let last = updates.latest.borrow().clone();
    if last.state == "running" {
        let _ = archive
            .repo()
            .job_progress(&id, worker, last.done, last.total, last.failed)
            .await;
    }
    let recorded = match &outcome {
        Ok(report) => archive.repo().finish_job(&id, worker, Ok(report)).await,
        Err(failure) if failure.passing && job.attempts < MAX_ATTEMPTS => {
            let wait = back_off(job.attempts);
            tracing::warn!(job = %id, error = %failure.message, attempt = job.attempts,
                           retry_in_s = wait.as_secs(), "job attempt failed; it will be retried");
            archive
                .repo()
                .retry_or_park(&id, worker, &failure.message, Some(ms(wait)))
                .await
        }
        Err(failure) => {
            tracing::warn!(job = %id, error = %failure.message, attempts = job.attempts, "job failed; parked");
            archive
                .repo()
                .retry_or_park(&id, worker, &failure.message, None)
                .await
        }
    };
    if let Err(e) = recorded {
        tracing::error!(job = %id, error = %e, "could not record how the job ended; its lease will run out and it will run again");
    }
    if let Ok(Some(now)) = archive.repo().job(&id).await {
        updates.send(now);
    }
    archive.jobs().retire(&id);
}

async fn run_package(
    archive: &Arc<Archive>,
    job: &JobRecord,
    updates: &Updates,
) -> Result<serde_json::Value, Failure> {
    let request: PackageRequest = serde_json::from_str(&job.request)
        .map_err(|e| Failure::input(format!("the job's request is unreadable: {e}")))?;
    let repo = archive.repo();
    // An earlier attempt may have recorded the document and then stopped before saying so.
    if let Some((document, pages)) = repo
        .document_of_job(&job.id)
        .await
        .map_err(Failure::passing)?
    {
        return Ok(serde_json::json!({
            "dossier": job.dossier,
            "kind": request.kind.as_str(),
            "document": document,
            "pages": pages,
            "recovered": true,
        }));
    }
    let dossier = repo
        .dossier(&job.dossier)
        .await
        .map_err(Failure::passing)?
        .ok_or_else(|| Failure::input(format!("dossier {} is no longer recorded", job.dossier)))?;
    let new_dossier = (|| {
        Ok::<_, crate::codes::CodeError>(NewDossier {
            code: DossierCode::parse(&dossier.code)?,
            procedure: ProcedureCode::parse(&dossier.procedure)?,
            unit: UnitCode::parse(&dossier.unit)?,
        })
    })()
    .map_err(Failure::input)?;
    let waiting = repo
        .pending_pages(&job.dossier, Some(request.kind.as_str()))
        .await
        .map_err(Failure::passing)?;
    let pages: Vec<_> = request
        .pages
        .iter()
        .filter_map(|id| waiting.iter().find(|p| p.id == *id))
        .collect();
    if pages.is_empty() {
        return Err(Failure::input(
            "the pages to package were removed before the job ran",
        ));
    }

    // The pages come back from the store (verified against their hashes) into a work folder.
    let spool = tempfile::tempdir_in(archive.tmp_dir()).map_err(Failure::passing)?;
    let mut files = Vec::with_capacity(pages.len());
    for (i, page) in pages.iter().enumerate() {
        let hash = ContentHash::parse(&page.blake3).map_err(Failure::input)?;
        let bytes = archive
            .blobs()
            .get(&hash)
            .await
            .map_err(|e| Failure::passing(format!("page {} ({}): {e}", i + 1, page.origin)))?;
        let path = spool.path().join(format!("{:05}", i + 1));
        tokio::fs::write(&path, &bytes)
            .await
            .map_err(Failure::passing)?;
        let turn = u8::try_from(page.turn.rem_euclid(4))
            .ok()
            .filter(|&q| q != 0);
        files.push((path, page.origin.clone(), turn));
    }
    let source = FileImport::labelled_turned(files).map_err(Failure::input)?;

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
    let worker = job.worker.clone().unwrap_or_default();
    let persist = {
        // Every update in order, so other processes following the row's announcements see each page.
        let mut every = updates.every.subscribe();
        let repo = repo.clone();
        AbortOnDrop(tokio::spawn(async move {
            loop {
                let job = match every.recv().await {
                    Ok(job) => job,
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => break,
                };
                if job.state != "running" {
                    continue;
                }
                if let Err(e) = repo
                    .job_progress(&job.id, &worker, job.done, job.total, job.failed)
                    .await
                {
                    tracing::warn!(job = %job.id, error = %e, "could not record job progress");
                }
            }
        }))
    };
    let ids: Vec<i64> = pages.iter().map(|p| p.id).collect();
    let ingest_request = IngestRequest {
        dossier: new_dossier,
        kind: request.kind,
        job: Some(JobPages {
            id: job.id.clone(),
            pending: ids,
        }),
    };
    let outcome = archive
        .ingest(ingest_request, Box::new(source), progress)
        .await;
    drop(persist);
    drop(spool);
    let report = outcome.map_err(|e| match e {
        IngestError::Storage(_) | IngestError::Database(_) | IngestError::Io(_) => {
            Failure::passing(e)
        }
        other => Failure::input(other),
    })?;
    serde_json::to_value(&report).map_err(Failure::input)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The live updates of jobs nobody follows and nothing here runs are forgotten; the rest stay.
    #[tokio::test]
    async fn a_sweep_forgets_only_unfollowed_updates_of_jobs_not_running_here() {
        let dir = tempfile::tempdir().unwrap();
        for repo in crate::repo::test_repos(dir.path()).await {
            let board = JobBoard::default();
            let here = format!("{}/0", board.process);
            let mut jobs = Vec::new();
            for (id, holder) in [
                ("taken-elsewhere", Some("elsewhere:1:abcd/0")),
                ("running-here", Some(here.as_str())),
                ("followed", Some("elsewhere:1:abcd/1")),
                ("queued", None),
            ] {
                repo.create_job(id, "package", "D-1", "lan", "{}")
                    .await
                    .unwrap();
                let job = match holder {
                    Some(worker) => repo.claim_job(worker, 30_000).await.unwrap().unwrap(),
                    None => repo.job(id).await.unwrap().unwrap(),
                };
                assert_eq!(job.id, id);
                board.updates(&job);
                jobs.push(job);
            }
            let _follower = board.follow_elsewhere(&jobs[2]).unwrap();
            assert_eq!(board.live_count(), 4);

            assert_eq!(board.sweep(&repo).await, 2);
            assert!(board.subscribe("taken-elsewhere").is_none());
            assert!(board.subscribe("queued").is_none());
            assert!(
                board.subscribe("running-here").is_some(),
                "a worker here runs it"
            );
            assert!(board.subscribe("followed").is_some(), "someone follows it");
            assert!(board.is_relayed("followed"));
        }
    }

    /// Answers kept under idempotency keys are forgotten once past their time, and only those.
    #[tokio::test]
    async fn old_idempotency_keys_expire() {
        let dir = tempfile::tempdir().unwrap();
        for repo in crate::repo::test_repos(dir.path()).await {
            let answer = crate::repo::KeptAnswer {
                fingerprint: "f".into(),
                status: 201,
                response: "{}".into(),
            };
            repo.keep_answer("lan", "old", &answer).await.unwrap();
            let cutoff = crate::time::days_from_now(0);
            tokio::time::sleep(Duration::from_millis(1100)).await;
            repo.keep_answer("lan", "new", &answer).await.unwrap();
            assert_eq!(repo.expire_idempotency_keys(&cutoff).await.unwrap(), 1);
            assert!(repo.kept_answer("lan", "old").await.unwrap().is_none());
            assert!(repo.kept_answer("lan", "new").await.unwrap().is_some());
        }
    }
}
