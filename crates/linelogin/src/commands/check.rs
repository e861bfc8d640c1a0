//! `linelogin check --config FILE`: a compliance self-check of a login server's configuration
//! and state, one line per check (every failure, not only the first); exit status 1 when any
//! check fails, 2 on bad usage.
//!
//! Read-only: it never creates the database, the logs directory or any file, and it does not
//! run migrations. A database or logs directory that does not exist yet is a failure.

use std::io::Write;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use linelogin_server::admin::undecryptable_sample;
use linelogin_server::config::{Config, RESERVED_ENV, is_real_line_host};
use linelogin_server::crypto::TokenCipher;
use linelogin_server::pages::Pages;
use linelogin_server::store::admin::Admin;
use linelogin_server::store::{PostgresStore, SqliteStore, Store, sqlite_file_path};

use line_loadtest::guard::is_loopback;

use super::CliError;

/// A pending deauthorization older than this fails the check.
const MAX_PENDING_AGE_SECS: i64 = 3600;

/// Stored token sets (per table) that `check` tries to open with the configured keys.
const KEY_SAMPLE: i64 = 50;

/// Arguments of `linelogin check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The server configuration file (TOML); `LINELOGIN_*` variables apply as for `serve`.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The running server's base URL: its served `/terms`, `/account/unregister` and
    /// `/account/unlink` pages (English and Japanese, under the `[gateway]` prefix) must carry
    /// the unregister and unlink notices. Only GET requests, without a session, 5 s bound.
    #[arg(long, value_name = "URL")]
    pub url: Option<url::Url>,
}

struct Report<'a, W: Write> {
    out: &'a mut W,
    failed: usize,
}

impl<W: Write> Report<'_, W> {
    fn line(&mut self, ok: bool, name: &str, detail: impl AsRef<str>) -> Result<(), CliError> {
        if !ok {
            self.failed += 1;
        }
        writeln!(
            self.out,
            "{} {name}: {}",
            if ok { "ok  " } else { "FAIL" },
            detail.as_ref()
        )?;
        Ok(())
    }
}

/// Rotated guideline log files (`NAME.YYYY-MM-DD`) older than `days`, by the date in their
/// name (a day of slack: the server prunes once an hour).
fn files_past_retention(dir: &std::path::Path, days: u32) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let limit = crate::commands::admin::now()
        .checked_sub(std::time::Duration::from_secs(
            (u64::from(days) + 1).saturating_mul(86_400),
        ))
        .unwrap_or(UNIX_EPOCH);
    let mut stale: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| {
            name.rsplit_once('.')
                .and_then(|(_, date)| humantime::parse_rfc3339(&format!("{date}T00:00:00Z")).ok())
                .is_some_and(|day| day < limit)
        })
        .collect();
    stale.sort();
    stale
}

/// When a guideline log file whose name starts with `kind` (any instance, any rotation) was
/// last written, if any.
fn newest_log_write(dir: &std::path::Path, kind: &str) -> Option<SystemTime> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.starts_with(kind)))
        .filter_map(|e| e.metadata().ok()?.modified().ok())
        .max()
}

