//! The load-test report: counts, rates, latency percentiles from HDR histograms, errors by
//! kind, and a per-second timeline.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// The steps of one flow, in order.
pub const STEPS: &[&str] = &["login", "authorize", "callback", "api_me", "finish"];

/// Microseconds as milliseconds.
fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Maximum.
    pub max: f64,
    /// Mean.
    pub mean: f64,
    /// Number of samples.
    pub count: u64,
}

impl Percentiles {
    /// From a histogram of microseconds.
    pub fn of(h: &Histogram<u64>) -> Self {
        Self {
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
            mean: h.mean() / 1000.0,
            count: h.len(),
        }
    }
}

/// One second of the run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Second {
    /// Seconds since the start.
    pub t: u64,
    /// Flows that completed successfully in this second.
    pub ok: u64,
    /// Flows that failed in this second.
    pub failed: u64,
    /// Median latency of the flows that completed successfully in this second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p50_ms: Option<f64>,
    /// 99th percentile latency of the flows that completed successfully in this second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p99_ms: Option<f64>,
    /// How much of this second the run covered: 1 except for the last, partial second
    /// (whose counts are per `span_s` seconds, not per second).
    pub span_s: f64,
}

/// The report (`--json` writes it as is).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The relying party's origin.
    pub target: String,
    /// `closed` (fixed concurrency) or `open` (target rate).
    pub mode: &'static str,
    /// Virtual users (closed) or the in-flight cap (open).
    pub concurrency: usize,
    /// Target flows/s in open mode.
    pub rate: Option<f64>,
    /// Flows started and finished.
    pub flows: u64,
    /// Flows that completed every step.
    pub ok: u64,
    /// Flows that failed.
    pub failed: u64,
    /// Flows an open-loop schedule could not start because the in-flight cap was reached.
    pub dropped: u64,
    /// HTTP requests sent.
    pub requests: u64,
    /// Wall time of the load phase.
    pub duration_s: f64,
    /// Successful flows per second.
    pub flows_per_s: f64,
    /// Latency of whole successful flows.
    pub latency_ms: Percentiles,
    /// Latency per step (successful steps).
    pub steps: BTreeMap<String, Percentiles>,
    /// Failures by kind.
    pub errors: BTreeMap<String, u64>,
    /// Per-second completions.
    pub timeline: Vec<Second>,
    /// Likely causes of the failures, when there were any (filled in by the runner).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hints: Vec<String>,
}

/// What one flow measured: its steps' latencies and its requests. A flow fills it as it goes;
/// the run records it into the shared [`Tally`] once the flow ends (one lock per flow).
#[derive(Debug, Default, Clone)]
pub struct FlowTimes {
    steps: [(&'static str, Duration); STEPS.len()],
    len: usize,
    /// HTTP requests sent.
    pub requests: u64,
}

impl FlowTimes {
    /// Notes a step's latency (steps beyond [`STEPS`]' count are not kept).
    pub fn step(&mut self, name: &'static str, d: Duration) {
        if let Some(slot) = self.steps.get_mut(self.len) {
            *slot = (name, d);
            self.len += 1;
        }
    }

    /// The steps noted, in order.
    pub fn steps(&self) -> &[(&'static str, Duration)] {
        &self.steps[..self.len]
    }
}

/// What the run collected.
#[derive(Debug)]
pub struct Tally {
    /// Whole successful flows, µs.
    pub total: Histogram<u64>,
    /// Per step, µs.
    pub steps: BTreeMap<&'static str, Histogram<u64>>,
    /// Failures by kind.
    pub errors: BTreeMap<String, u64>,
    /// Successes.
    pub ok: u64,
    /// Failures.
    pub failed: u64,
    /// HTTP requests.
    pub requests: u64,
    /// Per-second ok/failed, and latency percentiles once a second is closed.
    pub timeline: Vec<Second>,
    /// Latencies of the seconds still open (flows end in nearly increasing time order, so
    /// only the last few seconds are kept: the memory stays flat however long the run).
    open_seconds: std::collections::VecDeque<(u64, Histogram<u64>)>,
}

/// Seconds kept open behind the latest one, for flows whose end is recorded a little late.
const OPEN_SECONDS: u64 = 2;

fn histogram() -> Histogram<u64> {
    // 1 µs .. 10 min, 3 significant digits.
    Histogram::new_with_bounds(1, 600_000_000, 3)
        .unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable!()))
}

impl Default for Tally {
    fn default() -> Self {
        Self {
            total: histogram(),
            steps: BTreeMap::new(),
            errors: BTreeMap::new(),
            ok: 0,
            failed: 0,
            requests: 0,
            timeline: Vec::new(),
            open_seconds: std::collections::VecDeque::new(),
        }
    }
}

fn micros(d: Duration) -> u64 {
    (d.as_micros() as u64).clamp(1, 600_000_000)
}

impl Tally {
    /// Records a step's latency.
    pub fn step(&mut self, name: &'static str, d: Duration) {
        let _ = self
            .steps
            .entry(name)
            .or_insert_with(histogram)
            .record(micros(d));
    }

    fn second(&mut self, at: Duration) -> &mut Second {
        let t = at.as_secs();
        let idx = t as usize;
        if self.timeline.len() <= idx {
            let from = self.timeline.len();
            self.timeline.resize_with(idx + 1, Second::default);
            for (i, s) in self.timeline.iter_mut().enumerate().skip(from) {
                s.t = i as u64;
                s.span_s = 1.0;
            }
        }
        &mut self.timeline[idx]
    }

