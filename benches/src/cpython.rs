//! Runs the same workloads on CPython's asyncio via `asyncio_bench.py`.
//!
//! The script prints one line per measured run:
//! `BENCH <workload> <elapsed ns> <checksum> <peak bytes or ->`, followed by
//! `<p50 ns> <p99 ns>` for the echo workloads.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::child;
use crate::harness::{self, RunResult};
use crate::workload::Workload;

/// The script, next to this crate's manifest.
pub const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/asyncio_bench.py");

/// A CPython interpreter found on `PATH`.
pub struct Python {
    /// What `python3 --version` said.
    pub version: String,
}

/// Looks for `python3` on `PATH`.
pub fn find() -> Option<Python> {
    let out = Command::new("python3").arg("--version").output().ok()?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    out.status.success().then_some(Python { version })
}

/// Runs workload `w` of size `n` in the script; every checksum is verified.
pub fn run(w: Workload, n: usize, runs: usize, warmup: bool) -> Result<Vec<RunResult>, String> {
    let mut cmd = Command::new("python3");
    cmd.args([SCRIPT, "--machine", w.name(), "--n", &n.to_string()]);
    cmd.args(["--runs", &runs.to_string()]);
    if !warmup {
        cmd.arg("--no-warmup");
    }
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("python3: {e}"))?;
    if !out.status.success() {
        return Err(format!("{SCRIPT} {} failed: {}", w.name(), out.status));
    }
    let mut results = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(rest) = line.strip_prefix("BENCH ") else {
            continue;
        };
        let r = parse(rest, w).ok_or_else(|| format!("unreadable line {line:?}"))?;
        harness::check("cpython", w, n, r.checksum)?;
        eprintln!("   {:<9} run:   {}", "cpython", harness::describe(w, n, &r));
        results.push(r);
    }
    if results.len() != runs {
        return Err(format!(
            "{}: expected {runs} results from {SCRIPT}",
            w.name()
        ));
    }
    Ok(results)
}

fn parse(rest: &str, w: Workload) -> Option<RunResult> {
    let mut fields = rest.split(' ');
    (fields.next()? == w.name()).then_some(())?;
    let elapsed = Duration::from_nanos(fields.next()?.parse().ok()?);
    let checksum = fields.next()?.parse().ok()?;
    let peak_bytes = fields.next()?.parse().ok();
    let latency = child::parse_latency(&mut fields);
    Some(RunResult {
        elapsed,
        checksum,
        peak_bytes,
        latency,
    })
}
