//! `line-loadtest`: the load-test runner behind `linelogin loadtest`.
//!
//! It drives complete LINE Login flows against a relying party — any relying party, not only
//! linelogin's server — whose LINE platform is the linelogin emulator:
//! `start-path` → emulator authorize (consent page or auto-consent) → the relying party's
//! callback → `/api/me`, optionally followed by logout or unregister. Every flow is a new
//! browser session with its own cookie jar; every virtual user keeps its own keep-alive
//! connections, one per origin, across its flows (see [`http`]). Closed loop (fixed concurrency) or open loop (target rate); bounded by
//! a flow count or a duration. The report gives flows/s, HDR-histogram latency percentiles per
//! step, errors by kind, a JSON file and an SVG chart.
//!
//! Before any load, the [`guard`] makes sure the target and its authorization endpoint are on
//! loopback addresses and that the latter is a linelogin emulator: LINE's guidelines prohibit
//! load tests against the LINE Platform.
// A load-test runner measures real elapsed time: the workspace's clock rule exempts it.
#![allow(clippy::disallowed_methods)]

pub mod chart;
pub mod flow;
pub mod form;
pub mod guard;
pub mod http;
pub mod report;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::Semaphore;
use url::Url;

pub use self::flow::Finish;
use self::flow::Plan;
use self::guard::{Reach, Refusal, is_line_host, is_loopback, origin_of};
use self::http::Agent;
pub use self::report::Report;
use self::report::{FlowTimes, Tally};

/// When the run stops.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    /// After this many flows.
    Flows(u64),
    /// After this long.
    Duration(Duration),
}

/// How load is offered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// `concurrency` virtual users, each starting its next flow when the last one ends.
    Closed,
    /// New flows at `rate` per second, whatever the latency (at most `concurrency` in flight;
    /// flows that would exceed it are counted as dropped).
    Open {
        /// Flows per second.
        rate: f64,
    },
}

/// A load test.
#[derive(Debug, Clone)]
pub struct LoadTest {
    /// The relying party's base URL.
    pub target: Url,
    /// The path that starts a login (302 to the authorization endpoint).
    pub start_path: String,
    /// When to stop.
    pub bound: Bound,
    /// Virtual users (closed) or in-flight cap (open).
    pub concurrency: usize,
    /// Closed or open loop.
    pub mode: Mode,
    /// What to do at the end of each flow.
    pub finish: Finish,
    /// Per-request timeout.
    pub request_timeout: Duration,
    /// Show a live progress bar on stderr (only when stderr is a terminal).
    pub progress: bool,
    /// Allow a target that is not on a loopback address (a staging relying party whose LINE
    /// is an emulator). The guard's other checks still hold (see [`guard`]).
    pub allow_remote_target: bool,
}

/// Why a load test could not run.
#[derive(Debug, thiserror::Error)]
pub enum LoadTestError {
    /// The guard refused the target.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The probe could not reach the target.
    #[error("cannot reach {0}: {1}")]
    Unreachable(String, String),
    /// Bad settings.
    #[error("{0}")]
    Usage(String),
}

/// What the guard found.
#[derive(Debug, Clone)]
pub struct GuardReport {
    /// The emulator origin the target logs in with.
    pub emulator: Url,
    /// The callback the login asks the emulator to redirect to (`redirect_uri`), if any.
    pub callback: Option<Url>,
    /// How many test users the emulator has (`GET /_emulator/users`), if it said.
    pub test_users: Option<u64>,
    /// Where the run's requests may go.
    pub reach: Reach,
}

fn http_client(timeout: Duration, pool: usize) -> Result<reqwest::Client, LoadTestError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .pool_max_idle_per_host(pool)
        .tcp_nodelay(true)
        .no_proxy()
        .build()
        .map_err(|e| {
            LoadTestError::Usage(format!("cannot build the HTTP client: {}", e.without_url()))
        })
}

