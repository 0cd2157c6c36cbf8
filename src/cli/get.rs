//! `sohoa get`: a stored document or page by its hash, checked against the hash before it is written.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use archive_api::Archive;
use archive_api::codes::ContentHash;

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// BLAKE3 hash of the document (as `ingest` printed it) or of a page.
    hash: String,
    /// Write to this file [default: standard output].
    #[arg(short, long)]
    output: Option<PathBuf>,
}

pub(super) async fn run(archive: &Archive, args: Args) -> anyhow::Result<ExitCode> {
    let hash = ContentHash::parse(&args.hash)?;
    let (bytes, media_type) = archive.object(&hash).await?;
    let written = write_output(args.output.as_deref(), &bytes, &media_type)?;
    if let Some(path) = written {
        eprintln!(
            "{} ({media_type}, {} bytes, hash verified) written to {}",
            hash,
            bytes.len(),
            path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `bytes` to `path` (beside it first, then renamed, so a failure never leaves half a file under its
/// name) or, without a path, to standard output unless that is a terminal. Returns the path written.
pub(super) fn write_output<'a>(
    path: Option<&'a std::path::Path>,
    bytes: &[u8],
    media_type: &str,
) -> anyhow::Result<Option<&'a std::path::Path>> {
    match path {
        Some(path) => {
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            let mut file = tempfile::NamedTempFile::new_in(dir)?;
            file.write_all(bytes)?;
            file.persist(path)?;
            Ok(Some(path))
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            if stdout.is_terminal() {
                anyhow::bail!(
                    "refusing to write {media_type} to the terminal; use -o FILE or redirect the output"
                );
            }
            stdout.write_all(bytes)?;
            stdout.flush()?;
            Ok(None)
        }
    }
}