/// Runs the checks.
pub fn run(args: CheckArgs, out: &mut impl Write) -> Result<(), CliError> {
    let mut r = Report { out, failed: 0 };
    if args.config.is_none()
        && !std::env::vars()
            .any(|(k, _)| k.starts_with("LINELOGIN_") && !RESERVED_ENV.contains(&k.as_str()))
    {
        return Err(CliError::usage(
            "no --config given (pass --config FILE, or set LINELOGIN_* variables)",
        ));
    }
    let config = match Config::load(args.config.as_deref(), std::env::vars()) {
        Ok(c) => {
            r.line(
                true,
                "config",
                "loaded; unknown keys rejected; secrets redacted",
            )?;
            c
        }
        Err(e) => {
            for problem in e.to_string().lines() {
                r.line(false, "config", problem)?;
            }
            return Err(failed(r.failed));
        }
    };

    for (name, url) in [
        ("line.auth_url", &config.line.auth_url),
        ("line.api_url", &config.line.api_url),
    ] {
        if is_real_line_host(url) {
            r.line(
                url.scheme() == "https",
                name,
                format!("LINE Platform at {url}"),
            )?;
        } else if is_loopback(url) {
            r.line(
                true,
                name,
                format!("emulator on loopback at {url} (no traffic to LINE)"),
            )?;
        } else {
            r.line(
                url.scheme() == "https",
                name,
                format!("{url} is neither LINE nor a loopback emulator"),
            )?;
        }
    }
    let public_ok = config.public_url.scheme() == "https" || is_loopback(&config.public_url);
    r.line(
        public_ok,
        "public_url",
        if public_ok {
            format!("{} (cookies {})", config.public_url, if config.secure_cookies() { "Secure, __Host-" } else { "local only" })
        } else {
            format!("{} is plain http on a non-loopback host: cookies and tokens would travel unencrypted", config.public_url)
        },
    )?;
    match config.callback_url() {
        Ok(callback) => r.line(
            true,
            "callback",
            format!(
                "register {callback} as the Callback URL (LINE Developers Console, the channel's LINE Login tab)"
            ),
        )?,
        Err(e) => r.line(false, "callback", e.to_string())?,
    }
    let rate = config.outbound.rate_limit_per_second;
    r.line(
        rate > 0,
        "outbound.rate_limit_per_second",
        format!(
            "{rate}/s, burst {}: every call to LINE passes one limiter",
            config.outbound.burst
        ),
    )?;
    r.line(
        true,
        "token_encryption_key",
        "set (32 bytes; tokens stored with XChaCha20-Poly1305)",
    )?;
    let secret = config.line.channel_secret.secret();
    let hex32 = secret.len() == 32 && secret.bytes().all(|b| b.is_ascii_hexdigit());
    r.line(
        hex32,
        "line.channel_secret",
        if hex32 {
            "32 hex characters, as LINE issues them (never printed)"
        } else {
            "not 32 hex characters: a placeholder? Copy the Channel secret from the channel's \
             Basic settings in the LINE Developers Console"
        },
    )?;
    let instances = config.outbound.instances;
    match (&config.outbound.redis_url, instances) {
        (Some(redis), _) => r.line(
            true,
            "outbound.redis_url",
            format!(
                "one limit shared by every instance through {}",
                redis.masked()
            ),
        )?,
        (None, 1) => r.line(
            true,
            "outbound.redis_url",
            "not set: the limit is this instance's own (one instance)",
        )?,
        (None, n) => r.line(
            false,
            "outbound.redis_url",
            format!(
                "outbound.instances = {n} without a shared limit: together they would send up \
                 to {n} times the rate to LINE; set outbound.redis_url"
            ),
        )?,
    }

    // Looked at, never created or written: a check must leave no trace.
    let dir = &config.logs.dir;
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() && !m.permissions().readonly() => {
            r.line(
                config.logs.retention_days > 0,
                "logs",
                format!(
                    "{} exists; kept {} days",
                    dir.display(),
                    config.logs.retention_days
                ),
            )?;
            let stale = files_past_retention(dir, config.logs.retention_days);
            r.line(
                stale.is_empty(),
                "logs retention",
                if stale.is_empty() {
                    "no rotated file older than the retention period".to_owned()
                } else {
                    format!(
                        "not applied: {} rotated file(s) older than {} days (e.g. {}); is the \
                         server running? `linelogin logs prune` applies it",
                        stale.len(),
                        config.logs.retention_days,
                        stale[0]
                    )
                },
            )?;
        }
        Ok(m) if m.is_dir() => r.line(false, "logs", format!("{} is read-only", dir.display()))?,
        Ok(_) => r.line(
            false,
            "logs",
            format!("{} is not a directory", dir.display()),
        )?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => r.line(
            false,
            "logs",
            format!(
                "{} does not exist (the server creates it when it starts; wrong directory?)",
                dir.display()
            ),
        )?,
        Err(e) => r.line(false, "logs", format!("{}: {e}", dir.display()))?,
    }

    // Rendered with the configured templates (`[pages] templates_dir`): an override that
    // drops a notice fails here.
    match Pages::load(&config.pages).and_then(|p| p.check_notices()) {
        Ok(checks) => {
            let missing: Vec<String> = checks.iter().flat_map(|c| c.missing()).collect();
            r.line(
                missing.is_empty(),
                "deauthorize notice",
                if missing.is_empty() {
                    "shown next to unregister/unlink and in /terms (en, ja)".to_owned()
                } else {
                    missing.join("; ")
                },
            )?;
        }
        Err(e) => r.line(false, "deauthorize notice", e.to_string())?,
    }

    if let Some(base) = &args.url {
        served_notices(&mut r, &config, base)?;
    }

    let raw = config.database_url.expose();
    if raw.starts_with("sqlite:") {
        match sqlite_file_path(raw) {
            Ok(Some(path)) if !path.exists() => {
                r.line(
                    false,
                    "database",
                    format!(
                        "{} does not exist (the server creates it when it starts; wrong directory?)",
                        path.display()
                    ),
                )?;
                return Err(failed(r.failed));
            }
            Ok(_) => {}
            Err(e) => {
                r.line(false, "database", e.to_string())?;
                return Err(failed(r.failed));
            }
        }
    }
    let rt = super::serve::runtime()?;
    let db = rt.block_on(async {
        // Opened without migrating: a check changes nothing.
        let (store, admin): (Box<dyn Store>, Box<dyn Admin>) = if raw.starts_with("sqlite:") {
            let s = SqliteStore::connect(raw).await?;
            (Box::new(s.clone()), Box::new(s))
        } else {
            let s = PostgresStore::connect(raw, None).await?;
            (Box::new(s.clone()), Box::new(s))
        };
        let now = crate::commands::admin::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        let stats = store.job_stats(now).await?;
        let cipher = TokenCipher::from_config(&config);
        let keys = undecryptable_sample(&*admin, &cipher, KEY_SAMPLE).await?;
        let last_login = admin.last_account_update().await?;
        Ok::<_, linelogin_server::store::StoreError>((stats, keys, last_login))
    });
    match db {
        Ok((stats, (undecryptable, sampled), last_login)) => {
            // Logins served in the last day must have left authorization requests in the
            // guideline logs of this configuration's directory.
            let day_ago = crate::commands::admin::now()
                .checked_sub(std::time::Duration::from_secs(86_400))
                .unwrap_or(UNIX_EPOCH);
            let recent_login = last_login
                .and_then(|ms| u64::try_from(ms).ok())
                .map(|ms| UNIX_EPOCH + std::time::Duration::from_millis(ms))
                .is_some_and(|t| t >= day_ago);
            if recent_login {
                let written = newest_log_write(dir, "authorization-request");
                let fresh = written.is_some_and(|t| t >= day_ago);
                r.line(
                    fresh,
                    "guideline logs",
                    if fresh {
                        format!(
                            "authorization requests logged in {} within the last day",
                            dir.display()
                        )
                    } else {
                        format!(
                            "logins were served in the last day but {} has no authorization \
                             request logged since: does the server write to another directory?",
                            dir.display()
                        )
                    },
                )?;
            }
            r.line(
                undecryptable == 0,
                "token keys",
                if undecryptable == 0 {
                    format!("the configured keys open the {sampled} stored token set(s) sampled")
                } else {
                    format!(
                        "{undecryptable} of {sampled} stored token sets sampled open under no \
                         configured key: was token_encryption_key changed without the old one in \
                         previous_token_encryption_keys? Their deauthorizations cannot be sent"
                    )
                },
            )?;
            r.line(
                true,
                "database",
                format!("{} reachable", config.database_url.masked()),
            )?;
            let ok = stats.failed == 0 && stats.oldest_pending_age_secs <= MAX_PENDING_AGE_SECS;
            r.line(
                ok,
                "deauthorization",
                format!(
                    "{} pending, {} failed, oldest pending {}s",
                    stats.pending, stats.failed, stats.oldest_pending_age_secs
                ),
            )?;
        }
        Err(e) => r.line(
            false,
            "database",
            format!("{}: {e}", config.database_url.masked()),
        )?,
    }

    match r.failed {
        0 => Ok(()),
        n => Err(failed(n)),
    }
}

