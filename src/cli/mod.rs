//! Command-line parsing and dispatch.

mod account;
mod audit;
mod bench;
mod bench_search;
mod bench_workers;
mod copy;
mod export;
mod gc;
mod get;
mod ingest;
mod replace;
mod scan;
mod search;
mod serve;
mod share;
mod watch;
mod worker;

use std::path::PathBuf;
use std::process::ExitCode;

use archive_api::{Archive, ArchiveConfig};
use clap::{Parser, Subcommand};

use crate::settings::Settings;

/// sohoa: turn scanned dossiers into a searchable, verifiable digital archive.
#[derive(Debug, Parser)]
#[command(name = "sohoa", version, about)]
pub struct Cli {
    /// Settings file (TOML; see sohoa.example.toml) [default: ./sohoa.toml when present].
    #[arg(long, global = true, env = "SOHOA_CONFIG")]
    config: Option<PathBuf>,

    /// Data directory: database, object store and search index [default: sohoa-data].
    #[arg(long, global = true, env = "SOHOA_DATA")]
    data: Option<PathBuf>,

    /// OCR languages (Tesseract codes joined by '+') [default: vie+eng].
    #[arg(long, global = true, env = "SOHOA_OCR_LANGUAGES")]
    languages: Option<String>,

    /// Worker threads for page processing [default: one per core].
    #[arg(long, global = true, env = "SOHOA_THREADS")]
    threads: Option<usize>,

    /// Put blank pages into the packaged PDF too (they are always flagged, and their masters kept).
    #[arg(long, global = true, env = "SOHOA_KEEP_BLANK_PAGES")]
    keep_blank_pages: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP service.
    Serve(serve::Args),
    /// Process queued jobs (packaging uploaded pages); run any number, on any machines sharing the
    /// database and object store.
    Worker(worker::Args),
    /// Ingest scanned pages as one document of a dossier.
    Ingest(ingest::Args),
    /// Replace a flagged page of a document with its rescan; the document is packaged again.
    ReplacePage(replace::Args),
    /// List the scanners this computer can use (SANE), with their sources, modes and resolutions.
    Scanners(scan::ScannersArgs),
    /// Scan from a scanner straight into a dossier: pages are read as the feeder runs.
    Scan(scan::ScanArgs),
    /// Scanner sharing: `sohoa scanner share` serves a local scanner as an eSCL network scanner.
    #[command(subcommand)]
    Scanner(share::ScannerCommand),
    /// Watch a scan-to-folder target and ingest each dossier's files once they are complete.
    Watch(watch::Args),
    /// Search the archive (accent-insensitive).
    Search(search::Args),
    /// Fetch a stored document or page by its BLAKE3 hash, verified.
    Get(get::Args),
    /// Issue a certified copy (SAO Y, signed by the document's unit) of an archived document by its hash.
    Copy(copy::CopyArgs),
    /// Check that a PDF is an intact certified copy issued by this archive.
    Verify(copy::VerifyArgs),
    /// Write a dossier as a BagIt preservation package (RFC 8493), readable without sohoa.
    Export(export::ExportArgs),
    /// Import a dossier from a BagIt package written by `export`, after checking it whole (exit 1 if it
    /// is refused).
    Import(export::ImportArgs),
    /// Remove stored objects that no database row records, once older than a grace period (24 h).
    Gc(gc::Args),
    /// Rebuild the search index from the database.
    Reindex,
    /// Fixity: read every stored object back and check it against its recorded hash (exit 1 on any
    /// missing or damaged object).
    Audit(audit::Args),
    /// Accounts and their bearer tokens for the API.
    #[command(subcommand)]
    Account(account::AccountCommand),
    /// Benchmark ingest beside plain Tesseract and OCRmyPDF over the same pages (run by hand).
    Bench(bench::Args),
    /// Benchmark search latency on a generated corpus (a million pages by default) beside SQLite FTS5.
    BenchSearch(bench_search::Args),
    /// Benchmark the work queue: pages per second with 1, 2, 4 worker processes on SQLite and on
    /// PostgreSQL + the configured object store, and search latency over HTTP on each (run by hand).
    BenchWorkers(bench_workers::Args),
}

