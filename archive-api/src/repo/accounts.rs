//! Accounts, their bearer tokens, and the append-only audit log.

use serde::Serialize;
use sqlx::Row;

use super::{Repo, RepoError};
use crate::access::{Role, UnitScope};
use crate::time::now_rfc3339;

/// An account as recorded.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Account {
    /// The account's name (a person's login or a system's name).
    pub name: String,
    /// Its role.
    pub role: Role,
    /// `["*"]` for every unit, or the unit codes it may see.
    pub units: Vec<String>,
    /// When it was created, RFC 3339.
    pub created_at: String,
    /// Whether it is disabled (its tokens no longer work).
    pub disabled: bool,
    /// Whether it has a password to sign in with (people); without one it uses tokens only.
    pub has_password: bool,
    /// Whether that password was set by an administrator and must be changed at the next sign-in.
    pub must_change_password: bool,
}

/// A token as recorded (never the token itself).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TokenRecord {
    /// The token's id, to revoke it by.
    pub id: i64,
    /// The account it belongs to.
    pub account: String,
    /// What it is for.
    pub label: String,
    /// When it was made.
    pub created_at: String,
    /// When it stops working, if ever.
    pub expires_at: Option<String>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<String>,
}

/// One line of the audit log.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Position in the log.
    pub id: i64,
    /// When, RFC 3339 +07:00.
    pub at: String,
    /// Who: the account's name.
    pub actor: String,
    /// The account's role at the time.
    pub role: String,
    /// What: `dossier.read`, `object.download`, `copy.issue`, `search`, `dossier.create`...
    pub action: String,
    /// What it was done to: a dossier code, a hash, an account, a query.
    pub target: String,
    /// The dossier concerned, when there is one.
    pub dossier: Option<String>,
    /// Where the request came from.
    pub client: String,
    /// `ok`, or `denied` when the account lacked the right.
    pub outcome: String,
}

/// An entry to append.
#[derive(Debug, Clone)]
pub struct NewAuditEntry<'a> {
    /// Who.
    pub actor: &'a str,
    /// Their role.
    pub role: Role,
    /// What.
    pub action: &'a str,
    /// To what.
    pub target: &'a str,
    /// The dossier concerned.
    pub dossier: Option<&'a str>,
    /// From where.
    pub client: &'a str,
    /// Whether it was refused.
    pub denied: bool,
}

/// Which audit entries to read, newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only this account's.
    pub actor: Option<String>,
    /// Only about this dossier.
    pub dossier: Option<String>,
    /// Only this action.
    pub action: Option<String>,
    /// Only at or after this time (RFC 3339).
    pub since: Option<String>,
    /// Only before this time (RFC 3339).
    pub until: Option<String>,
    /// Only entries older than this id (the next page).
    pub before: Option<i64>,
    /// At most this many.
    pub limit: i64,
}

/// The account a valid token belongs to.
#[derive(Debug, Clone)]
pub struct TokenOwner {
    /// The account's name.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// Its units.
    pub scope: UnitScope,
    /// A session signed in with a temporary password: it may only change the password.
    pub must_change_password: bool,
}

fn account(row: &sqlx::any::AnyRow) -> Account {
    Account {
        name: row.get(0),
        role: row.get::<String, _>(1).parse().unwrap_or(Role::System),
        units: match UnitScope::parse(&row.get::<String, _>(2)) {
            UnitScope::All => vec!["*".to_owned()],
            UnitScope::Only(units) => units,
        },
        created_at: row.get(3),
        disabled: row.get::<Option<String>, _>(4).is_some(),
        has_password: row.get::<Option<String>, _>(5).is_some(),
        must_change_password: row.get::<i64, _>(6) == 1,
    }
}

const ACCOUNT_COLUMNS: &str = "SELECT name, role, units, created_at, disabled_at, password_hash, password_temporary FROM users";

