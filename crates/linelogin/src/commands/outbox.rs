//! `linelogin outbox list|show|retry|cancel`: the deauthorization outbox, for an operator.

use std::io::Write;

use linelogin_server::store::admin::{JOB_STATUSES, JobInfo};
use linelogin_server::store::{AdminStore, StoreError};

use super::CliError;
use super::admin::{ConfigArg, json, now_ms, opt_time, store_failure, table, time, with_store};

/// Arguments of `linelogin outbox`.
#[derive(Debug, clap::Args)]
pub struct OutboxArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: OutboxCommand,
}

/// The `outbox` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum OutboxCommand {
    /// List deauthorization jobs, the newest first (read-only).
    List {
        /// The configuration.
        #[command(flatten)]
        config: ConfigArg,
        /// Only jobs in this state.
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(JOB_STATUSES))]
        state: Option<String>,
        /// Only the jobs of this LINE user id (`U…`): was this user deauthorized, and when?
        #[arg(long, value_name = "LINE_USER_ID")]
        user: Option<String>,
        /// At most this many jobs.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(i64).range(1..=100_000))]
        limit: i64,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one job (read-only).
    Show {
        /// The job id (`j_…`).
        job: String,
        /// The configuration.
        #[command(flatten)]
        config: ConfigArg,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Put a failed job back to pending, its attempts reset: the running server's worker
    /// sends it at its next poll.
    Retry {
        /// The job id.
        job: String,
        /// The configuration.
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Cancel a pending or failed job: it is never sent.
    ///
    /// A cancelled deauthorization means LINE is never told: the app stays in the user's
    /// authorized apps at LINE, although LINE's guidelines require deauthorizing it when a
    /// user unregisters or unlinks. Cancel only a job that must not be sent (a mistake), and
    /// prefer `retry` once the cause of a failure is fixed.
    Cancel {
        /// The job id.
        job: String,
        /// The configuration.
        #[command(flatten)]
        config: ConfigArg,
        /// Confirm: LINE keeps the user's grant.
        #[arg(long)]
        yes: bool,
    },
}

/// Runs an `outbox` subcommand.
pub fn run(args: OutboxArgs, out: &mut impl Write) -> Result<(), CliError> {
    match args.command {
        OutboxCommand::List {
            config,
            state,
            user,
            limit,
            json: as_json,
        } => {
            let config = config.load()?;
            let jobs = with_store(&config, async |store| {
                let jobs = match &user {
                    Some(sub) => store.jobs_of_user(sub, limit).await,
                    None => store.jobs(state.as_deref(), limit).await,
                }
                .map_err(store_failure)?;
                // `--user` and `--state` together: that user's jobs in that state.
                Ok(match (&user, &state) {
                    (Some(_), Some(s)) => jobs.into_iter().filter(|j| &j.status == s).collect(),
                    _ => jobs,
                })
            })?;
            if as_json {
                return json(out, &jobs);
            }
            if jobs.is_empty() {
                writeln!(out, "no jobs")?;
                return Ok(());
            }
            let rows: Vec<Vec<String>> = jobs
                .iter()
                .map(|j| {
                    vec![
                        j.id.clone(),
                        j.status.clone(),
                        j.reason.clone(),
                        j.account_id.clone(),
                        j.attempts.to_string(),
                        time(j.created_at),
                        opt_time(j.finished_at),
                        j.last_error.clone().unwrap_or_else(|| "-".into()),
                    ]
                })
                .collect();
            table(
                out,
                &[
                    "JOB",
                    "STATE",
                    "REASON",
                    "ACCOUNT",
                    "ATTEMPTS",
                    "CREATED",
                    "FINISHED",
                    "LAST ERROR",
                ],
                &rows,
            )
        }
        OutboxCommand::Show {
            job,
            config,
            json: as_json,
        } => {
            let config = config.load()?;
            let info = with_store(&config, async |store| {
                store.job(&job).await.map_err(store_failure)
            })?
            .ok_or_else(|| CliError::failure(format!("no job {job}")))?;
            if as_json {
                return json(out, &info);
            }
            show(out, &info)
        }
        OutboxCommand::Retry { job, config } => {
            let config = config.load()?;
            with_store(&config, async |store| {
                match store.retry_failed_job(&job, now_ms()).await {
                    Ok(()) => Ok(()),
                    Err(StoreError::NotFound) => Err(why_not(&*store, &job, "retried").await),
                    Err(e) => Err(store_failure(e)),
                }
            })?;
            writeln!(
                out,
                "job {job} is pending again; the server's worker sends it at its next poll"
            )?;
            Ok(())
        }
        OutboxCommand::Cancel { job, config, yes } => {
            if !yes {
                return Err(CliError::usage(
                    "cancelling a deauthorization means LINE keeps the user's grant (the app \
                     stays in their authorized apps, against LINE's guidelines); pass --yes to \
                     cancel anyway",
                ));
            }
            let config = config.load()?;
            with_store(&config, async |store| {
                match store
                    .cancel_job(
                        &job,
                        "cancelled by an operator: LINE was not told",
                        now_ms(),
                    )
                    .await
                {
                    Ok(()) => Ok(()),
                    Err(StoreError::NotFound) => Err(why_not(&*store, &job, "cancelled").await),
                    Err(e) => Err(store_failure(e)),
                }
            })?;
            writeln!(
                out,
                "job {job} cancelled: LINE was not told, so the app stays in this user's \
                 authorized apps at LINE"
            )?;
            Ok(())
        }
    }
}

/// Why a job could not be retried or cancelled, as one line.
async fn why_not(store: &dyn AdminStore, job: &str, what: &str) -> CliError {
    match store.job(job).await {
        Ok(None) => CliError::failure(format!("no job {job}")),
        Ok(Some(info)) => {
            let why = match (info.status.as_str(), what) {
                ("failed", "retried") if !info.has_tokens => {
                    "it failed for good and holds no tokens to send again".to_owned()
                }
                ("failed", "retried") => {
                    "its LINE user has linked again since (sending it would revoke the new link)"
                        .to_owned()
                }
                ("pending", "cancelled") => {
                    "a worker is sending it right now; look again in a minute".to_owned()
                }
                (status, _) => format!("it is {status}"),
            };
            CliError::failure(format!("job {job} cannot be {what}: {why}"))
        }
        Err(e) => store_failure(e),
    }
}

fn show(out: &mut impl Write, j: &JobInfo) -> Result<(), CliError> {
    let lines = [
        ("job", j.id.clone()),
        ("state", j.status.clone()),
        ("reason", j.reason.clone()),
        ("account", j.account_id.clone()),
        ("attempts", j.attempts.to_string()),
        ("created", time(j.created_at)),
        (
            "next attempt",
            if j.status == "pending" {
                time(j.next_attempt_at)
            } else {
                "-".into()
            },
        ),
        ("leased until", opt_time(j.lease_until)),
        ("finished", opt_time(j.finished_at)),
        (
            "tokens",
            if j.has_tokens {
                "held (encrypted)"
            } else {
                "none"
            }
            .into(),
        ),
        (
            "last error",
            j.last_error.clone().unwrap_or_else(|| "-".into()),
        ),
    ];
    for (k, v) in lines {
        writeln!(out, "{:<13}{v}", format!("{k}:"))?;
    }
    Ok(())
}