/// The served pages that must carry a guideline notice, and which: `/terms` both, each
/// confirmation page its own (the server shows it without a session too, so that `check`
/// can read it).
const SERVED_PAGES: [(&str, &[Notice]); 3] = [
    ("/terms", &[Notice::Unregister, Notice::Unlink]),
    ("/account/unregister", &[Notice::Unregister]),
    ("/account/unlink", &[Notice::Unlink]),
];

/// A guideline notice a served page must carry.
#[derive(Clone, Copy)]
enum Notice {
    Unregister,
    Unlink,
}

impl Notice {
    fn name(self) -> &'static str {
        match self {
            Notice::Unregister => "unregister",
            Notice::Unlink => "unlink",
        }
    }

    fn text(self, lang: linelogin_server::i18n::Lang) -> &'static str {
        match self {
            Notice::Unregister => lang.t().unregister_notice,
            Notice::Unlink => lang.t().unlink_notice,
        }
    }
}

/// Why a served page could not be read; `unreachable` when the server did not answer.
struct FetchFailed {
    why: String,
    unreachable: bool,
}

/// GETs `url` in `lang`: the page's HTML, or why there is none (an error status, or a
/// redirect, e.g. an older server that sends visitors to the login).
fn fetch_page(
    rt: &tokio::runtime::Runtime,
    client: &reqwest::Client,
    url: &str,
    lang: linelogin_server::i18n::Lang,
) -> Result<String, FetchFailed> {
    let page = rt.block_on(async {
        let resp = client
            .get(url)
            .header("accept-language", lang.code())
            .send()
            .await?
            .error_for_status()?;
        let redirect = resp.status().is_redirection().then(|| resp.status());
        resp.text().await.map(|html| (redirect, html))
    });
    match page {
        Ok((None, html)) => Ok(html),
        Ok((Some(status), _)) => Err(FetchFailed {
            why: format!("answered {status} instead of the page"),
            unreachable: false,
        }),
        Err(e) => Err(FetchFailed {
            why: if e.is_timeout() {
                "no answer within 5 s".to_owned()
            } else if e.is_connect() {
                "cannot connect".to_owned()
            } else if let Some(status) = e.status() {
                format!("answered {status}")
            } else {
                "request failed".to_owned()
            },
            unreachable: e.is_timeout() || e.is_connect(),
        }),
    }
}

