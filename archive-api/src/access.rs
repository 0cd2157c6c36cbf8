//! Who may do what: roles, the permissions each grants, the units a caller may see, and bearer tokens.
//!
//! Dossiers hold personal data, so every caller is a named account with one role and a unit scope, and
//! every read of dossier content is written to the audit log (see [`crate::Repo::audit`]).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::Digest;

/// An account's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The one-stop desk: creates dossiers, adds and replaces pages, scans.
    Clerk,
    /// The archive: searches, reads, downloads, issues certified copies.
    Archivist,
    /// Another system: reads dossier metadata, fetches and verifies certified copies.
    System,
    /// Administration: accounts, tokens, units, procedures, the audit log.
    Admin,
}

/// One thing a request needs the right to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Create dossiers, change their status, add, replace and package pages.
    WriteDossiers,
    /// Drive a scanner.
    Scan,
    /// Read a dossier's metadata, documents and page list (no page text or images).
    ReadMetadata,
    /// Read page text and images, and download PDFs and masters.
    ReadContent,
    /// Search page text.
    Search,
    /// Fetch a certified copy.
    IssueCopy,
    /// Check a PDF against the copies issued.
    Verify,
    /// Read the warehouse statistics.
    ReadStats,
    /// Manage accounts, tokens, units and procedures.
    Manage,
    /// Read the audit log.
    ReadAudit,
}

impl Role {
    /// Whether this role grants `permission`.
    pub fn allows(self, permission: Permission) -> bool {
        use Permission::*;
        match self {
            Role::Clerk => matches!(
                permission,
                WriteDossiers | Scan | ReadMetadata | ReadContent
            ),
            Role::Archivist => matches!(
                permission,
                ReadMetadata | ReadContent | Search | IssueCopy | Verify | ReadStats
            ),
            Role::System => matches!(permission, ReadMetadata | IssueCopy | Verify),
            Role::Admin => matches!(permission, Manage | ReadAudit | ReadStats),
        }
    }

    /// The role's name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Clerk => "clerk",
            Role::Archivist => "archivist",
            Role::System => "system",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is not one of the four.
#[derive(Debug, thiserror::Error)]
#[error("role '{0}' is not one of clerk, archivist, system, admin")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "clerk" => Ok(Role::Clerk),
            "archivist" => Ok(Role::Archivist),
            "system" => Ok(Role::System),
            "admin" => Ok(Role::Admin),
            other => Err(UnknownRole(other.to_owned())),
        }
    }
}

/// The units whose dossiers an account may see and change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnitScope {
    /// Every unit.
    All,
    /// Only these unit codes.
    Only(Vec<String>),
}

impl UnitScope {
    /// Reads the stored form: `*`, or unit codes separated by commas.
    pub fn parse(stored: &str) -> Self {
        if stored.trim() == "*" {
            return Self::All;
        }
        Self::Only(
            stored
                .split(',')
                .map(str::trim)
                .filter(|code| !code.is_empty())
                .map(str::to_owned)
                .collect(),
        )
    }

    /// The stored form.
    pub fn to_stored(&self) -> String {
        match self {
            Self::All => "*".to_owned(),
            Self::Only(units) => units.join(","),
        }
    }

    /// Whether a dossier of `unit` is in scope.
    pub fn covers(&self, unit: &str) -> bool {
        match self {
            Self::All => true,
            Self::Only(units) => units.iter().any(|u| u == unit),
        }
    }

    /// The unit codes, or `None` for every unit.
    pub fn units(&self) -> Option<&[String]> {
        match self {
            Self::All => None,
            Self::Only(units) => Some(units),
        }
    }
}

/// The caller of a request, once its token is checked.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The account's name.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// The units it may see.
    pub scope: UnitScope,
    /// Where the request came from (client address), for the audit log.
    pub client: String,
    /// Signed in with a temporary password: may only change it (and see who it is, and sign out).
    pub must_change_password: bool,
}

impl Principal {
    /// Whether the caller's role grants `permission`.
    pub fn can(&self, permission: Permission) -> bool {
        self.role.allows(permission)
    }
}

/// Prefix of every token, so a leaked one is recognisable in logs and by secret scanners.
const TOKEN_PREFIX: &str = "sohoa_";

/// A new random bearer token (256 bits) and the hash to store for it.
pub fn new_token() -> (String, String) {
    let mut secret = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut secret);
    let token = format!("{TOKEN_PREFIX}{}", hex(&secret));
    let hash = token_hash(&token);
    (token, hash)
}

