//! `sohoa export` and `sohoa import`: a dossier as a BagIt preservation package (RFC 8493), and such a
//! package read back into an archive.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use archive_api::Archive;
use archive_api::codes::DossierCode;
use archive_api::export::{BagProgress, BagProgressFn, ImportError};

#[derive(Debug, clap::Args)]
pub(super) struct ExportArgs {
    /// The dossier's code.
    dossier: String,
    /// The bag to write: a directory that does not exist yet, or an empty one.
    #[arg(short, long)]
    output: PathBuf,
}

#[derive(Debug, clap::Args)]
pub(super) struct ImportArgs {
    /// The bag, as `sohoa export` wrote it.
    bag: PathBuf,
}

/// A progress bar on standard error (drawn only when it is a terminal) and the callback that moves it.
fn bag_progress() -> (indicatif::ProgressBar, BagProgressFn) {
    let bar = indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {msg:9} {bar:40} {pos}/{len}  {elapsed}",
        )
        .expect("the template is valid"),
    );
    let moved = bar.clone();
    let progress = Arc::new(move |p: BagProgress| {
        moved.set_message(p.step);
        moved.set_length(p.total);
        moved.set_position(p.done);
    });
    (bar, progress)
}

pub(super) async fn run_export(archive: &Archive, args: ExportArgs) -> anyhow::Result<ExitCode> {
    let code = DossierCode::parse(&args.dossier)?;
    let (bar, progress) = bag_progress();
    let agent = format!("sohoa {}", env!("CARGO_PKG_VERSION"));
    let report = archive
        .export_dossier(&code, &args.output, &agent, progress)
        .await;
    bar.finish_and_clear();
    let report = report?;
    println!(
        "dossier {} exported to {}: {} documents, {} pages, {} files, {} bytes (BagIt 1.0)",
        report.dossier,
        report.path.display(),
        report.documents,
        report.pages,
        report.files,
        report.bytes
    );
    Ok(ExitCode::SUCCESS)
}

/// Exit status 0 when the bag is imported (or was already), 1 when it is refused.
pub(super) async fn run_import(archive: &Archive, args: ImportArgs) -> anyhow::Result<ExitCode> {
    let (bar, progress) = bag_progress();
    let report = archive.import_bag(&args.bag, progress).await;
    bar.finish_and_clear();
    let report = match report {
        Ok(report) => report,
        Err(ImportError::Refused(reasons)) => {
            eprintln!("error: the bag {} is refused:", args.bag.display());
            for reason in reasons {
                eprintln!("  {reason}");
            }
            eprintln!("nothing was recorded");
            return Ok(ExitCode::FAILURE);
        }
        Err(ImportError::Conflict(message)) => {
            eprintln!("error: {message}; nothing was recorded");
            return Ok(ExitCode::FAILURE);
        }
        Err(other) => return Err(other.into()),
    };
    if report.changed() {
        let o = report.outcome;
        println!(
            "dossier {} imported{}: {} documents, {} pages, {} objects added ({} new to the store){}",
            report.dossier,
            if o.dossier_created {
                ""
            } else {
                " into the dossier already here"
            },
            o.documents_added,
            o.pages_added,
            o.objects_added,
            report.objects_stored,
            if o.documents_superseded > 0 {
                format!("; {} documents marked replaced", o.documents_superseded)
            } else {
                String::new()
            }
        );
        if report.copies_left > 0 {
            println!(
                "{} certified copies left in the bag: signed with a certificate this archive does not \
                 sign with, so it does not record them as its own (their signatures still verify)",
                report.copies_left
            );
        }
        if o.copies_added + o.copy_issues_added > 0 {
            println!(
                "{} certified copies and {} issues of them recorded",
                o.copies_added, o.copy_issues_added
            );
        }
        if o.registry_added + o.reuses_added + o.status_changes_added > 0 {
            println!(
                "{} unit and procedure names registered (names already here are kept), {} reuses of \
                 other dossiers' results and {} changes of status recorded",
                o.registry_added, o.reuses_added, o.status_changes_added
            );
        }
    } else {
        println!(
            "dossier {} is already in the archive as the bag describes it ({} documents, {} pages, {} \
             objects): nothing changed",
            report.dossier, report.documents, report.pages, report.objects
        );
    }
    Ok(ExitCode::SUCCESS)
}
