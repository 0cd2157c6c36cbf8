//! Which database backs the archive: SQLite (one file in the data directory, the embedded default) or
//! PostgreSQL (`postgres://...`, for several servers and workers sharing the work). Every query goes through
//! sqlx's `Any` driver with `$1` placeholders, which both understand; the few phrases the two spell
//! differently are here, one method each, so the queries elsewhere stay shared.

use std::path::Path;
use std::sync::Once;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Executor};

use super::{Repo, RepoError};

/// Keeps the pool type in one place for the other files of this module.
pub(super) type Pool = AnyPool;

/// The database engine behind a [`Repo`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite, write-ahead logged so the server and the command line can share the file.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl Backend {
    /// `column IN` the units of a JSON array bound as parameter `param` (e.g. `$1`).
    pub(super) fn in_json_list(self, column: &str, param: &str) -> String {
        match self {
            Self::Sqlite => format!("{column} IN (SELECT value FROM json_each({param}))"),
            Self::Postgres => {
                format!("{column} IN (SELECT json_array_elements_text(CAST({param} AS json)))")
            }
        }
    }

    /// Whether `haystack` contains `needle`, ignoring case.
    pub(super) fn contains(self, haystack: &str, needle: &str) -> String {
        match self {
            Self::Sqlite => format!("instr(lower({haystack}), lower({needle})) > 0"),
            Self::Postgres => format!("strpos(lower({haystack}), lower({needle})) > 0"),
        }
    }

    /// Appended to a `SELECT` of a row that the rest of the transaction changes on its behalf (the
    /// dossier whose waiting pages are numbered), so concurrent transactions take turns.
    pub(super) fn for_update(self) -> &'static str {
        match self {
            Self::Sqlite => "",
            Self::Postgres => " FOR UPDATE",
        }
    }

    /// The database's clock as UNIX milliseconds, for leases and back-offs: every worker compares against
    /// the one clock, so a machine whose own clock runs ahead cannot take a job over early.
    pub(super) fn now_ms(self) -> &'static str {
        match self {
            Self::Sqlite => "CAST(unixepoch('subsec') * 1000 AS INTEGER)",
            Self::Postgres => "CAST(floor(EXTRACT(EPOCH FROM clock_timestamp()) * 1000) AS BIGINT)",
        }
    }

    /// Appended to a `SELECT` that claims rows for work, so concurrent claimers pass over each other's rows
    /// instead of waiting (SQLite writes one at a time and needs nothing).
    pub(super) fn skip_locked(self) -> &'static str {
        match self {
            Self::Sqlite => "",
            Self::Postgres => " FOR UPDATE SKIP LOCKED",
        }
    }
}

impl Repo {
    /// Opens (creating if missing) the SQLite database at `path` and brings its schema up to date.
    pub async fn open_sqlite(path: &Path) -> Result<Self, RepoError> {
        let url = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .to_url_lossy();
        Self::open(url.as_str()).await
    }