/// Checks the target before any load is sent (see [`guard`]).
pub async fn check_target(
    client: &reqwest::Client,
    target: &Url,
    start_path: &str,
    allow_remote_target: bool,
) -> Result<GuardReport, LoadTestError> {
    if is_line_host(target) {
        return Err(Refusal::AuthorizeIsLine(target.to_string()).into());
    }
    if !is_loopback(target) && !allow_remote_target {
        return Err(Refusal::TargetNotLoopback(target.to_string()).into());
    }
    let start = target
        .join(start_path)
        .map_err(|e| LoadTestError::Usage(format!("bad --start-path: {e}")))?;
    let resp = client
        .get(start.clone())
        .send()
        .await
        .map_err(|e| LoadTestError::Unreachable(start.to_string(), plain_network_error(e)))?;
    let status = resp.status();
    let location = resp
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|l| start.join(l).ok());
    let Some(authorize) = location.filter(|_| status.is_redirection()) else {
        return Err(Refusal::NoRedirect(start.to_string(), status.as_u16()).into());
    };
    let shown = format!(
        "{}{}",
        origin_of(&authorize).as_str().trim_end_matches('/'),
        authorize.path()
    );
    if is_line_host(&authorize) {
        return Err(Refusal::AuthorizeIsLine(shown).into());
    }
    if !is_loopback(&authorize) && !allow_remote_target {
        return Err(Refusal::AuthorizeNotLoopback(shown).into());
    }
    let emulator = origin_of(&authorize);
    let callback = authorize
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .and_then(|(_, v)| Url::parse(&v).ok());
    let reach = if allow_remote_target {
        let mut origins = vec![origin_of(target), emulator.clone()];
        origins.extend(callback.as_ref().map(origin_of));
        Reach::Origins(origins)
    } else {
        Reach::Loopback
    };
    let stats = emulator
        .join("/_emulator/stats")
        .map_err(|e| LoadTestError::Usage(e.to_string()))?;
    let answer = client.get(stats).send().await;
    match answer {
        Ok(r) if r.status().is_success() => match r
            .bytes()
            .await
            .map(|b| serde_json::from_slice::<serde_json::Value>(&b))
        {
            Ok(Ok(v)) if v.is_object() => {
                let test_users = count_test_users(client, &emulator).await;
                Ok(GuardReport {
                    emulator,
                    callback,
                    test_users,
                    reach,
                })
            }
            _ => Err(Refusal::NotAnEmulator(shown, "the stats answer is not JSON".into()).into()),
        },
        Ok(r) => {
            Err(Refusal::NotAnEmulator(shown, format!("status {}", r.status().as_u16())).into())
        }
        Err(e) => Err(Refusal::NotAnEmulator(shown, plain_network_error(e)).into()),
    }
}

/// The number of test users the emulator lists, if it answers.
async fn count_test_users(client: &reqwest::Client, emulator: &Url) -> Option<u64> {
    let url = emulator.join("/_emulator/users").ok()?;
    let body = client.get(url).send().await.ok()?.bytes().await.ok()?;
    let v: serde_json::Value = serde_json::from_slice(&body).ok()?;
    v.get("users")?.as_array().map(|a| a.len() as u64)
}

/// A network error in plain words: what happened and what to look at, without the library's
/// internals.
fn plain_network_error(e: reqwest::Error) -> String {
    use std::error::Error as _;
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                std::io::ErrorKind::ConnectionRefused => {
                    "connection refused: nothing is listening there (is it running, on that port?)"
                        .into()
                }
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted => {
                    "the connection was closed before an answer came".into()
                }
                std::io::ErrorKind::TimedOut => "no answer in time".into(),
                std::io::ErrorKind::AddrNotAvailable | std::io::ErrorKind::HostUnreachable => {
                    "that address cannot be reached from here".into()
                }
                std::io::ErrorKind::NetworkUnreachable => "no network route to that address".into(),
                _ => format!("network error: {io}"),
            };
        }
        source = s.source();
    }
    if e.is_timeout() {
        "no answer in time (raise --timeout-ms if the target is slow)".into()
    } else if e.is_connect() {
        "could not connect (does the host name resolve, and is the server running?)".into()
    } else if e.is_decode() || e.is_body() {
        "the answer could not be read".into()
    } else {
        e.without_url().to_string()
    }
}

