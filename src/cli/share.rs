//! `sohoa scanner share`: any scanner sohoa can drive (a SANE device, or a folder of page images for demos
//! and training) served as an eSCL (AirScan) network scanner, so a desk PC with a USB scanner serves the
//! whole office, and any eSCL client (sane-airscan, Windows, macOS, phones) can scan from it.
//!
//! One job at a time, as a real device: `POST /eSCL/ScanJobs` while a job runs is answered 503. Pages are
//! produced on a worker thread as the scanner delivers them; `NextDocument` answers 503 until the next page
//! is ready and 404 when the job has no more.

use std::collections::VecDeque;
use std::io::Cursor;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use scanner_drivers::escl::{self, Offer, ScanRequest};
use scanner_drivers::sane::{ScanSettings, Scanner};
use scanner_drivers::{FileImport, PageSource};

#[derive(Debug, clap::Args)]
pub(super) struct ShareArgs {
    /// Address to serve eSCL on (clients then use http://ADDR/eSCL).
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    /// The SANE scanner to share, as `sohoa scanners` names it.
    #[arg(long, conflicts_with = "folder", required_unless_present = "folder")]
    device: Option<String>,
    /// Share a folder of page images (PNG, JPEG, TIFF) instead: each job delivers them in name order.
    #[arg(long)]
    folder: Option<PathBuf>,
    /// A further SANE option for every job, NAME=VALUE, as scanimage names it (repeatable).
    #[arg(long = "option", value_name = "NAME=VALUE")]
    options: Vec<String>,
    /// The name clients show for this scanner (announced over mDNS as `_uscan._tcp`).
    #[arg(long, default_value = "sohoa scanner")]
    name: String,
    /// Do not announce the scanner on the local network (clients then need its URL).
    #[arg(long)]
    no_advertise: bool,
}

#[derive(Debug, clap::Subcommand)]
pub(super) enum ScannerCommand {
    /// Serve a local scanner (or a folder of images) as an eSCL network scanner.
    Share(ShareArgs),
}

/// Where the pages of a job come from.
#[derive(Clone)]
enum Backend {
    Sane(String, Vec<(String, String)>),
    Folder(PathBuf),
}

