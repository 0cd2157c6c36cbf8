//! `sohoa worker`: processes queued jobs (packaging pages uploaded over the API). Any number of workers,
//! on any machines sharing the PostgreSQL database and the object store, share the queue; see
//! `archive_api::jobs`.

use std::process::ExitCode;
use std::sync::Arc;

use archive_api::Archive;

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// Jobs worked on at once in this process (each job already uses every core for its pages).
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Stop when the queue is empty instead of waiting for more work.
    #[arg(long)]
    until_idle: bool,
}

pub(super) async fn run(archive: Archive, args: Args) -> anyhow::Result<ExitCode> {
    if args.jobs == 0 {
        anyhow::bail!("--jobs must be at least 1");
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    // Ctrl-C or SIGTERM: claim nothing new and finish the job in hand; a second signal stops at once (the
    // job's lease runs out and another worker takes it over).
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
        eprintln!("stopping after the job in hand (signal again to stop now)");
        let _ = stop.send(true);
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
        std::process::exit(130);
    });
    eprintln!(
        "sohoa worker: {} job(s) at a time, database {}",
        args.jobs,
        match archive.repo().backend() {
            archive_api::repo::Backend::Sqlite => "SQLite",
            archive_api::repo::Backend::Postgres => "PostgreSQL",
        }
    );
    archive_api::jobs::run_workers(Arc::new(archive), args.jobs, args.until_idle, stopped).await;
    Ok(ExitCode::SUCCESS)
}
