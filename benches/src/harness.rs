//! The measuring loop: alternates runtimes, verifies checksums, takes medians.

use std::collections::HashMap;
use std::time::Duration;

use crate::child;
use crate::cpython::{self, Python};
use crate::fd_limit;
use crate::proc_status;
use crate::report::{Cell, Column, Metric, Report, Row};
use crate::rt::Runtime;
use crate::workload::Workload;

/// What one run of one workload on one runtime produced.
#[derive(Clone, Copy, Debug)]
pub struct RunResult {
    /// Wall time of the measured phase.
    pub elapsed: Duration,
    /// Sum of the task results (or count of cancellations); must match
    /// [`Workload::expected`].
    pub checksum: u64,
    /// Peak resident memory growth during the run, where measured.
    pub peak_bytes: Option<u64>,
    /// Round-trip latency percentiles, for the echo workloads.
    pub latency: Option<Latency>,
}

impl RunResult {
    /// A result without a memory figure.
    pub fn new(elapsed: Duration, checksum: u64) -> RunResult {
        RunResult {
            elapsed,
            checksum,
            peak_bytes: None,
            latency: None,
        }
    }

    /// Adds the percentiles of the round-trip times `samples_ns` (nanoseconds).
    pub fn with_latency(mut self, samples_ns: Vec<u64>) -> RunResult {
        self.latency = Latency::of(samples_ns);
        self
    }

    /// Adds the growth of peak RSS over `base_rss` (taken before spawning).
    pub fn with_peak(mut self, base_rss: u64) -> RunResult {
        self.peak_bytes = Some(proc_status::peak_rss_bytes().saturating_sub(base_rss));
        self
    }
}

/// Round-trip latency percentiles of one run.
#[derive(Clone, Copy, Debug)]
pub struct Latency {
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
}

impl Latency {
    /// Nearest-rank percentiles of `samples_ns`; `None` when there are none.
    pub fn of(mut samples_ns: Vec<u64>) -> Option<Latency> {
        if samples_ns.is_empty() {
            return None;
        }
        samples_ns.sort_unstable();
        let rank = |pct: usize| {
            let rank = (samples_ns.len() * pct).div_ceil(100).max(1);
            Duration::from_nanos(samples_ns[rank - 1])
        };
        Some(Latency {
            p50: rank(50),
            p99: rank(99),
        })
    }
}

/// Why a run produced no result.
#[derive(Debug)]
pub enum RunError {
    /// The runtime lacks what the workload needs; the note goes under the table.
    Unsupported(String),
    /// Something broke; the whole benchmark stops.
    Failed(String),
}

/// What to run and how often.
pub struct Config {
    /// Workloads in table order.
    pub workloads: Vec<Workload>,
    /// Divides every workload's full size (1, or 100 for `--quick`).
    pub divisor: usize,
    /// Measured runs per runtime (the median is reported).
    pub runs: usize,
    /// Whether to do one discarded warm-up run per runtime first.
    pub warmup: bool,
    /// The CPython interpreter, or why there is no CPython column.
    pub python: Result<Python, String>,
}

/// CPython is slow at full size: at most this many runs, without warm-up.
pub const CPYTHON_RUNS: usize = 3;

/// Per column: the measured runs, or why there are none.
type Samples = Vec<(Column, Result<Vec<RunResult>, String>)>;

/// Runs every configured workload and collects the medians into a report.
pub fn run_all(cfg: &Config) -> Result<Report, String> {
    let mut report = Report::default();
    for &w in &cfg.workloads {
        let n = w.size(cfg.divisor);
        eprintln!("== {} (n = {n})", w.name());
        if let Some(conns) = w.echo_conns() {
            // Both ends of every connection, plus the listener and the rest.
            fd_limit::ensure(2 * conns as u64 + 64)?;
        }
        let mut samples = bench_rust(cfg, w, n)?;
        let py = match &cfg.python {
            Ok(_) => Ok(cpython::run(w, n, cfg.runs.min(CPYTHON_RUNS), false)?),
            Err(why) => Err(why.clone()),
        };
        samples.push((Column::CPython, py));
        report.rows.extend(rows(w, n, &samples));
    }
    Ok(report)
}

/// Runs `w` on every Rust runtime, alternating runtimes within each round
/// and rotating which goes first from one round to the next.
fn bench_rust(cfg: &Config, w: Workload, n: usize) -> Result<Samples, String> {
    // Child-process workloads start from a fresh process each run: no warm-up.
    let in_child = w.in_child();
    let warmup = usize::from(cfg.warmup && !in_child);
    let mut samples: HashMap<Runtime, Result<Vec<RunResult>, String>> = HashMap::new();
    for round in 0..warmup + cfg.runs {
        // Each round starts one runtime later, so no runtime always runs
        // first (right after the previous round's last one: its sockets
        // closing, its memory going back) or always last.
        let mut order = Runtime::ALL;
        order.rotate_left(round % Runtime::ALL.len());
        for rt in order {
            let runs = samples.entry(rt).or_insert_with(|| Ok(Vec::new()));
            let Ok(runs) = runs else { continue };
            let result = if in_child {
                child::run(rt, w, n)
            } else {
                rt.run(w, n)
            };
            match result {
                Ok(r) => {
                    check(rt.key(), w, n, r.checksum)?;
                    eprintln!("   {:<9} run {round}: {}", rt.key(), describe(w, n, &r));
                    if round >= warmup {
                        runs.push(r);
                    }
                }
                Err(RunError::Unsupported(note)) => {
                    samples.insert(rt, Err(note));
                }
                Err(RunError::Failed(e)) => {
                    return Err(format!("{} on {}: {e}", w.name(), rt.key()));
                }
            }
        }
    }
    Ok(Runtime::ALL
        .into_iter()
        .map(|rt| (Column::Rust(rt), samples.remove(&rt).unwrap_or(Ok(vec![]))))
        .collect())
}