struct Job {
    id: String,
    pages: VecDeque<(Vec<u8>, &'static str)>,
    finished: bool,
    cancel: Arc<AtomicBool>,
}

struct Bridge {
    backend: Backend,
    offer: Offer,
    job: Mutex<Option<Job>>,
    next_id: Mutex<u64>,
}

type Shared = Arc<Bridge>;

pub(super) async fn run(command: ScannerCommand) -> anyhow::Result<ExitCode> {
    let ScannerCommand::Share(args) = command;
    let backend = match (&args.device, &args.folder) {
        (Some(device), _) => {
            Backend::Sane(device.clone(), super::scan::scanner_options(&args.options)?)
        }
        (None, Some(folder)) => Backend::Folder(folder.clone()),
        (None, None) => anyhow::bail!("give --device or --folder"),
    };
    let offer = {
        let backend = backend.clone();
        tokio::task::spawn_blocking(move || offer(&backend)).await??
    };
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let address = listener.local_addr()?;
    let _announcement = if args.no_advertise {
        None
    } else {
        match escl::advertise(&offer, &args.name, address.ip(), address.port()) {
            Ok(daemon) => Some(daemon),
            Err(reason) => {
                tracing::warn!(%reason, "the scanner is not announced on the network; clients need its URL");
                None
            }
        }
    };
    let bridge = Arc::new(Bridge {
        backend,
        offer,
        job: Mutex::new(None),
        next_id: Mutex::new(1),
    });
    let app = Router::new()
        .route("/eSCL/ScannerCapabilities", get(capabilities))
        .route("/eSCL/ScannerStatus", get(status))
        .route("/eSCL/ScanJobs", post(start_job))
        .route("/eSCL/ScanJobs/{id}/NextDocument", get(next_document))
        .route("/eSCL/ScanJobs/{id}", delete(cancel_job))
        .with_state(bridge);
    println!("sohoa scanner share: eSCL at http://{address}/eSCL");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(ExitCode::SUCCESS)
}

/// What the shared scanner offers, from its SANE capabilities (or fixed, for a folder).
fn offer(backend: &Backend) -> anyhow::Result<Offer> {
    let standard = [75, 100, 150, 200, 300, 600];
    match backend {
        Backend::Folder(folder) => {
            anyhow::ensure!(folder.is_dir(), "{} is not a folder", folder.display());
            Ok(Offer {
                make_and_model: format!("sohoa shared folder {}", folder.display()),
                uuid: uuid_for(&folder.display().to_string()),
                platen: true,
                feeder: true,
                duplex: false,
                resolutions: vec![300],
                color_modes: vec!["RGB24", "Grayscale8"],
                formats: vec!["image/png", "image/jpeg"],
            })
        }
        Backend::Sane(device, _) => {
            let capabilities = Scanner::open(device)?.capabilities()?;
            let lower: Vec<String> = capabilities
                .sources
                .iter()
                .map(|s| s.to_ascii_lowercase())
                .collect();
            let feeder = lower
                .iter()
                .any(|s| s.contains("adf") || s.contains("feeder"));
            let platen = lower.is_empty() || lower.iter().any(|s| s.contains("flatbed"));
            let resolutions = if capabilities.resolution_range {
                let (min, max) = (capabilities.resolutions[0], capabilities.resolutions[1]);
                standard
                    .iter()
                    .copied()
                    .filter(|r| (min..=max).contains(r))
                    .collect()
            } else {
                capabilities.resolutions.clone()
            };
            let mut color_modes = Vec::new();
            for mode in &capabilities.modes {
                match mode.to_ascii_lowercase().as_str() {
                    "color" | "colour" => color_modes.push("RGB24"),
                    "gray" | "grey" | "grayscale" => color_modes.push("Grayscale8"),
                    _ => {}
                }
            }
            if color_modes.is_empty() {
                color_modes.push("RGB24");
            }
            Ok(Offer {
                make_and_model: format!("sohoa shared scanner {device}"),
                uuid: uuid_for(device),
                platen,
                feeder,
                duplex: lower.iter().any(|s| s.contains("duplex")),
                resolutions,
                color_modes,
                formats: vec!["image/png", "image/jpeg"],
            })
        }
    }
}

/// A stable UUID-shaped identifier, so clients recognise the device across restarts.
fn uuid_for(name: &str) -> String {
    let hash = blake3_hex(name.as_bytes());
    format!(
        "{}-{}-{}-{}-{}",
        &hash[0..8],
        &hash[8..12],
        &hash[12..16],
        &hash[16..20],
        &hash[20..32]
    )
}

fn blake3_hex(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

fn xml(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/xml")], body).into_response()
}

async fn capabilities(State(bridge): State<Shared>) -> Response {
    xml(escl::capabilities_xml(&bridge.offer))
}

async fn status(State(bridge): State<Shared>) -> Response {
    let processing = bridge
        .job
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .as_ref()
        .is_some_and(|j| !j.finished);
    xml(escl::status_xml(processing, bridge.offer.feeder))
}

async fn start_job(State(bridge): State<Shared>, headers: HeaderMap, body: String) -> Response {
    let request = match escl::parse_scan_settings(&body) {
        Ok(request) => request,
        Err(reason) => return (StatusCode::BAD_REQUEST, reason).into_response(),
    };
    let cancel = Arc::new(AtomicBool::new(false));
    let id = {
        let mut job = bridge
            .job
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if job.as_ref().is_some_and(|j| !j.finished) {
            return (StatusCode::SERVICE_UNAVAILABLE, "a scan job is running").into_response();
        }
        let mut next = bridge
            .next_id
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let id = format!("{:08x}-0000-4000-8000-{:012x}", *next, *next);
        *next += 1;
        *job = Some(Job {
            id: id.clone(),
            pages: VecDeque::new(),
            finished: false,
            cancel: Arc::clone(&cancel),
        });
        id
    };
    let producer = Arc::clone(&bridge);
    let job_id = id.clone();
    std::thread::spawn(move || produce(&producer, &job_id, &request, &cancel));
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    (
        StatusCode::CREATED,
        [(
            header::LOCATION,
            format!("http://{host}/eSCL/ScanJobs/{id}"),
        )],
    )
        .into_response()
}

/// Scans (or reads) the job's pages on a worker thread, handing each over as it comes.
fn produce(bridge: &Bridge, id: &str, request: &ScanRequest, cancel: &AtomicBool) {
    let feeder = request.input_source.eq_ignore_ascii_case("Feeder");
    let want_jpeg = request
        .document_format
        .as_deref()
        .is_some_and(|f| f.eq_ignore_ascii_case("image/jpeg"));
    let grey = request
        .color_mode
        .as_deref()
        .is_some_and(|m| m.starts_with("Grayscale") || m.starts_with("BlackAndWhite"));
    let source: Result<Box<dyn PageSource>, String> = match &bridge.backend {
        Backend::Folder(folder) => FileImport::new([folder])
            .map(|s| Box::new(s) as Box<dyn PageSource>)
            .map_err(|e| e.to_string()),
        Backend::Sane(device, options) => {
            let settings = ScanSettings {
                source: Some(if feeder { "adf" } else { "flatbed" }.to_owned())
                    .filter(|_| bridge.offer.feeder),
                duplex: request.duplex,
                dpi: request.resolution,
                mode: Some(if grey { "gray" } else { "color" }.to_owned()),
                options: options.clone(),
            };
            // In the scan helper process, like every SANE scan: a backend that hangs cannot hang the bridge.
            scanner_drivers::scan::start(device, &settings).map(|running| running.source)
        }
    };
    let push = |page: Option<(Vec<u8>, &'static str)>| {
        let mut job = bridge
            .job
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(job) = job.as_mut().filter(|j| j.id == id) {
            match page {
                Some(page) => job.pages.push_back(page),
                None => job.finished = true,
            }
        }
    };
    match source {
        Err(reason) => tracing::error!(%reason, "shared scanner: the job could not start"),
        Ok(mut source) => {
            while let Some(page) = source.next_page() {
                if cancel.load(Ordering::Relaxed) {
                    break;
                }
                match page
                    .map_err(|e| e.to_string())
                    .and_then(|p| convert(&p.bytes, want_jpeg, grey))
                {
                    Ok(page) => push(Some(page)),
                    Err(reason) => {
                        tracing::error!(%reason, "shared scanner: a page failed; the job ends");
                        break;
                    }
                }
                if !feeder {
                    break;
                }
            }
        }
    }
    push(None);
}

/// The page as the client asked for it: PNG or JPEG, colour or grey.
fn convert(bytes: &[u8], jpeg: bool, grey: bool) -> Result<(Vec<u8>, &'static str), String> {
    let image = image::load_from_memory(bytes).map_err(|e| e.to_string())?;
    let image = if grey {
        image::DynamicImage::ImageLuma8(image.to_luma8())
    } else {
        image::DynamicImage::ImageRgb8(image.to_rgb8())
    };
    let mut out = Cursor::new(Vec::new());
    let (format, media_type) = if jpeg {
        (image::ImageFormat::Jpeg, "image/jpeg")
    } else {
        (image::ImageFormat::Png, "image/png")
    };
    image
        .write_to(&mut out, format)
        .map_err(|e| e.to_string())?;
    Ok((out.into_inner(), media_type))
}

async fn next_document(State(bridge): State<Shared>, Path(id): Path<String>) -> Response {
    let mut job = bridge
        .job
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some(job) = job.as_mut().filter(|j| j.id == id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match job.pages.pop_front() {
        Some((bytes, media_type)) => ([(header::CONTENT_TYPE, media_type)], bytes).into_response(),
        None if job.finished => StatusCode::NOT_FOUND.into_response(),
        None => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

async fn cancel_job(State(bridge): State<Shared>, Path(id): Path<String>) -> Response {
    let mut job = bridge
        .job
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match job.as_mut().filter(|j| j.id == id) {
        Some(job) => {
            job.cancel.store(true, Ordering::Relaxed);
            job.finished = true;
            job.pages.clear();
            StatusCode::OK.into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
