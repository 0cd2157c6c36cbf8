//! Scanning over HTTP, kept small (the full job API belongs to the archive API): `GET /v1/scanners` lists
//! the scanners this server can drive, `POST /v1/scans` starts a scan into a dossier and answers `202` with
//! the job, `GET /v1/scans/{id}` follows it page by page, `GET /v1/scans/{id}/pages/{n}/thumbnail` shows
//! a sheet as soon as it is read, `DELETE /v1/scans/{id}` cancels it (the pages already scanned are kept).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use scanner_drivers::sane::ScanSettings;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ErrorBody;
use super::extract::{JsonBody, PathParams, QueryParams};
use super::{ApiError, AppState, Caller};
use crate::access::Permission;
use crate::archive::{IngestError, IngestRequest};
use crate::codes::{ContentHash, DocumentKind, DossierCode, ProcedureCode, UnitCode};
use crate::repo::NewDossier;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_scanners))
        .routes(routes!(start_scan))
        .routes(routes!(scan_status, cancel_scan))
        .routes(routes!(scanned_thumbnail))
}

/// The longest side of a scanned sheet's thumbnail, in pixels.
const THUMBNAIL_SIDE: u32 = 360;

/// The scan jobs of this server, by id.
#[derive(Default)]
pub struct ScanJobs {
    jobs: Mutex<HashMap<u64, Arc<ScanJob>>>,
    next: Mutex<u64>,
}

struct ScanJob {
    /// The unit of the dossier scanned into: only its callers see the scan.
    unit: String,
    status: Mutex<ScanStatus>,
    cancel: Arc<AtomicBool>,
    /// When it ended, once it has: an ended scan is forgotten after [`SCANS_KEPT`].
    ended: Mutex<Option<std::time::Instant>>,
}

/// How long a server remembers an ended scan for its followers (its pages are in the dossier for good).
const SCANS_KEPT: std::time::Duration = std::time::Duration::from_secs(3600);

/// A scan job as clients see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ScanStatus {
    /// Job id.
    pub id: u64,
    /// The scanner.
    pub device: String,
    /// The dossier the pages go into.
    pub dossier: String,
    /// `scanning`, `done` or `failed`.
    pub state: &'static str,
    /// Pages scanned and processed so far.
    pub pages_done: usize,
    /// Pages that failed so far.
    pub pages_failed: usize,
    /// Each page as it was read, in order: master, OCR confidence and flags. A small image of each is at
    /// `/v1/scans/{id}/pages/{n}/thumbnail` as soon as it is read; the masters themselves are served
    /// once the scan is done and its document recorded.
    pub pages: Vec<crate::PageReport>,
    /// The document made, when done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<String>,
    /// Why the scan stopped early, when it did (the pages before are stored).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incomplete: Option<String>,
    /// Why it failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ScanJobs {
    /// Forgets the scans that ended more than [`SCANS_KEPT`] ago.
    pub fn forget_ended(&self) {
        self.jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|_, job| {
                job.ended
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .is_none_or(|at| at.elapsed() < SCANS_KEPT)
            });
    }

    fn get(&self, id: u64) -> Option<Arc<ScanJob>> {
        self.jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&id)
            .cloned()
    }
}

fn lock(job: &ScanJob) -> std::sync::MutexGuard<'_, ScanStatus> {
    job.status
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ScannersQuery {
    /// eSCL URLs to list too, comma-separated.
    escl: Option<String>,
}

/// The scanners this server can drive (SANE, and the eSCL URLs asked for), with their sources, modes and
/// resolutions.
#[utoipa::path(get, path = "/v1/scanners", tag = "scanning", params(ScannersQuery),
    responses((status = 200, description = "the scanners", body = Object),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_scanners(
    State(archive): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<ScannersQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller
        .require(&archive, Permission::Scan, "scanner.list", "")
        .await?;
    let escl: Vec<String> = query
        .escl
        .unwrap_or_default()
        .split(',')
        .filter(|u| !u.trim().is_empty())
        .map(|u| u.trim().to_owned())
        .collect();
    let listing = tokio::task::spawn_blocking(move || {
        let mut listing = Vec::new();
        match scanner_drivers::sane::devices(true) {
            Ok(devices) => {
                for device in devices {
                    let capabilities = scanner_drivers::sane::Scanner::open(&device.name)
                        .and_then(|s| s.capabilities());
                    listing.push(match capabilities {
                        Ok(c) => serde_json::json!({"name": device.name, "vendor": device.vendor, "model": device.model, "kind": device.kind, "capabilities": c}),
                        Err(e) => serde_json::json!({"name": device.name, "error": e.to_string()}),
                    });
                }
            }
            Err(e) => listing.push(serde_json::json!({"driver": "sane", "error": e.to_string()})),
        }
        for url in escl {
            let name = format!("escl:{url}");
            listing.push(match scanner_drivers::escl::EsclDevice::new(&url).capabilities() {
                Ok(c) => serde_json::json!({"name": name, "kind": "eSCL network scanner", "capabilities": c}),
                Err(e) => serde_json::json!({"name": name, "error": e}),
            });
        }
        listing
    })
    .await
    .map_err(ApiError::internal)?;
    Ok(Json(serde_json::json!({ "scanners": listing })))
}

/// A scan to start.
#[derive(Deserialize, utoipa::ToSchema)]
struct StartScan {
    device: String,
    dossier: String,
    procedure: String,
    unit: String,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    duplex: bool,
    #[serde(default)]
    dpi: Option<u32>,
    #[serde(default)]
    mode: Option<String>,
}

/// Starts a scan into a dossier: `202` with the job; the pages are processed as the feeder runs.
#[utoipa::path(post, path = "/v1/scans", tag = "scanning", request_body = StartScan,
    responses((status = 202, body = ScanStatus), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 409, body = ErrorBody),
              (status = 422, description = "the scanner cannot be used", body = ErrorBody)))]
