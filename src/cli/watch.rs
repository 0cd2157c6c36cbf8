//! `sohoa watch`: ingest what scanners drop into a folder (scan-to-folder), each file once it is complete.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use archive_api::codes::{DocumentKind, DossierCode, ProcedureCode, UnitCode};
use archive_api::{Archive, IngestError, IngestRequest, NewDossier};
use scanner_drivers::FileImport;
use scanner_drivers::hotfolder::{Batch, HotFolder};
use serde::Deserialize;

use crate::settings::Settings;

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// The folder scanners write to. Files named DOSSIER[_result|_submitted][_anything].ext form one
    /// document per dossier and kind, in name order; DOSSIER.json beside them may give
    /// {"procedure", "unit", "kind"}. Processed files move to done/, refused ones to failed/ with a reason.
    folder: PathBuf,
    /// Procedure code for dossiers without a sidecar.
    #[arg(long)]
    procedure: Option<String>,
    /// Unit code for dossiers without a sidecar [default: the unit in the dossier code].
    #[arg(long)]
    unit: Option<String>,
    /// Seconds a file must stay unchanged (and end as its format must) before it is taken.
    #[arg(long, default_value_t = 5.0)]
    settle: f64,
    /// Seconds between looks at the folder.
    #[arg(long, default_value_t = 2.0)]
    interval: f64,
    /// Process what is complete now, then exit (for a scheduled job).
    #[arg(long)]
    once: bool,
}

/// `DOSSIER.json`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Sidecar {
    procedure: Option<String>,
    unit: Option<String>,
    kind: Option<String>,
}

pub(super) async fn run(
    archive: &Archive,
    settings: &Settings,
    args: Args,
) -> anyhow::Result<ExitCode> {
    let seconds = |s: f64, name: &str| {
        Duration::try_from_secs_f64(s)
            .map_err(|_| anyhow::anyhow!("--{name} must be a number of seconds, not {s}"))
    };
    let settle = seconds(args.settle, "settle")?;
    let interval = seconds(args.interval, "interval")?.max(Duration::from_millis(100));
    let mut hot = HotFolder::open(&args.folder, settle)
        .map_err(|e| anyhow::anyhow!("cannot watch {}: {e}", args.folder.display()))?;
    eprintln!(
        "watching {} (a file is taken once unchanged for {:.1} s and complete)",
        hot.root().display(),
        settle.as_secs_f64()
    );
    if args.once {
        // Two looks, a settle apart: files that were already complete are taken.
        hot.poll()?;
        tokio::time::sleep(settle + Duration::from_millis(50)).await;
    }
    loop {
        let batches = match hot.poll() {
            Ok(batches) => batches,
            Err(e) => {
                tracing::error!(folder = %args.folder.display(), error = %e, "cannot read the hot folder; retrying");
                tokio::time::sleep(interval * 5).await;
                continue;
            }
        };
        for batch in batches {
            match ingest(archive, settings, &args, &batch).await {
                // Files are moved before the line is printed: whoever reads the line finds them in place.
                Ok((line, failed_files)) => {
                    hot.finish_each(&batch, &failed_files)?;
                    println!("{line}");
                }
                Err(Outcome::Refused(reason)) => {
                    hot.finish(&batch, Err(&reason))?;
                    println!("refused {}: {reason}", batch.dossier);
                }
                Err(Outcome::Retry(reason)) => {
                    // The archive, not the file, failed: leave the files for the next look.
                    tracing::error!(dossier = %batch.dossier, error = %reason, "ingest failed; the files stay for a retry");
                }
            }
        }
        if args.once {
            return Ok(ExitCode::SUCCESS);
        }
        tokio::time::sleep(interval).await;
    }
}

enum Outcome {
    /// The files cannot be ingested as they are: they go to failed/.
    Refused(String),
    /// The archive failed: try again later.
    Retry(String),
}

async fn ingest(
    archive: &Archive,
    settings: &Settings,
    args: &Args,
    batch: &Batch,
) -> Result<(String, Vec<(PathBuf, String)>), Outcome> {
    let refused = |e: &dyn std::fmt::Display| Outcome::Refused(e.to_string());
    let sidecar: Sidecar = match &batch.sidecar {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| refused(&e))?;
            serde_json::from_str(&text)
                .map_err(|e| Outcome::Refused(format!("{}: {e}", path.display())))?
        }
        None => Sidecar::default(),
    };
    let code = DossierCode::parse(&batch.dossier).map_err(|e| refused(&e))?;
    let procedure = sidecar
        .procedure
        .or_else(|| args.procedure.clone())
        .ok_or_else(|| {
            Outcome::Refused(format!(
                "no procedure code: write {}.json with {{\"procedure\": \"...\"}} or run watch with --procedure",
                batch.dossier
            ))
        })?;
    let unit = match sidecar.unit.or_else(|| args.unit.clone()) {
        Some(unit) => UnitCode::parse(&unit).map_err(|e| refused(&e))?,
        None => code.unit().clone(),
    };
    let kind: DocumentKind = batch
        .kind
        .clone()
        .or(sidecar.kind)
        .unwrap_or_else(|| "submitted".to_owned())
        .parse()
        .map_err(|e| refused(&e))?;
    let dossier = NewDossier {
        procedure: ProcedureCode::parse(&procedure).map_err(|e| refused(&e))?,
        code,
        unit,
    };
    let source =
        FileImport::with_limits(&batch.files, settings.import_limits()).map_err(|e| refused(&e))?;
    let progress: archive_api::ProgressFn = std::sync::Arc::new(|_| {});
    match archive
        .ingest(
            IngestRequest {
                dossier,
                kind,
                job: None,
            },
            Box::new(source),
            progress,
        )
        .await
    {
        Ok(report) => {
            // A file with a page that could not be read goes to failed/, with what to do.
            let mut failed_files: Vec<(PathBuf, String)> = Vec::new();
            for failed in &report.failed {
                let Some(file) = batch.files.iter().find(|f| {
                    let name = f.display().to_string();
                    failed.origin == name || failed.origin.starts_with(&format!("{name}, page "))
                }) else {
                    continue;
                };
                let note = format!(
                    "page {} could not be read: {}\nthe other pages are stored as document {}; rescan this page and \
                     run: sohoa replace-page --document {} --page {} FILE",
                    failed.n, failed.reason, report.document, report.document, failed.n
                );
                match failed_files.iter_mut().find(|(f, _)| f == file) {
                    Some((_, reason)) => {
                        reason.push('\n');
                        reason.push_str(&note);
                    }
                    None => failed_files.push((file.clone(), note)),
                }
            }
            let line = format!(
                "ingested {}: {} document {} ({} pages from {} files){}",
                report.dossier,
                report.kind.as_str(),
                report.document,
                report.pages.len(),
                batch.files.len(),
                if report.failed.is_empty() {
                    String::new()
                } else {
                    let pages: Vec<String> = report
                        .failed
                        .iter()
                        .map(|f| format!("page {} ({}): {}", f.n, f.origin, f.reason))
                        .collect();
                    format!("; could not read, rescan and replace: {}", pages.join("; "))
                }
            );
            Ok((line, failed_files))
        }
        Err(
            e @ (IngestError::Invalid(_)
            | IngestError::Conflict(_)
            | IngestError::NoPages
            | IngestError::PagesFailed(_)),
        ) => Err(refused(&e)),
        Err(e) => Err(Outcome::Retry(e.to_string())),
    }
}
