//! Runs every program under `programs/` through the interpreter and compares its trace
//! with the stored CPython 3.13 trace, line by line.
//!
//! Environment: `DIFFTEST_FILTER=substr` runs only programs whose path contains `substr`;
//! `DIFFTEST_JOBS=n` sets the worker threads. Programs using ops the interpreter cannot
//! express yet (`interp::UNSUPPORTED`) are reported as unsupported, not passed.
//! `deviations.txt` masks documented deviations of the crate, each for one program and
//! one exact first difference (a mask that no longer matches fails the test).

use std::path::Path;

use asyncio_conformance::corpus::{self, Options};

#[test]
fn corpus_matches_cpython() {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = here.join("programs");
    let mut opts = Options {
        filter: std::env::var("DIFFTEST_FILTER").ok(),
        masks: corpus::load_masks(&here.join("deviations.txt")).unwrap(),
        ..Options::default()
    };
    if let Some(n) = std::env::var("DIFFTEST_JOBS")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        opts.jobs = n;
    }
    let report = corpus::run_corpus(&root, &opts);
    assert!(
        !report.cases.is_empty(),
        "no programs found under {}",
        root.display()
    );
    println!("{report}");
    let failed = report.failures().count();
    assert!(
        report.all_identical(),
        "{failed} of {} programs differ from CPython 3.13 (first differences above)\n{}",
        report.cases.len(),
        report.headline()
    );
}