/// Runs the load test: guard first, then the load. Returns the report.
pub async fn run(test: &LoadTest) -> Result<(Report, GuardReport), LoadTestError> {
    if test.concurrency == 0 {
        return Err(LoadTestError::Usage(
            "--concurrency must be at least 1".into(),
        ));
    }
    if matches!(test.mode, Mode::Open { rate } if !(rate.is_finite() && rate > 0.0)) {
        return Err(LoadTestError::Usage(
            "--rate must be a positive number".into(),
        ));
    }
    let client = http_client(test.request_timeout, test.concurrency.max(16) * 2)?;
    let guard = check_target(
        &client,
        &test.target,
        &test.start_path,
        test.allow_remote_target,
    )
    .await?;

    let progress = progress_bar(test);
    let started = Instant::now();
    let (tally, dropped) = match test.mode {
        Mode::Closed => closed_loop(test, &guard, &client, &progress, started).await,
        Mode::Open { rate } => open_loop(test, &guard, &client, &progress, started, rate).await,
    };
    let duration = started.elapsed();
    progress.finish_and_clear();
    let (mode, rate) = match test.mode {
        Mode::Closed => ("closed", None),
        Mode::Open { rate } => ("open", Some(rate)),
    };
    let mut report = Report::build(
        test.target.as_str().trim_end_matches('/').to_owned(),
        mode,
        test.concurrency,
        rate,
        tally,
        dropped,
        duration,
    );
    report.hints = hints(test, &guard, &report);
    Ok((report, guard))
}

/// Likely causes of the run's failures, in words a person can act on.
fn hints(test: &LoadTest, guard: &GuardReport, report: &Report) -> Vec<String> {
    let mut hints = Vec::new();
    if report.failed == 0 {
        return hints;
    }
    if test.finish == Finish::Unregister
        && let Some(users) = guard.test_users
        && (test.concurrency as u64) > users
    {
        hints.push(format!(
            "{} virtual users share the emulator's {users} test users with --finish unregister: \
             a user's unregister ends the session of the other flows logged in as that user. \
             Start the emulator with --test-users {} or more, or lower --concurrency.",
            test.concurrency, test.concurrency
        ));
    }
    if let Some(callback) = &guard.callback
        && callback.host_str() != test.target.host_str()
    {
        hints.push(format!(
            "the login's callback goes to {}, the target is {}: cookies the target sets are not \
             sent to the callback's host (the state check fails). Use the same host name in \
             --target as in the relying party's callback URL.",
            callback.host_str().unwrap_or("?"),
            test.target.host_str().unwrap_or("?")
        ));
    }
    let count = |suffix: &str| {
        report
            .errors
            .iter()
            .filter(|(k, _)| k.ends_with(suffix))
            .map(|(_, n)| n)
            .sum::<u64>()
    };
    if count("_connect") > 0 {
        hints.push(
            "some connections were refused: the target or the emulator stopped, or ran out of \
             file descriptors (check `ulimit -n`) at this concurrency."
                .into(),
        );
    }
    if count("_status_429") > 0 {
        hints.push(
            "the relying party answered 429 Too Many Requests: its inbound limit per client \
             applies to the load test's single address."
                .into(),
        );
    }
    if count("_status_503") > 0 {
        hints.push(
            "the relying party answered 503: its outbound limit toward LINE (here, the \
             emulator), its circuit breaker, or its database refused; raise its \
             `[outbound] rate_limit_per_second` for a load test, or look at its log."
                .into(),
        );
    }
    hints
}

fn progress_bar(test: &LoadTest) -> ProgressBar {
    let (len, template) = match test.bound {
        Bound::Flows(n) => (n, "{spinner} {bar:40} {pos}/{len} flows  eta {eta}  {msg}"),
        Bound::Duration(d) => (
            d.as_secs().max(1),
            "{spinner} {bar:40} {pos}/{len} s  {msg}",
        ),
    };
    let pb = if test.progress {
        ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        pb.set_style(style);
    }
    pb
}

/// Shared stop condition.
struct Budget {
    bound: Bound,
    issued: AtomicU64,
    started: Instant,
}

impl Budget {
    /// Claims the next flow, if the bound allows one more.
    fn claim(&self) -> bool {
        match self.bound {
            Bound::Flows(n) => self.issued.fetch_add(1, Ordering::Relaxed) < n,
            Bound::Duration(d) => self.started.elapsed() < d,
        }
    }
}

/// Flows finished so far, for the progress bar.
#[derive(Debug, Default)]
struct Counts {
    ok: AtomicU64,
    failed: AtomicU64,
}

fn tick(progress: &ProgressBar, bound: Bound, started: Instant, counts: &Counts) {
    match bound {
        Bound::Flows(_) => progress.inc(1),
        Bound::Duration(_) => progress.set_position(started.elapsed().as_secs()),
    }
    if progress.is_hidden() {
        return;
    }
    let (ok, failed) = (
        counts.ok.load(Ordering::Relaxed),
        counts.failed.load(Ordering::Relaxed),
    );
    let rate = ok as f64 / started.elapsed().as_secs_f64().max(1e-3);
    progress.set_message(format!("{rate:.0} flows/s  {ok} ok  {failed} failed"));
}