    /// Records a successful flow's latency into its second's histogram, closing seconds that
    /// are more than [`OPEN_SECONDS`] behind.
    fn second_latency(&mut self, t: u64, total: Duration) {
        let at = match self.open_seconds.iter().position(|(s, _)| *s >= t) {
            Some(i) if self.open_seconds[i].0 == t => i,
            Some(i) => {
                self.open_seconds.insert(i, (t, histogram()));
                i
            }
            None => {
                self.open_seconds.push_back((t, histogram()));
                self.open_seconds.len() - 1
            }
        };
        let _ = self.open_seconds[at].1.record(micros(total));
        let latest = self.open_seconds.back().map_or(t, |(s, _)| *s);
        while self
            .open_seconds
            .front()
            .is_some_and(|(s, _)| *s + OPEN_SECONDS < latest)
        {
            self.close_oldest_second();
        }
    }

    fn close_oldest_second(&mut self) {
        if let Some((t, h)) = self.open_seconds.pop_front()
            && let Some(second) = self.timeline.get_mut(t as usize)
        {
            second.p50_ms = Some(ms(h.value_at_quantile(0.5)));
            second.p99_ms = Some(ms(h.value_at_quantile(0.99)));
        }
    }

    /// Closes every second; the last one's `span_s` becomes the part of it the run covered.
    fn close(&mut self, duration: Duration) {
        while !self.open_seconds.is_empty() {
            self.close_oldest_second();
        }
        if let Some(last) = self.timeline.last_mut() {
            let covered = duration.as_secs_f64() - last.t as f64;
            last.span_s = covered.clamp(0.001, 1.0);
        }
    }

    /// Records a finished flow's steps and requests (whether it succeeded or not).
    pub fn record_steps(&mut self, times: &FlowTimes) {
        for &(name, d) in times.steps() {
            self.step(name, d);
        }
        self.requests += times.requests;
    }

    /// Records a successful flow ending `at` after the start.
    pub fn success(&mut self, total: Duration, at: Duration) {
        self.ok += 1;
        let _ = self.total.record(micros(total));
        self.second(at).ok += 1;
        self.second_latency(at.as_secs(), total);
    }

    /// Records a failed flow.
    pub fn failure(&mut self, kind: String, at: Duration) {
        self.failed += 1;
        *self.errors.entry(kind).or_insert(0) += 1;
        self.second(at).failed += 1;
    }
}

impl Report {
    /// Builds the report from the run's tally.
    #[allow(clippy::too_many_arguments)]
    pub fn build(
        target: String,
        mode: &'static str,
        concurrency: usize,
        rate: Option<f64>,
        mut tally: Tally,
        dropped: u64,
        duration: Duration,
    ) -> Self {
        tally.close(duration);
        let secs = duration.as_secs_f64().max(1e-9);
        let steps = STEPS
            .iter()
            .filter_map(|s| {
                tally
                    .steps
                    .get(s)
                    .map(|h| ((*s).to_owned(), Percentiles::of(h)))
            })
            .collect();
        Self {
            target,
            mode,
            concurrency,
            rate,
            flows: tally.ok + tally.failed,
            ok: tally.ok,
            failed: tally.failed,
            dropped,
            requests: tally.requests,
            duration_s: secs,
            flows_per_s: tally.ok as f64 / secs,
            latency_ms: Percentiles::of(&tally.total),
            steps,
            errors: tally.errors,
            timeline: tally.timeline,
            hints: Vec::new(),
        }
    }

    /// An aligned table for a person.
    pub fn to_table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "target      {}", self.target);
        let _ = writeln!(
            s,
            "mode        {} ({} {}{})",
            self.mode,
            self.concurrency,
            if self.mode == "open" {
                "in flight max"
            } else {
                "virtual users"
            },
            self.rate
                .map(|r| format!(", {r} flows/s target"))
                .unwrap_or_default()
        );
        let _ = writeln!(
            s,
            "flows       {} ok, {} failed{} in {:.2} s ({} HTTP requests)",
            self.ok,
            self.failed,
            if self.dropped > 0 {
                format!(", {} dropped", self.dropped)
            } else {
                String::new()
            },
            self.duration_s,
            self.requests
        );
        let _ = writeln!(s, "throughput  {:.1} flows/s", self.flows_per_s);
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "{:<10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "latency ms", "p50", "p90", "p99", "p99.9", "max", "count"
        );
        let mut row = |name: &str, p: &Percentiles| {
            let _ = writeln!(
                s,
                "{:<10} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9}",
                name, p.p50, p.p90, p.p99, p.p999, p.max, p.count
            );
        };
        for (name, p) in &self.steps {
            row(name, p);
        }
        row("flow", &self.latency_ms);
        if !self.errors.is_empty() {
            let _ = writeln!(s);
            let _ = writeln!(s, "errors");
            for (k, n) in &self.errors {
                let _ = writeln!(s, "  {k:<32} {n:>8}");
            }
        }
        if !self.hints.is_empty() {
            let _ = writeln!(s);
            let _ = writeln!(s, "likely causes");
            for h in &self.hints {
                let _ = writeln!(s, "  - {h}");
            }
        }
        s
    }
}
