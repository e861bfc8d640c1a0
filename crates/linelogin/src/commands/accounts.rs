//! `linelogin accounts find|show|unregister|unlink`: accounts, for support staff.

use std::io::Write;

use linelogin_server::admin::{OperatorDeauth, operator_deauthorize};
use linelogin_server::crypto::{KeyUsed, TokenCipher, TokenKind, user_binding};
use linelogin_server::store::{Account, AdminStore, DeauthReason};

use super::CliError;
use super::admin::{ConfigArg, json, now_ms, store_failure, table, time, with_store};

/// Arguments of `linelogin accounts`.
#[derive(Debug, clap::Args)]
pub struct AccountsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: AccountsCommand,
}

/// The `accounts` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum AccountsCommand {
    /// Find accounts by LINE user id or by our account id (read-only).
    Find {
        /// The LINE user id (`U…`).
        #[arg(
            long,
            value_name = "LINE_USER_ID",
            required_unless_present = "account",
            conflicts_with = "account"
        )]
        user: Option<String>,
        /// Our account id (`a_…`).
        #[arg(long, value_name = "ID")]
        account: Option<String>,
        /// The configuration.
        #[command(flatten)]
        config: ConfigArg,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one account and the state of its stored LINE tokens (read-only).
    Show {
        /// Our account id (`a_…`).
        account: String,
        /// The configuration.
        #[command(flatten)]
        config: ConfigArg,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Unregister an account on the user's behalf (e.g. an erasure request).
    ///
    /// In one transaction its tokens move into a durable deauthorization job, its sessions
    /// end and it is deleted. The running server's worker then deauthorizes the app at LINE.
    Unregister {
        /// Our account id (`a_…`).
        account: String,
        /// The configuration.
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Unlink an account from LINE on the user's behalf.
    ///
    /// Like `unregister`, but the account stays, marked unlinked.
    Unlink {
        /// Our account id (`a_…`).
        account: String,
        /// The configuration.
        #[command(flatten)]
        config: ConfigArg,
    },
}

/// How an account's stored tokens stand.
fn token_state(
    cipher: &TokenCipher,
    account: &Account,
    tokens: Option<&linelogin_server::store::StoredTokens>,
    now: i64,
) -> String {
    let Some(t) = tokens else {
        return "none (the user must log in before a deauthorization can be sent)".into();
    };
    let binding = user_binding(&account.issuer, &account.sub);
    let key = |kind, ct: &[u8]| cipher.open_with_key(kind, &binding, ct).map(|(_, k)| k);
    match (
        key(TokenKind::Access, &t.access_ct),
        key(TokenKind::Refresh, &t.refresh_ct),
    ) {
        (Ok(a), Ok(r)) => {
            let under = if a == KeyUsed::Current && r == KeyUsed::Current {
                "the current key"
            } else {
                "a previous key (run `linelogin keys rotate`)"
            };
            let access = if t.access_expires_at > now {
                format!("access token valid until {}", time(t.access_expires_at))
            } else {
                format!("access token expired {}", time(t.access_expires_at))
            };
            format!("held, under {under}; {access}")
        }
        _ => "held, but no configured key decrypts them".into(),
    }
}

fn account_json(a: &Account) -> serde_json::Value {
    serde_json::json!({
        "id": a.id,
        "issuer": a.issuer,
        "line_user_id": a.sub,
        "display_name": a.display_name,
        "status": a.status.as_str(),
        "created_at": a.created_at,
    })
}

/// Runs an `accounts` subcommand.
pub fn run(args: AccountsArgs, out: &mut impl Write) -> Result<(), CliError> {
    match args.command {
        AccountsCommand::Find {
            user,
            account,
            config,
            json: as_json,
        } => {
            let config = config.load()?;
            let accounts = with_store(&config, async |store| match (&user, &account) {
                (Some(sub), _) => store.accounts_by_user(sub).await.map_err(store_failure),
                (None, Some(id)) => Ok(store
                    .account(id)
                    .await
                    .map_err(store_failure)?
                    .into_iter()
                    .collect()),
                (None, None) => Err(CliError::usage("give --user or --account")),
            })?;
            if as_json {
                let list: Vec<_> = accounts.iter().map(account_json).collect();
                return json(out, &list);
            }
            if accounts.is_empty() {
                return Err(CliError::failure("no such account"));
            }
            let rows: Vec<Vec<String>> = accounts
                .iter()
                .map(|a| {
                    vec![
                        a.id.clone(),
                        a.status.as_str().to_owned(),
                        a.sub.clone(),
                        time(a.created_at),
                        a.display_name.clone(),
                    ]
                })
                .collect();
            table(
                out,
                &[
                    "ACCOUNT",
                    "STATUS",
                    "LINE USER ID",
                    "CREATED",
                    "DISPLAY NAME",
                ],
                &rows,
            )
        }
        AccountsCommand::Show {
            account,
            config,
            json: as_json,
        } => {
            let config = config.load()?;
            let cipher = TokenCipher::from_config(&config);
            let now = now_ms();
            let (a, tokens) = with_store(&config, async |store| {
                let a = store
                    .account(&account)
                    .await
                    .map_err(store_failure)?
                    .ok_or_else(|| CliError::failure(format!("no account {account}")))?;
                let tokens = store.tokens(&a.id).await.map_err(store_failure)?;
                Ok((a, tokens))
            })?;
            let tokens = token_state(&cipher, &a, tokens.as_ref(), now);
            if as_json {
                let mut v = account_json(&a);
                v["tokens"] = serde_json::Value::String(tokens);
                return json(out, &v);
            }
            for (k, v) in [
                ("account", a.id.clone()),
                ("status", a.status.as_str().to_owned()),
                ("line user id", a.sub.clone()),
                ("issuer", a.issuer.clone()),
                ("display name", a.display_name.clone()),
                ("created", time(a.created_at)),
                ("tokens", tokens),
            ] {
                writeln!(out, "{:<14}{v}", format!("{k}:"))?;
            }
            Ok(())
        }
        AccountsCommand::Unregister { account, config } => {
            deauthorize(out, &account, &config, DeauthReason::Unregister)
        }
        AccountsCommand::Unlink { account, config } => {
            deauthorize(out, &account, &config, DeauthReason::Unlink)
        }
    }
}

fn deauthorize(
    out: &mut impl Write,
    account: &str,
    config: &ConfigArg,
    reason: DeauthReason,
) -> Result<(), CliError> {
    let config = config.load()?;
    let cipher = TokenCipher::from_config(&config);
    let verb = match reason {
        DeauthReason::Unregister => "unregistered",
        DeauthReason::Unlink => "unlinked",
    };
    let done = with_store(&config, async |store: std::sync::Arc<dyn AdminStore>| {
        let a = store
            .account(account)
            .await
            .map_err(store_failure)?
            .ok_or_else(|| CliError::failure(format!("no account {account}")))?;
        if reason == DeauthReason::Unlink
            && a.status == linelogin_server::store::AccountStatus::Unlinked
        {
            return Err(CliError::failure(format!(
                "account {account} is already unlinked"
            )));
        }
        operator_deauthorize(
            &*store,
            &cipher,
            &a,
            reason,
            now_ms(),
            config.webhook.is_some(),
        )
        .await
        .map_err(store_failure)
    })?;
    match done {
        OperatorDeauth::Enqueued { job_id } => {
            writeln!(
                out,
                "account {account} {verb}; deauthorization job {job_id} is pending (the \
                 server's worker tells LINE at its next poll; follow it with `linelogin outbox \
                 show {job_id}`)"
            )?;
            Ok(())
        }
        OperatorDeauth::NeedsLogin => Err(CliError::failure(format!(
            "account {account} holds no usable LINE token, so LINE cannot be told: nothing \
             changed; the user must log in and {} from the account page to complete it",
            match reason {
                DeauthReason::Unregister => "unregister",
                DeauthReason::Unlink => "unlink",
            }
        ))),
    }
}
