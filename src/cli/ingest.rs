//! `sohoa ingest`: scanned files in, one packaged, stored, indexed document out.

use std::path::PathBuf;
use std::process::ExitCode;

use archive_api::codes::{DocumentKind, DossierCode, ProcedureCode, UnitCode};
use archive_api::{Archive, IngestError, IngestRequest, NewDossier};
use scanner_drivers::FileImport;

use crate::settings::Settings;

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// Dossier code, e.g. 000.00.15.H27-231128-0042.
    #[arg(long)]
    dossier: String,
    /// Procedure code, e.g. 1.001234.
    #[arg(long)]
    procedure: String,
    /// Unit (agency) code, e.g. 000.00.15.H27.
    #[arg(long)]
    unit: String,
    /// Whether the pages are a component the citizen submitted or the result returned.
    #[arg(long, default_value = "submitted", value_parser = ["submitted", "result"])]
    kind: String,
    /// Print a machine-readable JSON summary on standard output.
    #[arg(long)]
    json: bool,
    /// Image files (PNG, JPEG, TIFF, multi-page TIFF) or folders of them, in page order.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

pub(super) async fn run(
    archive: &Archive,
    settings: &Settings,
    args: Args,
) -> anyhow::Result<ExitCode> {
    let dossier = NewDossier {
        code: DossierCode::parse(&args.dossier)?,
        procedure: ProcedureCode::parse(&args.procedure)?,
        unit: UnitCode::parse(&args.unit)?,
    };
    let kind: DocumentKind = args.kind.parse()?;
    let source = FileImport::with_limits(&args.paths, settings.import_limits())?;
    let skipped = source.skipped();
    if !skipped.is_empty() {
        let names: Vec<String> = skipped
            .iter()
            .take(5)
            .map(|p| p.display().to_string())
            .collect();
        let more = skipped.len().saturating_sub(names.len());
        eprintln!(
            "note: skipped {} file(s) that are not images: {}{}",
            skipped.len(),
            names.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        );
    }
    ingest_source(
        archive,
        IngestRequest {
            dossier,
            kind,
            job: None,
        },
        Box::new(source),
        None,
        args.json,
    )
    .await
}

/// The dossier a scan goes into.
#[derive(Debug, clap::Args)]
pub(super) struct DossierArgs {
    /// Dossier code, e.g. 000.00.15.H27-231128-0042.
    #[arg(long)]
    pub dossier: String,
    /// Procedure code, e.g. 1.001234.
    #[arg(long)]
    pub procedure: String,
    /// Unit (agency) code, e.g. 000.00.15.H27.
    #[arg(long)]
    pub unit: String,
    /// Whether the pages are a component the citizen submitted or the result returned.
    #[arg(long, default_value = "submitted", value_parser = ["submitted", "result"])]
    pub kind: String,
}

impl DossierArgs {
    pub fn request(&self) -> anyhow::Result<IngestRequest> {
        Ok(IngestRequest {
            dossier: NewDossier {
                code: DossierCode::parse(&self.dossier)?,
                procedure: ProcedureCode::parse(&self.procedure)?,
                unit: UnitCode::parse(&self.unit)?,
            },
            kind: self.kind.parse()?,
            job: None,
        })
    }
}

/// Ingests `source` with a progress bar and prints the outcome. `interruption`, when the source sets it,
/// says why the source stopped early: the pages before are stored and the document is recorded as
/// incomplete (exit status 2).
pub(super) async fn ingest_source(
    archive: &Archive,
    request: IngestRequest,
    source: Box<dyn scanner_drivers::PageSource>,
    interruption: Option<std::sync::Arc<std::sync::Mutex<Option<String>>>>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let (bar, progress) = super::page_progress(source.expected_pages());
    let result = archive.ingest(request, source, progress).await;
    bar.finish_and_clear();
    let stopped = interruption.and_then(|i| {
        i.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    });
    match result {
        Ok(mut report) => {
            if let Some(reason) = &stopped {
                archive.mark_incomplete(&report.document, reason).await?;
                report.incomplete = Some(reason.clone());
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!(
                    "dossier {}: {} document {} ({} pages, {} KiB)",
                    report.dossier,
                    report.kind.as_str(),
                    report.document,
                    report.pages.len(),
                    report.bytes / 1024
                );
                for page in &report.pages {
                    let mut notes = Vec::new();
                    if !page.note.is_empty() {
                        notes.push(page.note.clone());
                    }
                    if page.dpi_assumed {
                        notes.push("resolution not in the file, assumed 300 dpi".to_owned());
                    }
                    println!(
                        "  page {:>3}  {:>5.1}%  {}  {}{}",
                        page.n,
                        page.confidence,
                        page.blake3,
                        page.origin,
                        if notes.is_empty() {
                            String::new()
                        } else {
                            format!("  [{}]", notes.join("; "))
                        }
                    );
                }
            }
            if !report.failed.is_empty() {
                eprintln!(
                    "{} of the pages could not be read; the others are stored, and these are recorded in their place as failed:",
                    report.failed.len()
                );
                for failed in &report.failed {
                    eprintln!("  page {} ({}): {}", failed.n, failed.origin, failed.reason);
                }
                eprintln!(
                    "rescan each and replace it: sohoa replace-page --document {} --page N FILE",
                    report.document
                );
                return Ok(ExitCode::from(2));
            }
            if let Some(reason) = stopped {
                eprintln!(
                    "the scan stopped early: {reason}\nthe {} page(s) above are stored; the document is recorded as incomplete",
                    report.pages.len()
                );
                return Ok(ExitCode::from(2));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(IngestError::PagesFailed(failures)) => {
            if json {
                let pages: Vec<_> = failures
                    .iter()
                    .map(|f| serde_json::json!({"n": f.number, "origin": f.origin, "reason": f.error.to_string()}))
                    .collect();
                println!(
                    "{}",
                    serde_json::json!({"error": "pages-failed", "message": "some pages failed; nothing was recorded", "pages": pages})
                );
            }
            eprintln!(
                "error: {} of the pages could not be processed; nothing was recorded. Fix or rescan these pages and run the same command again:",
                failures.len()
            );
            for failure in &failures {
                eprintln!("  {failure}");
            }
            Ok(ExitCode::FAILURE)
        }
        Err(other) => Err(other.into()),
    }
}