/// What is stored for `token`: its SHA-256. Tokens carry 256 random bits, so no slow hash is needed.
pub fn token_hash(token: &str) -> String {
    hex(&sha2::Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// Issues a new token for `account`, valid for `days` (forever when `None`); returns the token, shown
/// once, and its record.
pub async fn issue_token(
    repo: &crate::Repo,
    account: &str,
    label: &str,
    days: Option<u32>,
) -> Result<(String, crate::repo::TokenRecord), crate::RepoError> {
    let (token, hash) = new_token();
    let expires_at = days.map(crate::time::days_from_now);
    let record = repo
        .create_token(account, &hash, label, expires_at.as_deref())
        .await?;
    Ok((token, record))
}

/// The label of the tokens that signing in with a password issues.
pub const SESSION_LABEL: &str = "signed in";
/// How long a token from signing in with a password lasts: a working day and then some.
pub const SESSION_HOURS: u32 = 12;
/// The fewest characters a password may have.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// The most bytes a password may have: Argon2 takes any length, this bounds the work one request asks.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Why a password cannot be set.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// Too short to resist guessing.
    #[error("a password needs at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    /// Longer than any person types.
    #[error("a password may have at most {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
    /// The hashing library failed.
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

/// The PHC string to store for `password`: Argon2id with a random salt and the library's default
/// (OWASP-recommended) cost. Slow on purpose: call it off the async threads.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let password = normalized(password);
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort);
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::TooLong);
    }
    let salt = SaltString::generate(&mut rand_core::OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// A password as one canonical sequence of characters (NFC): Vietnamese keyboards type "ầ" either as one
/// character or as "a" with two combining marks, and the same password must match either way.
fn normalized(password: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    password.nfc().collect()
}

/// Whether two typed passwords are the same password (compared as [`hash_password`] sees them).
pub fn same_password(a: &str, b: &str) -> bool {
    normalized(a) == normalized(b)
}

/// Whether `password` is the one `phc` (from [`hash_password`]) was made from; `None` for no account, in
/// which case a stand-in hash is checked all the same so the answer takes as long either way.
pub fn verify_password(phc: Option<&str>, password: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    let stand_in = stand_in_hash();
    let known = phc.is_some();
    let Ok(parsed) = PasswordHash::new(phc.unwrap_or(stand_in)) else {
        return false;
    };
    let matches = password.len() <= MAX_PASSWORD_BYTES
        && argon2::Argon2::default()
            .verify_password(normalized(password).as_bytes(), &parsed)
            .is_ok();
    known && matches
}

/// The hash an unknown name's password is checked against, made once (call it at start so the first
/// unknown name takes no longer than any other).
pub fn stand_in_hash() -> &'static str {
    static STAND_IN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    STAND_IN.get_or_init(|| {
        let (random, _) = new_token();
        hash_password(&random).unwrap_or_default()
    })
}

/// Issues a token for a person who signed in with their password, valid for [`SESSION_HOURS`].
pub async fn issue_session_token(
    repo: &crate::Repo,
    account: &str,
) -> Result<(String, crate::repo::TokenRecord), crate::RepoError> {
    let (token, hash) = new_token();
    let expires_at = crate::time::from_now(std::time::Duration::from_secs(
        u64::from(SESSION_HOURS) * 3600,
    ));
    let record = repo
        .create_token(account, &hash, SESSION_LABEL, Some(&expires_at))
        .await?;
    Ok((token, record))
}

/// On a fresh archive (no accounts), creates the account `admin` and writes a token for it to
/// `admin-token` in the data directory (readable by the owner only), so the operator can sign in and
/// create the real accounts. Returns the file's path when it did.
pub async fn bootstrap_admin(
    repo: &crate::Repo,
    data_dir: &std::path::Path,
) -> Result<Option<std::path::PathBuf>, crate::RepoError> {
    if repo.account_count().await? > 0 {
        return Ok(None);
    }
    repo.create_account("admin", Role::Admin, &UnitScope::All)
        .await?;
    let (token, _) = issue_token(repo, "admin", "created on first start", None).await?;
    let path = data_dir.join("admin-token");
    write_secret(&path, &token)?;
    Ok(Some(path))
}

fn write_secret(path: &std::path::Path, secret: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    writeln!(file, "{secret}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_role_has_only_the_rights_it_needs() {
        assert!(Role::Clerk.allows(Permission::WriteDossiers));
        assert!(!Role::Clerk.allows(Permission::Search));
        assert!(!Role::Clerk.allows(Permission::Manage));
        assert!(Role::Archivist.allows(Permission::Search));
        assert!(!Role::Archivist.allows(Permission::WriteDossiers));
        assert!(Role::System.allows(Permission::IssueCopy));
        assert!(!Role::System.allows(Permission::ReadContent));
        assert!(Role::Admin.allows(Permission::ReadAudit));
        assert!(!Role::Admin.allows(Permission::ReadContent));
    }

    #[test]
    fn unit_scope_round_trips_and_covers() {
        let scope = UnitScope::parse("000.00.15.H27, 000.31.15.H27");
        assert!(scope.covers("000.31.15.H27"));
        assert!(!scope.covers("000.00.16.H27"));
        assert_eq!(scope.to_stored(), "000.00.15.H27,000.31.15.H27");
        assert_eq!(UnitScope::parse("*"), UnitScope::All);
    }

    #[test]
    fn tokens_are_random_and_stored_hashed() {
        let (a, hash_a) = new_token();
        let (b, _) = new_token();
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() == TOKEN_PREFIX.len() + 64);
        assert_eq!(token_hash(&a), hash_a);
        assert!(!hash_a.contains(&a[TOKEN_PREFIX.len()..]));
    }
}
