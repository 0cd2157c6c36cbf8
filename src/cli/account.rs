//! `sohoa account`: accounts and bearer tokens, straight on the data directory (for the first accounts,
//! scripts, and an operator locked out of the API).

use std::process::ExitCode;

use archive_api::Archive;
use archive_api::access::{Role, UnitScope, issue_token};

#[derive(Debug, clap::Subcommand)]
pub(super) enum AccountCommand {
    /// Create an account and print a token for it.
    Add {
        /// Login or system name.
        name: String,
        /// clerk, archivist, system or admin.
        #[arg(long)]
        role: Role,
        /// A unit whose dossiers it may see (repeat for several); every unit when absent.
        #[arg(long = "unit")]
        units: Vec<String>,
        /// Days until the token expires; never when absent.
        #[arg(long)]
        days: Option<u32>,
        /// Print {"account", "token"} as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Issue another token for an account.
    Token {
        /// The account.
        name: String,
        /// What it is for.
        #[arg(long, default_value = "")]
        label: String,
        /// Days until it expires; never when absent.
        #[arg(long)]
        days: Option<u32>,
    },
    /// Set an account's password for signing in to the web UI, read as one line from standard input
    /// (`--remove`: sign in with tokens only).
    Password {
        /// The account.
        name: String,
        /// Remove the password instead.
        #[arg(long)]
        remove: bool,
        /// The person must change it at their first sign-in (for a password you give someone else).
        #[arg(long)]
        temporary: bool,
    },
    /// Revoke a token by its id.
    Revoke {
        /// The token's id (from `sohoa account list`).
        id: i64,
    },
    /// List accounts and their tokens.
    List,
}

pub(super) async fn run(archive: &Archive, command: AccountCommand) -> anyhow::Result<ExitCode> {
    let repo = archive.repo();
    match command {
        AccountCommand::Add {
            name,
            role,
            units,
            days,
            json,
        } => {
            let scope = if units.is_empty() {
                UnitScope::All
            } else {
                for unit in &units {
                    archive_api::codes::UnitCode::parse(unit)?;
                }
                UnitScope::Only(units)
            };
            let account = repo.create_account(&name, role, &scope).await?;
            let (token, _) =
                issue_token(repo, &name, "created with sohoa account add", days).await?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"account": account, "token": token})
                );
            } else {
                eprintln!(
                    "account {name} ({role}, units {}) created; its token:",
                    scope.to_stored()
                );
                println!("{token}");
            }
        }
        AccountCommand::Token { name, label, days } => {
            let (token, record) = issue_token(repo, &name, &label, days).await?;
            eprintln!("token {} for {name}:", record.id);
            println!("{token}");
        }
        AccountCommand::Password {
            name,
            remove,
            temporary,
        } => {
            let phc = if remove {
                None
            } else {
                // Typed unseen at a terminal; one line from a pipe for scripts.
                let password = if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                    rpassword::prompt_password(format!("new password for {name}: "))?
                } else {
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line)?;
                    line.trim_end_matches(['\r', '\n']).to_owned()
                };
                Some(archive_api::access::hash_password(&password)?)
            };
            if !repo.set_password(&name, phc.as_deref(), temporary).await? {
                anyhow::bail!("no account named '{name}'");
            }
            eprintln!(
                "password {} for {name}",
                match (remove, temporary) {
                    (true, _) => "removed",
                    (false, true) => "set, to be changed at the first sign-in,",
                    (false, false) => "set",
                }
            );
        }
        AccountCommand::Revoke { id } => {
            if !repo.revoke_token(id).await? {
                anyhow::bail!("no token {id}");
            }
            println!("token {id} revoked");
        }
        AccountCommand::List => {
            for account in repo.accounts().await? {
                println!(
                    "{}  {}  units {}{}",
                    account.name,
                    account.role,
                    account.units.join(","),
                    if account.disabled { "  (disabled)" } else { "" }
                );
                for token in repo.tokens(&account.name).await? {
                    println!(
                        "    token {}  {}  created {}  expires {}{}",
                        token.id,
                        token.label,
                        token.created_at,
                        token.expires_at.as_deref().unwrap_or("never"),
                        if token.revoked_at.is_some() {
                            "  (revoked)"
                        } else {
                            ""
                        }
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