impl Repo {
    /// How many accounts exist.
    pub async fn account_count(&self) -> Result<i64, RepoError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await?)
    }

    /// Creates an account; [`RepoError::Conflict`] if the name is taken.
    pub async fn create_account(
        &self,
        name: &str,
        role: Role,
        scope: &UnitScope,
    ) -> Result<Account, RepoError> {
        let inserted = sqlx::query(
            "INSERT INTO users (name, role, units, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(role.as_str())
        .bind(scope.to_stored())
        .bind(now_rfc3339())
        .execute(&self.pool)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(RepoError::Conflict(format!(
                "an account named '{name}' already exists"
            )));
        }
        self.account(name)
            .await?
            .ok_or_else(|| RepoError::Conflict(format!("account '{name}' vanished")))
    }

    /// An account by name.
    pub async fn account(&self, name: &str) -> Result<Option<Account>, RepoError> {
        let sql = format!("{ACCOUNT_COLUMNS} WHERE name = $1");
        let row = sqlx::query(&sql)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(account))
    }

    /// Every account, by name.
    pub async fn accounts(&self) -> Result<Vec<Account>, RepoError> {
        let sql = format!("{ACCOUNT_COLUMNS} ORDER BY name");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(account).collect())
    }

    /// Changes an account's role, units, or whether it is disabled; `None` leaves a field as it is.
    /// Returns the account, or `None` if there is none by that name.
    pub async fn update_account(
        &self,
        name: &str,
        role: Option<Role>,
        scope: Option<&UnitScope>,
        disabled: Option<bool>,
    ) -> Result<Option<Account>, RepoError> {
        let now = now_rfc3339();
        sqlx::query(
            "UPDATE users SET role = COALESCE($1, role), units = COALESCE($2, units),
                    disabled_at = CASE WHEN $3 IS NULL THEN disabled_at
                                       WHEN $4 THEN COALESCE(disabled_at, $5) ELSE NULL END
             WHERE name = $6",
        )
        .bind(role.map(Role::as_str))
        .bind(scope.map(UnitScope::to_stored))
        .bind(disabled)
        .bind(disabled)
        .bind(&now)
        .bind(name)
        .execute(&self.pool)
        .await?;
        self.account(name).await
    }

    /// Sets (or with `None` removes) the password of `name`, as a PHC string, and ends the sessions
    /// signed in with the old one; `false` if there is no such account. A `temporary` password (set by
    /// an administrator for someone else) must be changed by its owner before their sessions may do
    /// anything else.
    pub async fn set_password(
        &self,
        name: &str,
        password_hash: Option<&str>,
        temporary: bool,
    ) -> Result<bool, RepoError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE users SET password_hash = $1, password_temporary = $2 WHERE name = $3",
        )
        .bind(password_hash)
        .bind(i64::from(temporary && password_hash.is_some()))
        .bind(name)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE tokens SET revoked_at = COALESCE(revoked_at, $1)
             WHERE label = $2 AND user_id = (SELECT id FROM users WHERE name = $3)",
        )
        .bind(now_rfc3339())
        .bind(crate::access::SESSION_LABEL)
        .bind(name)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes the tokens of signed-in sessions that expired or were revoked before `before` (RFC 3339);
    /// returns how many. Tokens issued by administrators are kept, as a record.
    pub async fn delete_old_sessions(&self, before: &str) -> Result<u64, RepoError> {
        let done = sqlx::query(
            "DELETE FROM tokens WHERE label = $1 AND (expires_at < $2 OR revoked_at < $3)",
        )
        .bind(crate::access::SESSION_LABEL)
        .bind(before)
        .bind(before)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// The account `name` and its password's PHC string, if it is enabled and has a password.
    pub async fn sign_in_account(
        &self,
        name: &str,
    ) -> Result<Option<(Account, String)>, RepoError> {
        let sql = format!(
            "{ACCOUNT_COLUMNS} WHERE name = $1 AND disabled_at IS NULL AND password_hash IS NOT NULL"
        );
        let row = sqlx::query(&sql)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|row| (account(&row), row.get(5))))
    }

    /// Revokes the token hashing to `hash` (signing out); `false` if there is none.
    pub async fn revoke_token_by_hash(&self, hash: &str) -> Result<bool, RepoError> {
        let done =
            sqlx::query("UPDATE tokens SET revoked_at = COALESCE(revoked_at, $1) WHERE hash = $2")
                .bind(now_rfc3339())
                .bind(hash)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Records a token (its hash) for `account`, valid until `expires_at` if given.
    pub async fn create_token(
        &self,
        account: &str,
        hash: &str,
        label: &str,
        expires_at: Option<&str>,
    ) -> Result<TokenRecord, RepoError> {
        let now = now_rfc3339();
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO tokens (user_id, hash, label, created_at, expires_at)
             SELECT id, $1, $2, $3, $4 FROM users WHERE name = $5 RETURNING id",
        )
        .bind(hash)
        .bind(label)
        .bind(&now)
        .bind(expires_at)
        .bind(account)
        .fetch_optional(&self.pool)
        .await?;
        let Some(id) = id else {
            return Err(RepoError::NotFound(format!("no account named '{account}'")));
        };
        Ok(TokenRecord {
            id,
            account: account.to_owned(),
            label: label.to_owned(),
            created_at: now,
            expires_at: expires_at.map(str::to_owned),
            revoked_at: None,
        })
    }

    /// The tokens of `account`, newest first.
    pub async fn tokens(&self, account: &str) -> Result<Vec<TokenRecord>, RepoError> {
        let rows = sqlx::query(
            "SELECT t.id, u.name, t.label, t.created_at, t.expires_at, t.revoked_at
             FROM tokens t JOIN users u ON u.id = t.user_id WHERE u.name = $1 ORDER BY t.id DESC",
        )
        .bind(account)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| TokenRecord {
                id: r.get(0),
                account: r.get(1),
                label: r.get(2),
                created_at: r.get(3),
                expires_at: r.get(4),
                revoked_at: r.get(5),
            })
            .collect())
    }

    /// Revokes a token; `false` if there is no such token.
    pub async fn revoke_token(&self, id: i64) -> Result<bool, RepoError> {
        let done =
            sqlx::query("UPDATE tokens SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2")
                .bind(now_rfc3339())
                .bind(id)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The account that the token hashing to `hash` belongs to, if the token is valid now: not revoked,
    /// not expired, its account not disabled.
    pub async fn token_owner(&self, hash: &str) -> Result<Option<TokenOwner>, RepoError> {
        let row = sqlx::query(
            "SELECT u.name, u.role, u.units, t.expires_at,
                    CAST(CASE WHEN u.password_temporary = 1 AND t.label = $2 THEN 1 ELSE 0 END AS BIGINT)
             FROM tokens t JOIN users u ON u.id = t.user_id
             WHERE t.hash = $1 AND t.revoked_at IS NULL AND u.disabled_at IS NULL",
        )
        .bind(hash)
        .bind(crate::access::SESSION_LABEL)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let expires_at: Option<String> = row.get(3);
        if let Some(expires_at) = expires_at
            && crate::time::is_past(&expires_at)
        {
            return Ok(None);
        }
        let Ok(role) = row.get::<String, _>(1).parse() else {
            return Ok(None);
        };
        Ok(Some(TokenOwner {
            name: row.get(0),
            role,
            scope: UnitScope::parse(&row.get::<String, _>(2)),
            must_change_password: row.get::<i64, _>(4) == 1,
        }))
    }

    /// Appends to the audit log.
    pub async fn audit(&self, entry: &NewAuditEntry<'_>) -> Result<(), RepoError> {
        sqlx::query(
            "INSERT INTO audit_log (at, actor, role, action, target, dossier, client, outcome)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(now_rfc3339())
        .bind(entry.actor)
        .bind(entry.role.as_str())
        .bind(entry.action)
        .bind(entry.target)
        .bind(entry.dossier)
        .bind(entry.client)
        .bind(if entry.denied { "denied" } else { "ok" })
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Audit entries matching `filter`, newest first.
    pub async fn audit_entries(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, RepoError> {
        let rows = sqlx::query(
            "SELECT id, at, actor, role, action, target, dossier, client, outcome FROM audit_log
             WHERE ($1 IS NULL OR actor = $1) AND ($2 IS NULL OR dossier = $2)
               AND ($3 IS NULL OR action = $3) AND ($4 IS NULL OR at >= $4)
               AND ($5 IS NULL OR at < $5) AND ($6 IS NULL OR id < $6)
             ORDER BY id DESC LIMIT $7",
        )
        .bind(&filter.actor)
        .bind(&filter.dossier)
        .bind(&filter.action)
        .bind(&filter.since)
        .bind(&filter.until)
        .bind(filter.before)
        .bind(filter.limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| AuditEntry {
                id: r.get(0),
                at: r.get(1),
                actor: r.get(2),
                role: r.get(3),
                action: r.get(4),
                target: r.get(5),
                dossier: r.get(6),
                client: r.get(7),
                outcome: r.get(8),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_audit_log_cannot_be_changed_or_emptied() {
        let dir = tempfile::tempdir().unwrap();
        for repo in crate::repo::backend::test_repos(dir.path()).await {
            audit_log_is_append_only(repo).await;
        }
    }

    async fn audit_log_is_append_only(repo: Repo) {
        let entry = NewAuditEntry {
            actor: "lan",
            role: Role::Archivist,
            action: "dossier.read",
            target: "000.00.15.H27-231128-0042",
            dossier: Some("000.00.15.H27-231128-0042"),
            client: "127.0.0.1:50000",
            denied: false,
        };
        repo.audit(&entry).await.unwrap();
        let changed = sqlx::query("UPDATE audit_log SET actor = 'someone else'")
            .execute(&repo.pool)
            .await;
        assert!(changed.unwrap_err().to_string().contains("append-only"));
        let emptied = sqlx::query("DELETE FROM audit_log")
            .execute(&repo.pool)
            .await;
        assert!(emptied.unwrap_err().to_string().contains("append-only"));
        let entries = repo
            .audit_entries(&AuditFilter {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].actor, "lan");
    }
}