/// A progress bar for pages, and the callback that moves it. The total comes from the source when it knows
/// it, or from the first report.
fn page_progress(total: Option<usize>) -> (indicatif::ProgressBar, archive_api::ProgressFn) {
    let bar = indicatif::ProgressBar::new(total.unwrap_or(0) as u64).with_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {bar:40} {pos}/{len} pages  {elapsed}  {msg}",
        )
        .expect("the template is valid"),
    );
    let progress_bar = bar.clone();
    let progress = std::sync::Arc::new(move |p: archive_api::IngestProgress| {
        if let Some(total) = p.total {
            progress_bar.set_length(total as u64);
        }
        progress_bar.set_position(p.done as u64);
        if p.failed > 0 {
            progress_bar.set_message(format!("{} failed", p.failed));
        }
    });
    (bar, progress)
}

/// Parses the command line, runs the command and returns the process's exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = if matches!(cli.command, Command::Serve(_)) {
        // tantivy reports every commit at info: an operator's log is not the place.
        "info,tantivy=warn,lopdf=error"
    } else {
        "warn,lopdf=error"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let mut settings = Settings::load(cli.config.as_deref())?;
    // Flags (and the single-name variables that stand for them) override the settings file.
    if let Some(data) = &cli.data {
        settings.data = data.clone();
    }
    if let Some(languages) = &cli.languages {
        settings.ocr.languages = languages.clone();
    }
    if let Some(threads) = cli.threads {
        settings.ocr.threads = threads.max(1);
    }
    if cli.keep_blank_pages {
        settings.packaging.keep_blank_pages = true;
    }
    let config = ArchiveConfig {
        data_dir: settings.data.clone(),
        pipeline: settings.pipeline(),
        keep_blank_pages: settings.packaging.keep_blank_pages,
        units: settings.unit_certificates()?,
        max_upload_bytes: settings.limits.max_upload_bytes,
        fixity_interval: (settings.server.fixity_days > 0).then(|| {
            std::time::Duration::from_secs(u64::from(settings.server.fixity_days) * 24 * 3600)
        }),
        database_url: settings.database_url(),
        objects_url: (!settings.storage.objects.is_empty())
            .then(|| settings.storage.objects.clone()),
        objects_options: settings.s3_options(),
    };
    let open = || Archive::open(config.clone());
    match cli.command {
        Command::Serve(args) => serve::run(open().await?, &settings, args).await,
        Command::Worker(args) => worker::run(open().await?, args).await,
        Command::Ingest(args) => ingest::run(&open().await?, &settings, args).await,
        Command::ReplacePage(args) => replace::run(&open().await?, &settings, args).await,
        Command::Search(args) => search::run(&open().await?, args).await,
        Command::Scanners(args) => scan::run_scanners(args, &settings).await,
        Command::Scan(args) => scan::run_scan(&open().await?, args).await,
        Command::Scanner(command) => share::run(command).await,
        Command::Watch(args) => watch::run(&open().await?, &settings, args).await,
        Command::Get(args) => get::run(&open().await?, args).await,
        Command::Gc(args) => gc::run(&open().await?, args).await,
        Command::Copy(args) => copy::run_copy(&open().await?, args).await,
        Command::Verify(args) => copy::run_verify(&open().await?, args).await,
        Command::Bench(args) => {
            let languages = settings.ocr.languages.clone();
            tokio::task::spawn_blocking(move || bench::run(&languages, cli.threads, args)).await?
        }
        Command::Audit(args) => audit::run(&open().await?, args).await,
        Command::Export(args) => export::run_export(&open().await?, args).await,
        Command::Import(args) => export::run_import(&open().await?, args).await,
        Command::Account(command) => account::run(&open().await?, command).await,
        Command::BenchSearch(args) => {
            tokio::task::spawn_blocking(move || bench_search::run(args)).await?
        }
        Command::BenchWorkers(args) => {
            tokio::task::spawn_blocking(move || bench_workers::run(args)).await?
        }
        Command::Reindex => {
            let archive = open().await?;
            let pages = archive.index().rebuild(archive.repo()).await?;
            println!("search index rebuilt: {pages} pages");
            Ok(ExitCode::SUCCESS)
        }
    }
}
