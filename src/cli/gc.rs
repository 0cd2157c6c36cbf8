//! `sohoa gc`: removes stored objects that no database row records (left by a crash between storing an
//! object and recording it, or by a refused ingest), once older than a grace period.

use std::process::ExitCode;
use std::time::Duration;

use archive_api::Archive;

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// Keep unrecorded objects younger than this many hours: they may belong to work still in progress
    /// (in service, more than 1 and more than the longest packaging job).
    #[arg(long, default_value_t = 24.0)]
    grace_hours: f64,
    /// Only list what would be removed.
    #[arg(long)]
    dry_run: bool,
    /// Print the report as JSON: {"stored", "recorded", "young", "removed": [...], "removed_bytes", "dry_run"}.
    #[arg(long)]
    json: bool,
}

pub(super) async fn run(archive: &Archive, args: Args) -> anyhow::Result<ExitCode> {
    let grace = Duration::try_from_secs_f64(args.grace_hours * 3600.0)
        .map_err(|_| anyhow::anyhow!("--grace-hours must be a number of hours, 0 or more"))?;
    let report = archive.collect_garbage(grace, args.dry_run).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    let verb = if report.dry_run {
        "would remove"
    } else {
        "removed"
    };
    println!(
        "{} objects stored, {} recorded, {} unrecorded but younger than {} h (kept); {verb} {} ({} bytes)",
        report.stored,
        report.recorded,
        report.young,
        args.grace_hours,
        report.removed.len(),
        report.removed_bytes
    );
    for hash in &report.removed {
        println!("  {hash}");
    }
    Ok(ExitCode::SUCCESS)
}
