//! `sohoa replace-page`: a flagged page rescanned and put in its place; the document is packaged again.

use std::path::PathBuf;
use std::process::ExitCode;

use archive_api::codes::ContentHash;
use archive_api::{Archive, IngestError};
use scanner_drivers::FileImport;

use crate::settings::Settings;

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// BLAKE3 of the document (its PDF), as `ingest` printed it.
    #[arg(long)]
    document: String,
    /// The number of the page to replace, from 1, as `ingest` listed it.
    #[arg(long)]
    page: u32,
    /// Print a machine-readable JSON summary on standard output, as `ingest --json` does.
    #[arg(long)]
    json: bool,
    /// The rescanned page: one image file.
    file: PathBuf,
}

pub(super) async fn run(
    archive: &Archive,
    settings: &Settings,
    args: Args,
) -> anyhow::Result<ExitCode> {
    let document = ContentHash::parse(&args.document)?;
    let source = FileImport::with_limits([&args.file], settings.import_limits())?;
    let (bar, progress) = super::page_progress(None);
    let result = archive
        .replace_page(&document, args.page, Box::new(source), progress)
        .await;
    bar.finish_and_clear();
    match result {
        Ok(report) => {
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                let page = report.pages.iter().find(|p| p.n == args.page);
                println!(
                    "dossier {}: page {} replaced; the document is now {} (it replaces {})",
                    report.dossier, args.page, report.document, args.document
                );
                if let Some(page) = page.filter(|p| !p.note.is_empty()) {
                    println!("  the new page: {:.1}%  [{}]", page.confidence, page.note);
                }
            }
            if !report.failed.is_empty() {
                eprintln!("pages still recorded as failed, to rescan and replace:");
                for failed in &report.failed {
                    eprintln!("  page {} ({}): {}", failed.n, failed.origin, failed.reason);
                }
                return Ok(ExitCode::from(2));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(IngestError::PagesFailed(failures)) => {
            eprintln!("error: the document could not be packaged again; nothing was changed:");
            for failure in &failures {
                eprintln!("  {failure}");
            }
            Ok(ExitCode::FAILURE)
        }
        Err(other) => Err(other.into()),
    }
}
