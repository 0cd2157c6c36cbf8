//! sohoa's archive: where packaged documents are stored, recorded, indexed and served.
//!
//! Pages come in from a [`scanner_drivers::PageSource`], go through the [`pipeline`], and leave as:
//! - objects in a content-addressed store ([`BlobStore`], any `object_store` backend; a local folder by
//!   default): every page master and every PDF under its BLAKE3 hash, verified on every read;
//! - rows in the database ([`Repo`], SQLite by default): dossiers, documents, pages with their OCR text;
//! - entries in the full-text index ([`SearchIndex`], tantivy): a view over the pages table with
//!   Vietnamese accent folding, rebuilt from the database at will.
//!
//! [`Archive`] ties them together; [`routes::router`] serves them over HTTP.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use archive_api::{Archive, ArchiveConfig, SearchQuery};
//!
//! let archive = Archive::open(ArchiveConfig::new("sohoa-data")).await?;
//! let results = archive.search(&SearchQuery { text: "nguyen van a".into(), limit: 10, ..Default::default() }).await?;
//! for hit in results.hits {
//!     println!("{} page {}: {}", hit.dossier, hit.page, hit.snippet);
//! }
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod access;
mod archive;
mod blobs;
pub mod codes;
pub mod copies;
pub mod export;
pub mod fixity;
pub mod gc;
mod index;
pub mod jobs;
pub mod repo;
pub mod routes;
mod time;

pub use archive::{
    Archive, ArchiveConfig, IngestError, IngestProgress, IngestReport, IngestRequest, ObjectError,
    OpenError, PageReport, ProgressFn,
};
pub use blobs::{BlobError, BlobStore, REFRESH_AFTER, StoredObject};
pub use index::{IndexError, SearchHit, SearchIndex, SearchOrder, SearchQuery, SearchResults};
pub use repo::{CopyRecord, NewDossier, Repo, RepoError, Totals};

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// How often a server brings its index up to date with the database (pages written by another process,
/// such as `sohoa ingest` on the same data directory).
const FOLLOW_INTERVAL: Duration = Duration::from_secs(2);
/// How often the background fixity pass wakes, and how many due objects it checks each time (spreading
/// the reads over the interval).
const FIXITY_PASS_EVERY: Duration = Duration::from_secs(600);
const FIXITY_PASS_OBJECTS: usize = 2_000;
/// How often a server forgets live job updates nobody follows and idempotency keys past their time.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(60);
/// How long an answer kept under an `Idempotency-Key` answers a retry (a client retries within minutes;
/// a week covers a desk closed over a long weekend).
pub const IDEMPOTENCY_KEYS_KEPT: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long the token of a signed-in session is kept after it expired or was revoked.
const OLD_SESSIONS: Duration = Duration::from_secs(24 * 3600);

/// Serves the API on `listener` until `shutdown` completes, keeping the index current meanwhile, with
/// `workers` job workers in this process (see [`jobs`]).
pub async fn serve(
    archive: Arc<Archive>,
    listener: tokio::net::TcpListener,
    workers: usize,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let follower = {
        let archive = Arc::clone(&archive);
        tokio::spawn(async move {
            loop {
                if let Err(e) = archive.index().sync(archive.repo()).await {
                    tracing::warn!(error = %e, "index follower: sync failed; retrying");
                }
                tokio::time::sleep(FOLLOW_INTERVAL).await;
            }
        })
    };
    let fixity = archive.fixity_interval().map(|interval| {
        let archive = Arc::clone(&archive);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(FIXITY_PASS_EVERY).await;
                let due = time::ago(interval);
                match archive.check_fixity(Some(&due), Some(FIXITY_PASS_OBJECTS), |_, _| {}).await {
                    Ok(report) if !report.problems.is_empty() => tracing::error!(
                        checked = report.checked,
                        problems = report.problems.len(),
                        "fixity pass found damaged or missing objects; run `sohoa audit` for the list"
                    ),
                    Ok(report) => tracing::debug!(checked = report.checked, "fixity pass"),
                    Err(e) => tracing::warn!(error = %e, "fixity pass failed; retrying later"),
                }
            }
        })
    });
    // The stand-in password hash, made now so the first sign-in with an unknown name takes no longer.
    tokio::task::spawn_blocking(|| {
        access::stand_in_hash();
    });
    let housekeeping = {
        let archive = Arc::clone(&archive);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(HOUSEKEEPING_EVERY).await;
                let swept = archive.jobs().sweep(archive.repo()).await;
                archive.scan_jobs().forget_ended();
                if let Err(e) = archive
                    .repo()
                    .delete_old_sessions(&time::ago(OLD_SESSIONS))
                    .await
                {
                    tracing::warn!(error = %e, "cannot delete old sign-in tokens; retrying later");
                }
                if let Err(e) = routes::forget_old_sign_in_attempts(archive.repo()).await {
                    tracing::warn!(error = %e, "cannot forget old sign-in attempts; retrying later");
                }
                let expired = archive
                    .repo()
                    .expire_idempotency_keys(&time::ago(IDEMPOTENCY_KEYS_KEPT))
                    .await;
                match expired {
                    Ok(expired) => tracing::debug!(swept, expired, "housekeeping"),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot expire old idempotency keys; retrying later")
                    }
                }
            }
        })
    };
    routes::install_metrics();
    let relay = tokio::spawn(jobs::relay_announcements(Arc::clone(&archive)));
    let (stop_workers, stop) = tokio::sync::watch::channel(false);
    let workers = tokio::spawn(jobs::run_workers(
        Arc::clone(&archive),
        workers,
        false,
        stop,
    ));
    let app = routes::router(archive).layer(tower_http::trace::TraceLayer::new_for_http());
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    follower.abort();
    housekeeping.abort();
    relay.abort();
    // A job part-way is left to its lease: another worker, or this server started again, takes it over.
    let _ = stop_workers.send(true);
    workers.abort();
    if let Some(fixity) = fixity {
        fixity.abort();
    }
    result
}
