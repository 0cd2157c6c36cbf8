//! Command-line parsing and dispatch.

mod bench;
mod get;
mod ingest;
mod replace;
mod search;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use archive_api::{Archive, ArchiveConfig};
use clap::{Parser, Subcommand};
use pipeline::PipelineOptions;

/// sohoa: turn scanned dossiers into a searchable, verifiable digital archive.
#[derive(Debug, Parser)]
#[command(name = "sohoa", version, about)]
pub struct Cli {
    /// Data directory: database, object store and search index.
    #[arg(long, global = true, env = "SOHOA_DATA", default_value = "sohoa-data")]
    data: PathBuf,

    /// OCR languages (Tesseract codes joined by '+').
    #[arg(
        long,
        global = true,
        env = "SOHOA_OCR_LANGUAGES",
        default_value = "vie+eng"
    )]
    languages: String,

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
    /// Ingest scanned pages as one document of a dossier.
    Ingest(ingest::Args),
    /// Replace a flagged page of a document with its rescan; the document is packaged again.
    ReplacePage(replace::Args),
    /// Search the archive (accent-insensitive).
    Search(search::Args),
    /// Fetch a stored document or page by its BLAKE3 hash, verified.
    Get(get::Args),
    /// Rebuild the search index from the database.
    Reindex,
    /// Benchmark ingest beside plain Tesseract over the same pages (run by hand).
    Bench(bench::Args),
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
        "info"
    } else {
        "warn"
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
    let mut pipeline = PipelineOptions::default();
    if let Some(threads) = cli.threads {
        pipeline.threads = threads.max(1);
        pipeline.window = pipeline.threads * 2;
    }
    pipeline.ocr.languages = cli.languages.clone();
    let config = ArchiveConfig {
        data_dir: cli.data.clone(),
        pipeline,
        keep_blank_pages: cli.keep_blank_pages,
    };
    let open = || Archive::open(config.clone());
    match cli.command {
        Command::Serve(args) => serve::run(open().await?, &cli.data, args).await,
        Command::Ingest(args) => ingest::run(&open().await?, args).await,
        Command::ReplacePage(args) => replace::run(&open().await?, args).await,
        Command::Search(args) => search::run(&open().await?, args).await,
        Command::Get(args) => get::run(&open().await?, args).await,
        Command::Bench(args) => {
            let languages = cli.languages.clone();
            tokio::task::spawn_blocking(move || bench::run(&languages, cli.threads, args)).await?
        }
        Command::Reindex => {
            let archive = open().await?;
            let pages = archive.index().rebuild(archive.repo()).await?;
            println!("search index rebuilt: {pages} pages");
            Ok(ExitCode::SUCCESS)
        }
    }
}