/// One run's figures for the progress log: time per op, and latency where measured.
pub fn describe(w: Workload, n: usize, r: &RunResult) -> String {
    let mut line = format!("{:>10.1} {}", per_op_ns(w, n, r.elapsed), w.unit());
    if let Some(lat) = r.latency {
        line += &format!(
            ", {:.0} req/s, p50 {:.1} us, p99 {:.1} us",
            per_second(w, n, r.elapsed),
            micros(lat.p50),
            micros(lat.p99)
        );
    }
    line
}

/// Turns the samples of `w` into its table rows: time, and memory where
/// measured; throughput and latency for the echo workloads.
fn rows(w: Workload, n: usize, samples: &Samples) -> Vec<Row> {
    if w.echo_conns().is_some() {
        return echo_rows(w, n, samples);
    }
    let mut time = Row::new(w, Metric::Time);
    let mut mem = Row::new(w, Metric::Memory);
    for (col, runs) in samples {
        let runs = match runs {
            Ok(runs) if !runs.is_empty() => runs,
            other => {
                let note = other.as_ref().err().map_or("no runs", String::as_str);
                time.cells.push((*col, Cell::Missing(note.to_string())));
                mem.cells.push((*col, Cell::Missing(note.to_string())));
                continue;
            }
        };
        let ns = runs.iter().map(|r| per_op_ns(w, n, r.elapsed)).collect();
        time.cells.push((*col, Cell::Value(median(ns))));
        let bytes: Vec<f64> = runs
            .iter()
            .filter_map(|r| r.peak_bytes)
            .map(|b| b as f64 / n as f64)
            .collect();
        let cell = if bytes.is_empty() {
            Cell::Missing("no memory figure".into())
        } else {
            Cell::Value(median(bytes))
        };
        mem.cells.push((*col, cell));
    }
    if w.in_child() {
        vec![time, mem]
    } else {
        vec![time]
    }
}

/// The rows of an echo workload: requests per second, p50 and p99 latency.
fn echo_rows(w: Workload, n: usize, samples: &Samples) -> Vec<Row> {
    let mut rows = [Metric::Throughput, Metric::P50, Metric::P99].map(|m| Row::new(w, m));
    for (col, runs) in samples {
        let runs = match runs {
            Ok(runs) if !runs.is_empty() => runs,
            other => {
                let note = other.as_ref().err().map_or("no runs", String::as_str);
                for row in &mut rows {
                    row.cells.push((*col, Cell::Missing(note.to_string())));
                }
                continue;
            }
        };
        for row in &mut rows {
            let figures: Vec<f64> = runs
                .iter()
                .filter_map(|r| match row.metric {
                    Metric::Throughput => Some(per_second(w, n, r.elapsed)),
                    Metric::P50 => r.latency.map(|l| micros(l.p50)),
                    _ => r.latency.map(|l| micros(l.p99)),
                })
                .collect();
            let cell = if figures.is_empty() {
                Cell::Missing("no latency figure".into())
            } else {
                Cell::Value(median(figures))
            };
            row.cells.push((*col, cell));
        }
    }
    rows.into()
}

/// Fails unless `checksum` is what a correct run of `w` with size `n` reports.
pub fn check(who: &str, w: Workload, n: usize, checksum: u64) -> Result<(), String> {
    let expected = w.expected(n);
    if checksum == expected {
        Ok(())
    } else {
        Err(format!(
            "{} on {who}: checksum {checksum}, expected {expected}",
            w.name()
        ))
    }
}

/// Nanoseconds per operation, after taking off the workload's fixed floor.
pub fn per_op_ns(w: Workload, n: usize, elapsed: Duration) -> f64 {
    elapsed.saturating_sub(w.floor()).as_nanos() as f64 / w.ops(n) as f64
}

/// Operations per second.
pub fn per_second(w: Workload, n: usize, elapsed: Duration) -> f64 {
    w.ops(n) as f64 / elapsed.saturating_sub(w.floor()).as_secs_f64()
}

/// A duration in microseconds.
pub fn micros(d: Duration) -> f64 {
    d.as_nanos() as f64 / 1000.0
}

/// The median (mean of the middle two for an even count).
pub fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let mid = xs.len() / 2;
    if xs.len() % 2 == 1 {
        xs[mid]
    } else {
        (xs[mid - 1] + xs[mid]) / 2.0
    }
}
