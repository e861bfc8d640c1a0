//! The load-test report: counts, rates, latency percentiles from HDR histograms, errors by
//! kind, and a per-second timeline.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// The steps of one flow, in order.
pub const STEPS: &[&str] = &["login", "authorize", "callback", "api_me", "finish"];

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
        let ms = |us: u64| us as f64 / 1000.0;
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
    /// Per-second ok/failed.
    pub timeline: Vec<Second>,
}

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
            self.timeline.resize_with(idx + 1, Second::default);
            for (i, s) in self.timeline.iter_mut().enumerate() {
                s.t = i as u64;
            }
        }
        &mut self.timeline[idx]
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
        tally: Tally,
        dropped: u64,
        duration: Duration,
    ) -> Self {
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
        s
    }
}