/// Fetches the running server's pages of [`SERVED_PAGES`] in each language and looks for
/// their notices: one line per page, naming what a page lacks.
fn served_notices<W: Write>(
    r: &mut Report<'_, W>,
    config: &Config,
    base: &url::Url,
) -> Result<(), CliError> {
    use linelogin_server::i18n::Lang;
    let prefix = config.gateway.as_ref().map_or("", |g| g.prefix.as_str());
    let rt = super::serve::runtime()?;
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| CliError::failure(format!("HTTP client: {e}")))?;
    for (path, notices) in SERVED_PAGES {
        let url = format!("{}{prefix}{path}", base.as_str().trim_end_matches('/'));
        let mut missing = Vec::new();
        let mut failed = None;
        for lang in [Lang::En, Lang::Ja] {
            match fetch_page(&rt, &client, &url, lang) {
                Ok(html) => missing.extend(
                    notices
                        .iter()
                        .filter(|n| !html.contains(n.text(lang)))
                        .map(|n| format!("{} notice ({})", n.name(), lang.code())),
                ),
                Err(f) => {
                    failed = Some(f);
                    break;
                }
            }
        }
        if let Some(f) = failed {
            r.line(false, "served notice", format!("{url}: {}", f.why))?;
            if f.unreachable {
                // The next pages would wait on the same server.
                return Ok(());
            }
            continue;
        }
        let names: Vec<&str> = notices.iter().map(|n| n.name()).collect();
        r.line(
            missing.is_empty(),
            "served notice",
            if missing.is_empty() {
                format!(
                    "{url} shows the {} notice{} (en, ja)",
                    names.join(" and "),
                    if names.len() > 1 { "s" } else { "" }
                )
            } else {
                format!("{url} lacks the {}", missing.join(", "))
            },
        )?;
    }
    Ok(())
}

/// `1 check failed`, `3 checks failed`.
fn failed(n: usize) -> CliError {
    CliError::failure(match n {
        1 => "1 check failed".to_owned(),
        n => format!("{n} checks failed"),
    })
}
