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
use self::guard::{Refusal, is_loopback, origin_of};
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
) -> Result<GuardReport, LoadTestError> {
    if !is_loopback(target) {
        return Err(Refusal::TargetNotLoopback(target.to_string()).into());
    }
    let start = target
        .join(start_path)
        .map_err(|e| LoadTestError::Usage(format!("bad --start-path: {e}")))?;
    let resp =
        client.get(start.clone()).send().await.map_err(|e| {
            LoadTestError::Unreachable(start.to_string(), e.without_url().to_string())
        })?;
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
    if !is_loopback(&authorize) {
        return Err(Refusal::AuthorizeNotLoopback(shown).into());
    }
    let emulator = origin_of(&authorize);
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
            Ok(Ok(v)) if v.is_object() => Ok(GuardReport { emulator }),
            _ => Err(Refusal::NotAnEmulator(shown, "the stats answer is not JSON".into()).into()),
        },
        Ok(r) => {
            Err(Refusal::NotAnEmulator(shown, format!("status {}", r.status().as_u16())).into())
        }
        Err(e) => Err(Refusal::NotAnEmulator(shown, e.without_url().to_string()).into()),
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
    let guard = check_target(&client, &test.target, &test.start_path).await?;

    let progress = progress_bar(test);
    let started = Instant::now();
    let (tally, dropped) = match test.mode {
        Mode::Closed => closed_loop(test, &client, &progress, started).await,
        Mode::Open { rate } => open_loop(test, &client, &progress, started, rate).await,
    };
    let duration = started.elapsed();
    progress.finish_and_clear();
    let (mode, rate) = match test.mode {
        Mode::Closed => ("closed", None),
        Mode::Open { rate } => ("open", Some(rate)),
    };
    let report = Report::build(
        test.target.as_str().trim_end_matches('/').to_owned(),
        mode,
        test.concurrency,
        rate,
        tally,
        dropped,
        duration,
    );
    Ok((report, guard))
}

fn progress_bar(test: &LoadTest) -> ProgressBar {
    let (len, template) = match test.bound {
        Bound::Flows(n) => (
            n,
            "{spinner} {bar:40} {pos}/{len} flows  {per_sec}  eta {eta}  {msg}",
        ),
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

fn tick(progress: &ProgressBar, bound: Bound, started: Instant, failed: u64) {
    match bound {
        Bound::Flows(_) => progress.inc(1),
        Bound::Duration(_) => progress.set_position(started.elapsed().as_secs()),
    }
    if failed > 0 {
        progress.set_message(format!("{failed} failed"));
    }
}

/// Records a finished flow into the run's tally: its steps, then its outcome (for a success,
/// the latency to report).
fn record(
    tally: &Mutex<Tally>,
    failed: &AtomicU64,
    times: &FlowTimes,
    outcome: Result<Duration, flow::Failure>,
    started: Instant,
) {
    let at = started.elapsed();
    let mut tally = tally.lock().unwrap_or_else(PoisonError::into_inner);
    tally.record_steps(times);
    match outcome {
        Ok(latency) => tally.success(latency, at),
        Err(f) => {
            failed.fetch_add(1, Ordering::Relaxed);
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
    client: &reqwest::Client,
    progress: &ProgressBar,
    started: Instant,
) -> (Tally, u64) {
    let budget = Arc::new(Budget {
        bound: test.bound,
        issued: AtomicU64::new(0),
        started,
    });
    let failed = Arc::new(AtomicU64::new(0));
    let plan = Arc::new(Plan::new(&test.target, &test.start_path, test.finish));
    // One tally for the run (one short lock per flow), not one per virtual user: its
    // histograms stay few and warm in the cache.
    let tally = Arc::new(Mutex::new(Tally::default()));
    let mut tasks = Vec::with_capacity(test.concurrency);
    for _ in 0..test.concurrency {
        let (budget, failed, progress, plan, tally) = (
            budget.clone(),
            failed.clone(),
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
                record(&tally, &failed, &times, outcome, started);
                tick(
                    &progress,
                    budget.bound,
                    started,
                    failed.load(Ordering::Relaxed),
                );
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
    let failed = Arc::new(AtomicU64::new(0));
    let plan = Arc::new(Plan::new(&test.target, &test.start_path, test.finish));
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
        let (failed, progress, plan, agents, tally, bound) = (
            failed.clone(),
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
            record(&tally, &failed, &times, outcome, started);
            tick(&progress, bound, started, failed.load(Ordering::Relaxed));
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
