//! Runs one workload in a child process — this binary re-executed with the
//! hidden [`FLAG`] — so that the peak RSS it reports belongs to that run alone.

use std::env;
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use crate::harness::{Latency, RunError, RunResult};
use crate::rt::Runtime;
use crate::workload::Workload;

/// The hidden first argument that makes the binary act as a child.
pub const FLAG: &str = "--child";

/// Runs workload `w` of size `n` on `rt` in a child process and returns its result.
pub fn run(rt: Runtime, w: Workload, n: usize) -> Result<RunResult, RunError> {
    let fail = |e: String| RunError::Failed(format!("child process: {e}"));
    let exe = env::current_exe().map_err(|e| fail(e.to_string()))?;
    let out = Command::new(exe)
        .args([FLAG, rt.key(), w.name(), &n.to_string()])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| fail(e.to_string()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(fail(format!("{}: {stdout}", out.status)));
    }
    parse(stdout.trim()).ok_or_else(|| fail(format!("unreadable reply {stdout:?}")))?
}

/// Parses the child's one-line reply (see [`main`]).
fn parse(line: &str) -> Option<Result<RunResult, RunError>> {
    if let Some(note) = line.strip_prefix("unsupported ") {
        return Some(Err(RunError::Unsupported(note.to_string())));
    }
    let mut fields = line.strip_prefix("ok ")?.split(' ');
    let elapsed = Duration::from_nanos(fields.next()?.parse().ok()?);
    let checksum = fields.next()?.parse().ok()?;
    let peak_bytes = fields.next()?.parse().ok();
    let latency = parse_latency(&mut fields);
    Some(Ok(RunResult {
        elapsed,
        checksum,
        peak_bytes,
        latency,
    }))
}

/// The optional `<p50 ns> <p99 ns>` fields at the end of a reply line.
pub fn parse_latency<'a>(fields: &mut impl Iterator<Item = &'a str>) -> Option<Latency> {
    let p50 = Duration::from_nanos(fields.next()?.parse().ok()?);
    let p99 = Duration::from_nanos(fields.next()?.parse().ok()?);
    Some(Latency { p50, p99 })
}

/// The child's entry point; `args` are those after [`FLAG`]: runtime key,
/// workload name, size. Prints `ok <elapsed ns> <checksum> <peak bytes or ->`,
/// followed by `<p50 ns> <p99 ns>` where latency was measured, or
/// `unsupported <note>`.
pub fn main(args: &[String]) -> ExitCode {
    let rt = args.first().and_then(|k| Runtime::parse(k));
    let w = args
        .get(1)
        .and_then(|name| Workload::ALL.into_iter().find(|w| w.name() == name));
    let n = args.get(2).and_then(|n| n.parse::<usize>().ok());
    let (Some(rt), Some(w), Some(n)) = (rt, w, n) else {
        eprintln!("usage: {FLAG} <runtime> <workload> <n>");
        return ExitCode::FAILURE;
    };
    match rt.run(w, n) {
        Ok(r) => {
            let peak = r.peak_bytes.map_or("-".to_string(), |b| b.to_string());
            let latency = r.latency.map_or(String::new(), |l| {
                format!(" {} {}", l.p50.as_nanos(), l.p99.as_nanos())
            });
            println!("ok {} {} {peak}{latency}", r.elapsed.as_nanos(), r.checksum);
            ExitCode::SUCCESS
        }
        Err(RunError::Unsupported(note)) => {
            println!("unsupported {note}");
            ExitCode::SUCCESS
        }
        Err(RunError::Failed(e)) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
