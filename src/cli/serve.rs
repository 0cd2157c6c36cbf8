//! `sohoa serve`: the HTTP service on the data directory.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use archive_api::Archive;

use crate::settings::Settings;

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// Address to listen on (port 0 picks a free port) [default: 127.0.0.1:8080].
    #[arg(long, env = "SOHOA_LISTEN")]
    listen: Option<SocketAddr>,
    /// Job workers in this process (packaging uploaded pages) [default: 1 with the embedded SQLite
    /// database, 0 with PostgreSQL, where `sohoa worker` processes do the work].
    #[arg(long, env = "SOHOA_WORKERS")]
    workers: Option<usize>,
}

pub(super) async fn run(
    archive: Archive,
    settings: &Settings,
    args: Args,
) -> anyhow::Result<ExitCode> {
    let listen = args.listen.unwrap_or(settings.server.listen);
    let data = &settings.data;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    let address = listener.local_addr()?;
    let totals = archive.repo().totals().await?;
    let first_admin = archive_api::access::bootstrap_admin(archive.repo(), data).await?;
    // Scripts and tests read the actual address from this line.
    println!("sohoa listening on http://{address}");
    if let Some(path) = first_admin {
        eprintln!(
            "first start: an administrator account 'admin' was created; its API token is in {} \
             (create people's accounts with it, or with `sohoa account add`; to sign in to the web UI \
             as admin, give it a password with `sohoa account password admin`)",
            path.display()
        );
    }
    tracing::info!(
        data = %data.display(),
        dossiers = totals.dossiers,
        pages = totals.pages,
        "archive open"
    );
    // Ctrl-C at a terminal, SIGTERM from a service manager: finish requests in flight, then stop.
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let shutdown = async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
        tracing::info!("shutting down");
    };
    let workers = args.workers.unwrap_or(match archive.repo().backend() {
        archive_api::repo::Backend::Sqlite => 1,
        archive_api::repo::Backend::Postgres => 0,
    });
    if workers == 0 {
        tracing::info!(
            "no job workers in this process: run `sohoa worker` to package uploaded pages"
        );
    }
    archive_api::serve(Arc::new(archive), listener, workers, shutdown).await?;
    Ok(ExitCode::SUCCESS)
}