async fn start_scan(
    State(archive): State<AppState>,
    caller: Caller,
    JsonBody(start): JsonBody<StartScan>,
) -> Result<(StatusCode, Json<ScanStatus>), ApiError> {
    let request = IngestRequest {
        dossier: NewDossier {
            code: DossierCode::parse(&start.dossier)?,
            procedure: ProcedureCode::parse(&start.procedure)?,
            unit: UnitCode::parse(&start.unit)?,
        },
        kind: match &start.kind {
            Some(kind) => kind.parse::<DocumentKind>()?,
            None => DocumentKind::default(),
        },
        job: None,
    };
    caller
        .require(&archive, Permission::Scan, "scan.start", &start.device)
        .await?;
    caller
        .require_in_unit(
            &archive,
            Permission::WriteDossiers,
            "scan.start",
            request.dossier.code.as_str(),
            Some(request.dossier.code.as_str()),
            request.dossier.unit.as_str(),
        )
        .await?;
    archive.repo().check_dossier(&request.dossier).await?;
    if start.dpi.is_some_and(|d| !(50..=1200).contains(&d)) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid-input",
            "dpi must be from 50 to 1200",
        ));
    }
    let settings = ScanSettings {
        source: start.source.clone(),
        duplex: start.duplex,
        dpi: start.dpi.or(Some(300)),
        mode: start.mode.clone(),
        options: Vec::new(),
    };
    let device = start.device.clone();
    let scan =
        tokio::task::spawn_blocking(move || scanner_drivers::scan::start(&device, &settings))
            .await
            .map_err(ApiError::internal)?
            .map_err(|reason| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "scanner-unavailable",
                    reason,
                )
            })?;

    let jobs = archive.scan_jobs();
    let id = {
        let mut next = jobs
            .next
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *next += 1;
        *next
    };
    let job = Arc::new(ScanJob {
        unit: start.unit.clone(),
        status: Mutex::new(ScanStatus {
            id,
            device: start.device.clone(),
            dossier: start.dossier.clone(),
            state: "scanning",
            pages_done: 0,
            pages_failed: 0,
            pages: Vec::new(),
            document: None,
            incomplete: None,
            error: None,
        }),
        cancel: Arc::clone(&scan.cancel),
        ended: Mutex::new(None),
    });
    jobs.forget_ended();
    jobs.jobs
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(id, Arc::clone(&job));
    let snapshot = lock(&job).clone();

    let progress_job = Arc::clone(&job);
    let progress: crate::ProgressFn = Arc::new(move |p: crate::IngestProgress| {
        let mut status = lock(&progress_job);
        status.pages_done = p.done;
        status.pages_failed = p.failed;
        if let Some(page) = p.page {
            status.pages.push(page);
        }
    });
    let interruption = scan.interruption;
    tokio::spawn(async move {
        let result = archive.ingest(request, scan.source, progress).await;
        let stopped = interruption
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let outcome = match result {
            Ok(report) => {
                if let Some(reason) = &stopped
                    && let Err(e) = archive.mark_incomplete(&report.document, reason).await
                {
                    tracing::error!(error = %e, "cannot record a scan as incomplete");
                }
                Ok(report.document)
            }
            Err(IngestError::PagesFailed(failures)) => Err(failures
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")),
            Err(e) => Err(e.to_string()),
        };
        *job.ended
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(std::time::Instant::now());
        let mut status = lock(&job);
        match outcome {
            Ok(document) => {
                status.state = "done";
                status.document = Some(document);
                status.incomplete = stopped;
            }
            Err(error) => {
                status.state = "failed";
                status.error = Some(error);
            }
        }
    });
    Ok((StatusCode::ACCEPTED, Json(snapshot)))
}

