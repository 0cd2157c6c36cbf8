//! `sohoa audit`: fixity — every stored object read back and hashed against its recorded BLAKE3.

use std::process::ExitCode;

use archive_api::Archive;

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// Print the report as JSON: {"checked", "ok", "problems": [{"blake3", "outcome", "detail"}]}.
    #[arg(long)]
    json: bool,
    /// Check at most this many objects, the longest-unchecked first (default: every object).
    #[arg(long)]
    limit: Option<usize>,
}

/// Exit status 0 when every object checked is intact, 1 when any is missing, corrupt or unreadable.
pub(super) async fn run(archive: &Archive, args: Args) -> anyhow::Result<ExitCode> {
    let bar = indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {bar:40} {pos}/{len} objects  {elapsed}",
        )
        .expect("the template is valid"),
    );
    if args.json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let report = archive
        .check_fixity(None, args.limit, |checked, total| {
            bar.set_length(total as u64);
            bar.set_position(checked as u64);
        })
        .await?;
    bar.finish_and_clear();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{} objects checked: {} intact, {} with problems",
            report.checked,
            report.ok,
            report.problems.len()
        );
        for problem in &report.problems {
            println!(
                "  {} {}: {}",
                problem.outcome, problem.blake3, problem.detail
            );
        }
    }
    Ok(if report.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
