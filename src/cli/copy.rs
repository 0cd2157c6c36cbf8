//! `sohoa copy` (issue a certified copy) and `sohoa verify` (check one).

use std::path::PathBuf;
use std::process::ExitCode;

use archive_api::Archive;
use archive_api::codes::ContentHash;

use super::get::write_output;

#[derive(Debug, clap::Args)]
pub(super) struct CopyArgs {
    /// BLAKE3 hash of the archived document (as `ingest` printed it), or of a certified copy.
    hash: String,
    /// Write to this file [default: standard output].
    #[arg(short, long)]
    output: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub(super) struct VerifyArgs {
    /// The PDF to check.
    file: PathBuf,
    /// Print the verdict as JSON.
    #[arg(long)]
    json: bool,
}

pub(super) async fn run_copy(archive: &Archive, args: CopyArgs) -> anyhow::Result<ExitCode> {
    let hash = ContentHash::parse(&args.hash)?;
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let copy = archive
        .certified_copy(&hash, &format!("command line, user {user}"))
        .await?;
    let record = &copy.record;
    if let Some(path) = write_output(args.output.as_deref(), &copy.bytes, "application/pdf")? {
        eprintln!(
            "certified copy {} of document {}: SAO Y, unit {}, signed {} by {}{}\nwritten to {}",
            record.blake3,
            record.document,
            record.unit,
            record.signed_at,
            record.subject,
            if record.development {
                " (development certificate: no legal value)"
            } else {
                ""
            },
            path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Exit status 0 when the file is an intact copy issued by this archive, 1 otherwise.
pub(super) async fn run_verify(archive: &Archive, args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let metadata = std::fs::metadata(&args.file)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.file.display()))?;
    const MAX: u64 = 1024 * 1024 * 1024;
    if metadata.len() > MAX {
        anyhow::bail!(
            "{}: {} bytes is larger than any copy this archive issues (1 GiB)",
            args.file.display(),
            metadata.len()
        );
    }
    let bytes =
        std::fs::read(&args.file).map_err(|e| anyhow::anyhow!("{}: {e}", args.file.display()))?;
    let verdict = archive.verify_copy(bytes.into()).await?;
    if args.json {
        let mut json = serde_json::to_value(&verdict)?;
        json["valid"] = verdict.valid().into();
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else if verdict.valid() {
        let copy = verdict.copy.as_ref();
        println!(
            "VALID: an intact certified copy issued by this archive\n  copy      {}\n  document  {}\n  unit      {}\n  signed at {}\n  signer    {}{}",
            verdict.blake3,
            copy.map_or("?", |c| c.document.as_str()),
            copy.map_or("?", |c| c.unit.as_str()),
            copy.map_or("?", |c| c.signed_at.as_str()),
            verdict.signature.signer.as_deref().unwrap_or("?"),
            if copy.is_some_and(|c| c.development) {
                "\n  note      signed with the development certificate: no legal value"
            } else {
                ""
            }
        );
    } else {
        println!(
            "NOT VALID: {}",
            verdict
                .signature
                .problem
                .as_deref()
                .unwrap_or("this archive did not issue this file")
        );
    }
    Ok(if verdict.valid() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