    /// Opens the database at `url` (`sqlite://PATH?mode=rwc` or `postgres://USER:PASSWORD@HOST/DB`) and
    /// brings its schema up to date. Several processes may open the same PostgreSQL database at once.
    pub async fn open(url: &str) -> Result<Self, RepoError> {
        static DRIVERS: Once = Once::new();
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let backend = if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(RepoError::Database(sqlx::Error::Configuration(
                format!(
                    "unsupported database URL '{}': use sqlite://PATH or postgres://...",
                    redact(url)
                )
                .into(),
            )));
        };
        let options: AnyConnectOptions = url.parse()?;
        let options = options.disable_statement_logging();
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 8,
                Backend::Postgres => 16,
            })
            .acquire_timeout(Duration::from_secs(60))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        for pragma in [
                            "PRAGMA journal_mode = WAL",
                            "PRAGMA synchronous = NORMAL",
                            "PRAGMA foreign_keys = ON",
                            "PRAGMA busy_timeout = 30000",
                        ] {
                            conn.execute(pragma).await?;
                        }
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        match backend {
            Backend::Sqlite => sqlx::migrate!("../migrations/sqlite").run(&pool).await?,
            Backend::Postgres => sqlx::migrate!("../migrations/postgres").run(&pool).await?,
        }
        let postgres_url = (backend == Backend::Postgres).then(|| url.into());
        Ok(Self {
            pool,
            backend,
            postgres_url,
        })
    }

    /// The database engine.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Tells every process listening on PostgreSQL's `channel` (see [`Repo::listen`]); nothing on SQLite,
    /// where one server does all the work.
    pub(super) async fn notify(&self, channel: &str, payload: &str) -> Result<(), RepoError> {
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(channel)
                .bind(payload)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// Listens to what other processes announce on `channel`; `None` on SQLite.
    pub async fn listen(
        &self,
        channel: &str,
    ) -> Option<Result<sqlx::postgres::PgListener, RepoError>> {
        let url = self.postgres_url.as_ref()?;
        Some(
            async {
                let mut listener = sqlx::postgres::PgListener::connect(url).await?;
                listener.listen(channel).await?;
                Ok(listener)
            }
            .await,
        )
    }

    /// Begins a transaction that writes. On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`),
    /// waiting its turn under the busy timeout: a transaction that read first and wrote later could find
    /// another process had written in between and fail with "database is locked" (`SQLITE_BUSY_SNAPSHOT`),
    /// which no timeout retries. PostgreSQL's row locks need nothing more.
    pub(super) async fn begin_write(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Any>, RepoError> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// Begins a transaction that adds pages or dossier changes, once any other such transaction has ended.
    /// The search index follows those tables by increasing id; on PostgreSQL ids are handed out before
    /// commit, so without the turn a transaction could commit a lower id after a follower had read past
    /// it, and that page would never reach the index. (SQLite writes one transaction at a time already.)
    pub(super) async fn begin_followed_write(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Any>, RepoError> {
        let mut tx = self.begin_write().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock(7404826)")
                .execute(&mut *tx)
                .await?;
        }
        Ok(tx)
    }
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Repositories to run a test against: SQLite in `dir`, and a fresh PostgreSQL database when
/// `SOHOA_TEST_POSTGRES` names a role that may create databases (`.ci/run` sets it).
#[cfg(test)]
pub(crate) async fn test_repos(dir: &Path) -> Vec<Repo> {
    let mut repos = vec![Repo::open_sqlite(&dir.join("sohoa.db")).await.unwrap()];
    if let Ok(admin) = std::env::var("SOHOA_TEST_POSTGRES") {
        let admin_repo = Repo::open(&admin).await.unwrap();
        let name = format!(
            "sohoa_unit_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        );
        sqlx::query(&format!(
            "CREATE DATABASE {name} ENCODING 'UTF8' TEMPLATE template0"
        ))
        .execute(&admin_repo.pool)
        .await
        .unwrap();
        let (base, _) = admin.rsplit_once('/').unwrap();
        repos.push(Repo::open(&format!("{base}/{name}")).await.unwrap());
    }
    repos
}

#[cfg(test)]
mod tests {
    use super::redact;
    use crate::repo::Repo;

    /// Two processes share one SQLite file: a transaction that reads, then writes after another process
    /// has written, must wait its turn rather than fail with "database is locked" (seen under CI's load
    /// when a worker recorded a document while the server took an upload).
    #[tokio::test]
    async fn a_write_transaction_on_sqlite_waits_for_another_process_instead_of_failing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sohoa.db");
        let first = Repo::open_sqlite(&path).await.unwrap();
        let second = Repo::open_sqlite(&path).await.unwrap();

        let mut tx = first.begin_write().await.unwrap();
        let before: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM units")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        let other = tokio::spawn(async move {
            sqlx::query("INSERT INTO units (code, name, level) VALUES ('B', 'Second', 'commune')")
                .execute(&second.pool)
                .await
        });
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(
            !other.is_finished(),
            "the other process must wait for the open write transaction"
        );
        sqlx::query("INSERT INTO units (code, name, level) VALUES ('A', 'First', 'commune')")
            .execute(&mut *tx)
            .await
            .expect("a write transaction's write must not fail because another process wrote");
        tx.commit().await.unwrap();
        other.await.unwrap().unwrap();
        let after: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM units")
            .fetch_one(&first.pool)
            .await
            .unwrap();
        assert_eq!(after, before + 2);
    }

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact("postgres://sohoa:s3cret@db.internal:5432/archive"),
            "postgres://sohoa:***@db.internal:5432/archive"
        );
        assert_eq!(redact("postgres://db/archive"), "postgres://db/archive");
        assert_eq!(
            redact("sqlite:///var/lib/sohoa/sohoa.db"),
            "sqlite:///var/lib/sohoa/sohoa.db"
        );
    }
}
