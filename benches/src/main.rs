//! Comparison benchmarks: the `asyncio` crate against tokio (current-thread
//! with `LocalSet`, and multi-thread), smol, and CPython's asyncio.
//!
//! `cargo run --release -p asyncio-benches -- [workload…] [--quick] [--no-python] [--svg PATH]`

mod child;
mod cpython;
mod fd_limit;
mod harness;
mod proc_status;
mod report;
mod rt;
mod svg;
mod workload;

use std::env;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use harness::Config;
use workload::Workload;

const USAGE: &str = "usage: asyncio-benches [WORKLOAD...] [--quick] [--no-python] [--svg PATH]
workloads: spawn sleepers timeout_ok cancel pingpong lock yield echo (default: all)
  echo         TCP echo with 1, 64 and 1000 connections (or one: echo_1 echo_64 echo_1000)
  --quick      sizes / 100, one run, no warm-up: a smoke test (checksums still verified)
  --no-python  skip the CPython column
  --svg PATH   where to write the chart (default: <target dir>/bench.svg)";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(child::FLAG) {
        return child::main(&args[1..]);
    }
    let (cfg, svg_path) = match parse_args(&args) {
        Ok(parsed) => parsed,
        Err(msg) => {
            eprintln!("{msg}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let python = cfg.python.as_ref().map_or("none", |p| &p.version);
    let cpython_runs = cfg.runs.min(harness::CPYTHON_RUNS);
    eprintln!(
        "runs: {} (+{} warm-up), sizes / {}, CPython: {python}",
        cfg.runs,
        usize::from(cfg.warmup),
        cfg.divisor
    );
    let report = match harness::run_all(&cfg) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", report.render());
    if cfg.python.is_ok() {
        println!("cpython: median of {cpython_runs} run(s), no warm-up\n");
    }
    if let Some(dir) = svg_path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    match std::fs::write(&svg_path, svg::chart(&report)) {
        Ok(()) => println!("chart: {}", svg_path.display()),
        Err(e) => {
            eprintln!("error: writing {}: {e}", svg_path.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

fn parse_args(args: &[String]) -> Result<(Config, PathBuf), String> {
    let mut workloads = Vec::new();
    let mut quick = false;
    let mut python = true;
    let mut svg_path = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--no-python" => python = false,
            "--svg" => svg_path = Some(PathBuf::from(args.next().ok_or("--svg needs a path")?)),
            "-h" | "--help" => return Err(String::new()),
            name => {
                let ws =
                    Workload::parse(name).ok_or(format!("unknown workload or flag {name:?}"))?;
                for w in ws {
                    if !workloads.contains(w) {
                        workloads.push(*w);
                    }
                }
            }
        }
    }
    if workloads.is_empty() {
        workloads = Workload::ALL.to_vec();
    }
    workloads.sort_by_key(|w| Workload::ALL.iter().position(|a| a == w));
    let cfg = Config {
        workloads,
        divisor: if quick { 100 } else { 1 },
        runs: if quick { 1 } else { 5 },
        warmup: !quick,
        python: if python {
            cpython::find().ok_or_else(|| "python3 not found on PATH".to_string())
        } else {
            Err("skipped (--no-python)".to_string())
        },
    };
    Ok((cfg, svg_path.unwrap_or_else(default_svg_path)))
}

/// `$CARGO_TARGET_DIR/bench.svg`, else `target/bench.svg` in the workspace.
fn default_svg_path() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."));
    let target = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    target.join("bench.svg")
}