fn job_id(id: &str) -> Result<u64, ApiError> {
    id.parse().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid-input",
            format!("'{id}' is not a scan job id"),
        )
    })
}

fn not_found(id: u64) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "scan-not-found",
        format!("no scan job {id} on this server"),
    )
}

/// A scan job's progress.
#[utoipa::path(get, path = "/v1/scans/{id}", tag = "scanning",
    params(("id" = u64, Path, description = "scan job id")),
    responses((status = 200, body = ScanStatus), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
async fn scan_status(
    State(archive): State<AppState>,
    caller: Caller,
    PathParams(id): PathParams<String>,
) -> Result<Json<ScanStatus>, ApiError> {
    caller
        .require(&archive, Permission::Scan, "scan.read", &id)
        .await?;
    let job = scan_in_scope(&archive, &caller, &id, "scan.read").await?;
    let status = lock(&job).clone();
    Ok(Json(status))
}

/// The scan job `id`, if the caller may scan into its dossier's unit.
async fn scan_in_scope(
    archive: &AppState,
    caller: &Caller,
    id: &str,
    action: &str,
) -> Result<Arc<ScanJob>, ApiError> {
    let id = job_id(id)?;
    let job = archive.scan_jobs().get(id).ok_or_else(|| not_found(id))?;
    let dossier = lock(&job).dossier.clone();
    caller
        .require_in_unit(
            archive,
            Permission::Scan,
            action,
            &id.to_string(),
            Some(&dossier),
            &job.unit,
        )
        .await?;
    Ok(job)
}

/// A sheet of a scan, small, as soon as it is read (while the scan goes on): a JPEG at most 360 pixels
/// on a side. `404` with `page-not-ready` while the sheet is still being read or stored: ask again.
#[utoipa::path(get, path = "/v1/scans/{id}/pages/{n}/thumbnail", tag = "scanning",
    params(("id" = u64, Path, description = "scan job id"),
           ("n" = u32, Path, description = "the sheet's number in the scan, from 1")),
    responses((status = 200, description = "the sheet, small", content_type = "image/jpeg", body = Vec<u8>),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn scanned_thumbnail(
    State(archive): State<AppState>,
    caller: Caller,
    PathParams((id, n)): PathParams<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    let job = scan_in_scope(&archive, &caller, &id, "scan.page.read").await?;
    caller
        .require(&archive, Permission::ReadContent, "scan.page.read", &id)
        .await?;
    let n: u32 = n.parse().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid-input",
            format!("'{n}' is not a page number"),
        )
    })?;
    let (dossier, master) = {
        let status = lock(&job);
        let master = status
            .pages
            .iter()
            .find(|page| page.n == n)
            .map(|page| page.blake3.clone());
        (status.dossier.clone(), master)
    };
    let not_ready = || {
        ApiError::not_found(
            "page-not-ready",
            format!("page {n} of scan {id} is not read and stored yet"),
        )
    };
    let master = master.ok_or_else(not_ready)?;
    let hash = ContentHash::parse(&master)?;
    let bytes = match archive.blobs().get(&hash).await {
        Ok(bytes) => bytes,
        // Read, and on its way to the store: a moment more.
        Err(crate::BlobError::NotFound(_)) => return Err(not_ready()),
        Err(e) => return Err(ApiError::internal(e)),
    };
    let thumbnail = tokio::task::spawn_blocking(move || {
        pipeline::decode::thumbnail(&bytes, THUMBNAIL_SIDE, pipeline::DecodeLimits::default())
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    caller
        .record(
            &archive,
            "scan.page.read",
            &format!("{id}/{n}"),
            Some(&dossier),
        )
        .await?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/jpeg"),
            // Personal data, and a scan id names another scan after a restart: never cached.
            (header::CACHE_CONTROL, "no-store"),
        ],
        thumbnail,
    ))
}

/// Stops a scan; the pages already scanned are kept.
#[utoipa::path(delete, path = "/v1/scans/{id}", tag = "scanning",
    params(("id" = u64, Path, description = "scan job id")),
    responses((status = 200, body = ScanStatus), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
async fn cancel_scan(
    State(archive): State<AppState>,
    caller: Caller,
    PathParams(id): PathParams<String>,
) -> Result<Json<ScanStatus>, ApiError> {
    caller
        .require(&archive, Permission::Scan, "scan.cancel", &id)
        .await?;
    let job = scan_in_scope(&archive, &caller, &id, "scan.cancel").await?;
    job.cancel.store(true, Ordering::Relaxed);
    let status = lock(&job).clone();
    Ok(Json(status))
}
