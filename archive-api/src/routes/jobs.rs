//! Processing jobs: `GET /v1/jobs/{id}` (poll) and `GET /v1/jobs/{id}/events` (Server-Sent Events: one
//! `progress` event per page, then `done` or `failed`).

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use tokio::sync::broadcast;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ErrorBody;
use super::extract::PathParams;
use super::{ApiError, AppState, Caller};
use crate::access::Permission;
use crate::repo::JobRecord;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_job))
        .routes(routes!(job_events))
}

async fn job_in_scope(
    archive: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<JobRecord, ApiError> {
    caller
        .require(archive, Permission::ReadMetadata, "job.read", id)
        .await?;
    let not_found = || ApiError::not_found("job-not-found", format!("no job {id}"));
    if id.len() > 64 {
        return Err(not_found());
    }
    let job = archive.repo().job(id).await?.ok_or_else(not_found)?;
    let unit = archive
        .repo()
        .dossier(&job.dossier)
        .await?
        .map(|d| d.unit)
        .unwrap_or_default();
    caller
        .require_in_unit(
            archive,
            Permission::ReadMetadata,
            "job.read",
            id,
            Some(&job.dossier),
            &unit,
        )
        .await?;
    Ok(job)
}

/// A job's state and progress.
#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "job id")),
    responses((status = 200, body = JobRecord), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_job(
    State(archive): State<AppState>,
    caller: Caller,
    PathParams(id): PathParams<String>,
) -> Result<Json<JobRecord>, ApiError> {
    Ok(Json(job_in_scope(&archive, &caller, &id).await?))
}

fn event_of(job: &JobRecord) -> Event {
    let name = match job.state.as_str() {
        "done" => "done",
        "failed" => "failed",
        _ => "progress",
    };
    Event::default()
        .event(name)
        .json_data(job)
        .unwrap_or_else(|_| Event::default().event(name))
}

fn finished(job: &JobRecord) -> bool {
    matches!(job.state.as_str(), "done" | "failed")
}

/// The job's progress as it happens (Server-Sent Events): the current state at once, a `progress` event
/// after every page, and a last `done` (with the packaged document) or `failed` (with the reason).
#[utoipa::path(get, path = "/v1/jobs/{id}/events", tag = "jobs",
    params(("id" = String, Path, description = "job id")),
    responses((status = 200, description = "an event stream", content_type = "text/event-stream", body = String),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
async fn job_events(
    State(archive): State<AppState>,
    caller: Caller,
    PathParams(id): PathParams<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let job = job_in_scope(&archive, &caller, &id).await?;
    enum Step {
        First(JobRecord, Option<broadcast::Receiver<JobRecord>>),
        Follow(broadcast::Receiver<JobRecord>, i64),
        Poll(AppState, JobRecord),
        End,
    }
    let first = match archive.jobs().subscribe(&id) {
        Some((now, updates)) => Step::First(now, Some(updates)),
        None if archive.repo().backend() == crate::repo::Backend::Postgres && !finished(&job) => {
            // Run by a worker elsewhere: follow its announcements, from the row as it is once listening.
            let updates = archive.jobs().follow_elsewhere(&job);
            let now = archive.repo().job(&id).await?.unwrap_or(job);
            Step::First(now, updates)
        }
        None => Step::First(job, None),
    };
    // How long a followed job may stay silent before its row is read.
    const QUIET: Duration = Duration::from_secs(2);
    let stream = futures::stream::unfold(first, move |step| {
        let (archive, id) = (archive.clone(), id.clone());
        async move {
            let next_of =
                |job: &JobRecord, follow: Step| if finished(job) { Step::End } else { follow };
            match step {
                Step::First(job, updates) => {
                    let next = match updates {
                        Some(updates) => Step::Follow(updates, job.done),
                        // Queued or running in another process: follow its row.
                        None => Step::Poll(archive.clone(), job.clone()),
                    };
                    Some((Ok(event_of(&job)), next_of(&job, next)))
                }
                Step::Follow(mut updates, shown) => loop {
                    let Ok(received) = tokio::time::timeout(QUIET, updates.recv()).await else {
                        // Quiet: the job may have been taken by a worker in another process.
                        let latest = archive.repo().job(&id).await.ok().flatten()?;
                        let elsewhere = !archive.jobs().is_relayed(&id)
                            && latest
                                .worker
                                .as_deref()
                                .is_some_and(|w| !archive.jobs().is_local(w));
                        if finished(&latest) || elsewhere {
                            archive.jobs().retire(&id);
                            let next =
                                next_of(&latest, Step::Poll(archive.clone(), latest.clone()));
                            return Some((Ok(event_of(&latest)), next));
                        }
                        continue;
                    };
                    match received {
                        // Already in the snapshot that opened the stream.
                        Ok(job) if !finished(&job) && job.done < shown => continue,
                        Ok(job) => {
                            let next = Step::Follow(updates, job.done);
                            return Some((Ok(event_of(&job)), next_of(&job, next)));
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => {
                            // Ended here, or no longer followed here (run elsewhere): the row says.
                            let latest = archive.repo().job(&id).await.ok().flatten()?;
                            let next =
                                next_of(&latest, Step::Poll(archive.clone(), latest.clone()));
                            return Some((Ok(event_of(&latest)), next));
                        }
                    }
                },
                Step::Poll(archive, last) => loop {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    let job = archive.repo().job(&last.id).await.ok().flatten()?;
                    if job != last {
                        let next = next_of(&job, Step::Poll(archive.clone(), job.clone()));
                        return Some((Ok(event_of(&job)), next));
                    }
                },
                Step::End => None,
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
