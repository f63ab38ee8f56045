//! Command-line front end of the conformance interpreter.
//!
//! ```text
//! difftest PROGRAM.json             print the program's trace (JSON lines), like ref.py
//! difftest --check [PATH] [FILTER]  compare programs under PATH (default: the corpus) with
//!                                   their stored traces and print the summary
//! difftest --diff PROGRAM.json      the stored and the actual trace side by side
//! ```

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use asyncio_conformance::corpus::{self, Options};
use asyncio_conformance::program::Program;
use asyncio_conformance::{interp, trace};

fn corpus_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("programs")
}

fn load(path: &str) -> Result<Program, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    Program::parse(&text).map_err(|e| format!("{path}: {e}"))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("--check") => {
            let root = args.get(1).map_or_else(corpus_root, PathBuf::from);
            let masks = Path::new(env!("CARGO_MANIFEST_DIR")).join("deviations.txt");
            let opts = Options {
                filter: args.get(2).cloned(),
                masks: corpus::load_masks(&masks).unwrap_or_else(|e| {
                    eprintln!("difftest: {e}");
                    std::process::exit(2)
                }),
                ..Options::default()
            };
            let report = if root.is_file() {
                let name = root.to_string_lossy().into_owned();
                corpus::Report {
                    cases: vec![corpus::check(&root, name, opts.limit)],
                }
            } else {
                corpus::run_corpus(&root, &opts)
            };
            print!("{report}");
            Ok(report.all_identical())
        }
        Some("--diff") if args.len() == 2 => load(&args[1]).map(|p| {
            let actual: Vec<String> = interp::run(&p).iter().map(trace::Event::line).collect();
            let stored = std::fs::read_to_string(corpus::trace_path(Path::new(&args[1])))
                .unwrap_or_default();
            let expected: Vec<&str> = stored.lines().collect();
            let n = expected.len().max(actual.len());
            for i in 0..n {
                let e = expected.get(i).copied().unwrap_or("");
                let a = actual.get(i).map_or("", String::as_str);
                let mark = if e == a { ' ' } else { '!' };
                println!("{mark} {i:>4} {e:<60} | {a}");
            }
            trace::first_difference(&expected, &actual).is_none()
        }),
        Some(path) if args.len() == 1 && !path.starts_with("--") => load(path).map(|p| {
            for ev in interp::run(&p) {
                println!("{}", ev.line());
            }
            true
        }),
        _ => Err(
            "usage: difftest PROGRAM.json | --check [PATH] [FILTER] | --diff PROGRAM.json".into(),
        ),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("difftest: {e}");
            ExitCode::from(2)
        }
    }
}