/// Records a finished flow into the run's tally: its steps, then its outcome (for a success,
/// the latency to report).
fn record(
    tally: &Mutex<Tally>,
    counts: &Counts,
    times: &FlowTimes,
    outcome: Result<Duration, flow::Failure>,
    started: Instant,
) {
    let at = started.elapsed();
    let mut tally = tally.lock().unwrap_or_else(PoisonError::into_inner);
    tally.record_steps(times);
    match outcome {
        Ok(latency) => {
            counts.ok.fetch_add(1, Ordering::Relaxed);
            tally.success(latency, at);
        }
        Err(f) => {
            counts.failed.fetch_add(1, Ordering::Relaxed);
            tally.failure(f.0, at);
        }
    }
}

/// Takes what the run collected once every task is done.
fn collected(tally: &Mutex<Tally>) -> Tally {
    std::mem::take(&mut *tally.lock().unwrap_or_else(PoisonError::into_inner))
}

async fn closed_loop(
    test: &LoadTest,
    guard: &GuardReport,
    client: &reqwest::Client,
    progress: &ProgressBar,
    started: Instant,
) -> (Tally, u64) {
    let budget = Arc::new(Budget {
        bound: test.bound,
        issued: AtomicU64::new(0),
        started,
    });
    let counts = Arc::new(Counts::default());
    let plan = Arc::new(Plan::new(
        &test.target,
        &test.start_path,
        test.finish,
        guard.reach.clone(),
    ));
    // One tally for the run (one short lock per flow), not one per virtual user: its
    // histograms stay few and warm in the cache.
    let tally = Arc::new(Mutex::new(Tally::default()));
    let mut tasks = Vec::with_capacity(test.concurrency);
    for _ in 0..test.concurrency {
        let (budget, counts, progress, plan, tally) = (
            budget.clone(),
            counts.clone(),
            progress.clone(),
            plan.clone(),
            tally.clone(),
        );
        // Each virtual user keeps its own connections across its flows.
        let mut agent = Agent::new(test.request_timeout, client.clone());
        tasks.push(tokio::spawn(async move {
            while budget.claim() {
                let mut times = FlowTimes::default();
                let outcome = flow::run_flow(&mut agent, &plan, &mut times).await;
                record(&tally, &counts, &times, outcome, started);
                tick(&progress, budget.bound, started, &counts);
            }
        }));
    }
    let mut panicked = 0;
    for t in tasks {
        if t.await.is_err() {
            panicked += 1;
        }
    }
    let mut total = collected(&tally);
    for _ in 0..panicked {
        total.failure("worker_panicked".into(), started.elapsed());
    }
    (total, 0)
}

async fn open_loop(
    test: &LoadTest,
    guard: &GuardReport,
    client: &reqwest::Client,
    progress: &ProgressBar,
    started: Instant,
    rate: f64,
) -> (Tally, u64) {
    let budget = Budget {
        bound: test.bound,
        issued: AtomicU64::new(0),
        started,
    };
    let slots = Arc::new(Semaphore::new(test.concurrency));
    let counts = Arc::new(Counts::default());
    let plan = Arc::new(Plan::new(
        &test.target,
        &test.start_path,
        test.finish,
        guard.reach.clone(),
    ));
    let tally = Arc::new(Mutex::new(Tally::default()));
    // Idle virtual users' connections (at most `concurrency`, one per flow in flight): a flow
    // takes one and gives it back.
    let agents: Arc<Mutex<Vec<Agent>>> = Arc::new(Mutex::new(Vec::new()));
    let interval = Duration::from_secs_f64(1.0 / rate);
    let mut tasks = Vec::new();
    let mut panicked = 0;
    let mut dropped = 0u64;
    let mut n: u64 = 0;
    while budget.claim() {
        // Schedule by the clock, not by the previous flow: latency is measured from the
        // scheduled start (no coordinated omission).
        let scheduled = started + interval.mul_f64(n as f64);
        n += 1;
        tokio::time::sleep_until(scheduled.into()).await;
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            dropped += 1;
            continue;
        };
        let (counts, progress, plan, agents, tally, bound) = (
            counts.clone(),
            progress.clone(),
            plan.clone(),
            agents.clone(),
            tally.clone(),
            test.bound,
        );
        let idle = agents.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let mut agent = idle.unwrap_or_else(|| Agent::new(test.request_timeout, client.clone()));
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            let mut times = FlowTimes::default();
            let outcome = flow::run_flow(&mut agent, &plan, &mut times).await;
            agents
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(agent);
            let outcome = outcome.map(|_| scheduled.elapsed());
            record(&tally, &counts, &times, outcome, started);
            tick(&progress, bound, started, &counts);
        }));
        // Reap finished tasks now and then so memory stays flat on long runs.
        if tasks.len() >= 4096 {
            let (done, pending): (Vec<_>, Vec<_>) =
                tasks.into_iter().partition(|t| t.is_finished());
            tasks = pending;
            for t in done {
                if t.await.is_err() {
                    panicked += 1;
                }
            }
        }
    }
    for t in tasks {
        if t.await.is_err() {
            panicked += 1;
        }
    }
    let mut total = collected(&tally);
    for _ in 0..panicked {
        total.failure("worker_panicked".into(), started.elapsed());
    }
    (total, dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_with(finish: Finish, concurrency: usize, errors: &[(&str, u64)]) -> (LoadTest, Report) {
        let test = LoadTest {
            target: Url::parse("http://127.0.0.1:8080/").unwrap_or_else(|_| unreachable!()),
            start_path: "/login".into(),
            bound: Bound::Flows(10),
            concurrency,
            mode: Mode::Closed,
            finish,
            request_timeout: Duration::from_secs(1),
            progress: false,
            allow_remote_target: false,
        };
        let mut tally = Tally::default();
        tally.success(Duration::from_millis(5), Duration::from_millis(10));
        for (kind, n) in errors {
            for _ in 0..*n {
                tally.failure((*kind).to_owned(), Duration::from_millis(20));
            }
        }
        let report = Report::build(
            "http://127.0.0.1:8080".into(),
            "closed",
            concurrency,
            None,
            tally,
            0,
            Duration::from_secs(1),
        );
        (test, report)
    }

    fn guard(callback: &str, test_users: Option<u64>) -> GuardReport {
        GuardReport {
            emulator: Url::parse("http://127.0.0.1:9000/").unwrap_or_else(|_| unreachable!()),
            callback: Url::parse(callback).ok(),
            test_users,
            reach: Reach::Loopback,
        }
    }

    /// The hints for a run of `finish` at `concurrency` that failed with `errors`, whose login
    /// called back to `callback`, on an emulator with `users` test users.
    fn hints_for(
        finish: Finish,
        concurrency: usize,
        errors: &[(&str, u64)],
        callback: &str,
        users: Option<u64>,
    ) -> Vec<String> {
        let (test, report) = run_with(finish, concurrency, errors);
        hints(&test, &guard(callback, users), &report)
    }

    const SAME_HOST: &str = "http://127.0.0.1:8080/callback";
    const OTHER_HOST: &str = "http://localhost:8080/callback";

    #[test]
    fn no_failure_no_hint() {
        assert!(hints_for(Finish::Unregister, 64, &[], OTHER_HOST, Some(3)).is_empty());
    }

    #[test]
    fn more_virtual_users_than_test_users_with_unregister_is_named() {
        let failed = &[("api_me_status_401", 3)];
        let h = hints_for(Finish::Unregister, 16, failed, SAME_HOST, Some(3));
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(h[0].contains("--test-users 16"), "{}", h[0]);
        // Enough test users, or no unregister: not the cause.
        assert!(hints_for(Finish::Unregister, 16, failed, SAME_HOST, Some(16)).is_empty());
        assert!(hints_for(Finish::Logout, 16, failed, SAME_HOST, Some(3)).is_empty());
    }

    #[test]
    fn a_callback_on_another_host_than_the_target_is_named() {
        let h = hints_for(
            Finish::None,
            4,
            &[("callback_status_400", 5)],
            OTHER_HOST,
            None,
        );
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(
            h[0].contains("localhost") && h[0].contains("127.0.0.1"),
            "{}",
            h[0]
        );
    }

    #[test]
    fn refused_connections_429_and_503_are_explained() {
        let failed = &[
            ("login_connect", 1),
            ("login_status_429", 1),
            ("callback_status_503", 1),
        ];
        let h = hints_for(Finish::None, 4, failed, SAME_HOST, None);
        assert_eq!(h.len(), 3, "{h:?}");
        assert!(h[0].contains("refused") && h[1].contains("429") && h[2].contains("503"));
    }
}
