//! Running a corpus of programs and comparing each trace with the stored CPython trace.
//!
//! Every `NAME.json` under the corpus root that has a `NAME.trace.jsonl` beside it is a
//! case. A case is run on its own thread with a wall-clock limit (so a runtime bug that
//! hangs or panics costs one case, not the whole run); cases run in parallel.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::Duration;

use crate::interp::{self, UNSUPPORTED};
use crate::program::Program;
use crate::trace::{first_difference, Difference, Event};

/// How one case turned out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The trace is identical to CPython's.
    Identical,
    /// The traces differ; the first difference.
    Differs(Difference),
    /// The program needs what the interpreter cannot express on the crate yet: ops
    /// listed in [`UNSUPPORTED`] (not run), or a construct met while running.
    Unsupported(Vec<String>),
    /// The program or its stored trace could not be read or parsed.
    Invalid(String),
    /// The interpreter (or the runtime under it) panicked.
    Panicked(String),
    /// The run did not finish within the wall-clock limit.
    Hung,
    /// The traces differ exactly as a [`Mask`] for a documented deviation says.
    Masked(String),
    /// A [`Mask`] names this program but the run no longer differs that way (fixed, or
    /// now differs elsewhere): the mask must be updated.
    StaleMask {
        /// The mask's deviation name.
        deviation: String,
        /// What the run gave instead of the masked difference.
        got: String,
    },
}

impl Verdict {
    /// Whether the verdict counts as a failure of the comparison.
    pub fn is_failure(&self) -> bool {
        !matches!(
            self,
            Verdict::Identical | Verdict::Unsupported(_) | Verdict::Masked(_)
        )
    }
}

/// One case's result.
#[derive(Clone, Debug)]
pub struct CaseResult {
    /// The program's path relative to the corpus root.
    pub name: String,
    /// The distinct ops the program uses (empty if it did not parse).
    pub ops: Vec<&'static str>,
    /// What happened.
    pub verdict: Verdict,
}

/// Every program under `root` (recursively) that has a stored trace, sorted by path.
pub fn discover(root: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "json") && trace_path(&p).exists() {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, &mut out);
    out.sort();
    out
}

/// `DIR/NAME.trace.jsonl` for `DIR/NAME.json`.
pub fn trace_path(program: &Path) -> PathBuf {
    program.with_extension("trace.jsonl")
}

/// Runs one program on a fresh thread, giving up after `limit`. The trace lines, or why
/// there are none.
pub fn run_isolated(program: Program, limit: Duration) -> Result<Vec<String>, Verdict> {
    let (tx, rx) = mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("difftest-case".into())
        .spawn(move || {
            let r = std::panic::catch_unwind(move || interp::try_run(&program));
            let _ = tx.send(r);
        });
    if let Err(e) = spawned {
        return Err(Verdict::Panicked(format!("could not start a thread: {e}")));
    }
    match rx.recv_timeout(limit) {
        Ok(Ok(Ok(events))) => Ok(events.iter().map(Event::line).collect()),
        Ok(Ok(Err((_, why)))) => Err(Verdict::Unsupported(vec![why.0])),
        Ok(Err(payload)) => Err(Verdict::Panicked(panic_message(&*payload))),
        // The thread is left behind: there is no way to stop a runaway loop from outside.
        Err(_) => Err(Verdict::Hung),
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}

/// Runs the program at `path` and compares its trace with the stored one.
pub fn check(path: &Path, name: String, limit: Duration) -> CaseResult {
    let invalid = |name, why| CaseResult {
        name,
        ops: Vec::new(),
        verdict: Verdict::Invalid(why),
    };
    let program = match fs::read_to_string(path)
        .map_err(|e| e.to_string())
        .and_then(|t| Program::parse(&t).map_err(|e| e.to_string()))
    {
        Ok(p) => p,
        Err(e) => return invalid(name, e),
    };
    let expected = match fs::read_to_string(trace_path(path)) {
        Ok(t) => t.lines().map(str::to_owned).collect::<Vec<_>>(),
        Err(e) => return invalid(name, format!("stored trace: {e}")),
    };
    let ops = program.ops();
    let missing: Vec<String> = ops
        .iter()
        .filter(|op| UNSUPPORTED.contains(op))
        .map(|op| op.to_string())
        .collect();
    let verdict = if !missing.is_empty() {
        Verdict::Unsupported(missing)
    } else {
        match run_isolated(program, limit) {
            Ok(actual) => match first_difference(&expected, &actual) {
                None => Verdict::Identical,
                Some(d) => Verdict::Differs(d),
            },
            Err(v) => v,
        }
    };
    CaseResult { name, ops, verdict }
}

/// A documented deviation of the crate from asyncio (DESIGN.md), masked for one program
/// and exactly one first difference: `PROGRAM DEVIATION DIFFERENCE` in `deviations.txt`,
/// where DIFFERENCE is the [`Difference`] as displayed (`event #N: expected ... / got ...`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mask {
    /// The program's path relative to the corpus root.
    pub program: String,
    /// The deviation's name.
    pub deviation: String,
    /// The first difference the deviation causes, as displayed.
    pub difference: String,
}

/// Parses a masks file: one [`Mask`] per line; `#` starts a comment line.
pub fn parse_masks(text: &str) -> Result<Vec<Mask>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let field = |s: &str| -> Option<(String, String)> {
            let s = s.trim_start();
            let end = s.find(char::is_whitespace)?;
            Some((s[..end].to_owned(), s[end..].trim().to_owned()))
        };
        let Some((program, (deviation, rest))) =
            field(line).and_then(|(p, rest)| Some((p, field(&rest)?)))
        else {
            return Err(format!(
                "line {}: expected PROGRAM DEVIATION DIFFERENCE",
                i + 1
            ));
        };
        out.push(Mask {
            program,
            deviation,
            difference: rest,
        });
    }
    Ok(out)
}

/// Reads the masks file at `path` (see [`parse_masks`]).
pub fn load_masks(path: &Path) -> Result<Vec<Mask>, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse_masks(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Applies `mask` to a verdict of its program.
fn apply_mask(verdict: Verdict, mask: &Mask) -> Verdict {
    match verdict {
        Verdict::Differs(d) if d.to_string() == mask.difference => {
            Verdict::Masked(mask.deviation.clone())
        }
        Verdict::Differs(d) => Verdict::StaleMask {
            deviation: mask.deviation.clone(),
            got: d.to_string(),
        },
        Verdict::Identical => Verdict::StaleMask {
            deviation: mask.deviation.clone(),
            got: "identical trace".into(),
        },
        other => other,
    }
}

/// Options for [`run_corpus`].
#[derive(Clone, Debug)]
pub struct Options {
    /// Only cases whose relative path contains this string.
    pub filter: Option<String>,
    /// Wall-clock limit per case.
    pub limit: Duration,
    /// Worker threads.
    pub jobs: usize,
    /// Documented deviations to mask (see [`Mask`]).
    pub masks: Vec<Mask>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            filter: None,
            limit: Duration::from_secs(20),
            jobs: std::thread::available_parallelism().map_or(4, |n| n.get()),
            masks: Vec::new(),
        }
    }
}

/// Runs every case under `root` and collects the results (sorted by name).
pub fn run_corpus(root: &Path, opts: &Options) -> Report {
    let paths: Vec<(PathBuf, String)> = discover(root)
        .into_iter()
        .map(|p| {
            let rel = p
                .strip_prefix(root)
                .unwrap_or(&p)
                .to_string_lossy()
                .into_owned();
            (p, rel)
        })
        .filter(|(_, rel)| {
            opts.filter
                .as_ref()
                .is_none_or(|f| rel.contains(f.as_str()))
        })
        .collect();
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::with_capacity(paths.len()));
    std::thread::scope(|s| {
        for _ in 0..opts.jobs.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((path, rel)) = paths.get(i) else {
                    break;
                };
                let mut r = check(path, rel.clone(), opts.limit);
                if let Some(m) = opts.masks.iter().find(|m| m.program == *rel) {
                    r.verdict = apply_mask(r.verdict, m);
                }
                results.lock().unwrap_or_else(|e| e.into_inner()).push(r);
            });
        }
    });
    let mut cases = results.into_inner().unwrap_or_else(|e| e.into_inner());
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    Report { cases }
}

/// Counts for one statement kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Programs run that use it.
    pub run: usize,
    /// Of those, identical traces.
    pub identical: usize,
    /// Of those, failures (differing, panicked, hung).
    pub failed: usize,
    /// Of those, differing only by a masked deviation.
    pub masked: usize,
    /// Programs not run because they use an unsupported op.
    pub unsupported: usize,
}

/// The results of a corpus run.
#[derive(Clone, Debug)]
pub struct Report {
    /// Every case, sorted by name.
    pub cases: Vec<CaseResult>,
}

impl Report {
    /// Cases that failed (differ, panicked, hung, invalid).
    pub fn failures(&self) -> impl Iterator<Item = &CaseResult> {
        self.cases.iter().filter(|c| c.verdict.is_failure())
    }

    /// Whether every case that was run matched.
    pub fn all_identical(&self) -> bool {
        self.failures().next().is_none()
    }

    /// Per-op counts: a program counts once under every op it uses.
    pub fn by_op(&self) -> BTreeMap<&'static str, Tally> {
        let mut m: BTreeMap<&'static str, Tally> = BTreeMap::new();
        for c in &self.cases {
            for op in &c.ops {
                let t = m.entry(op).or_default();
                match &c.verdict {
                    Verdict::Unsupported(_) => t.unsupported += 1,
                    Verdict::Masked(_) => {
                        t.run += 1;
                        t.masked += 1;
                    }
                    Verdict::Identical => {
                        t.run += 1;
                        t.identical += 1;
                    }
                    _ => {
                        t.run += 1;
                        t.failed += 1;
                    }
                }
            }
        }
        m
    }

    /// Differing programs by the kind of the first expected event that differs (the
    /// event text's first word: `await`, `end`, `timeout`, ...; `<end>` past the end).
    pub fn by_first_event(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for c in &self.cases {
            if let Verdict::Differs(d) = &c.verdict {
                let kind = d
                    .expected
                    .as_deref()
                    .and_then(Event::parse)
                    .map_or("<end>".to_owned(), |e| {
                        e.text.split(' ').next().unwrap_or("").to_owned()
                    });
                *m.entry(kind).or_insert(0) += 1;
            }
        }
        m
    }

    /// The one-line summary: run, identical, differing, ...
    pub fn headline(&self) -> String {
        let count = |f: fn(&Verdict) -> bool| self.cases.iter().filter(|c| f(&c.verdict)).count();
        let unsupported = count(|v| matches!(v, Verdict::Unsupported(_)));
        let invalid = count(|v| matches!(v, Verdict::Invalid(_)));
        format!(
            "difftest: {} programs: {} run, {} identical, {} differing, {} masked (documented \
             deviations), {} stale masks, {} panicked, {} hung, {} unsupported (ops: {}; or \
             met at run time), {} invalid",
            self.cases.len(),
            self.cases.len() - unsupported - invalid,
            count(|v| matches!(v, Verdict::Identical)),
            count(|v| matches!(v, Verdict::Differs(_))),
            count(|v| matches!(v, Verdict::Masked(_))),
            count(|v| matches!(v, Verdict::StaleMask { .. })),
            count(|v| matches!(v, Verdict::Panicked(_))),
            count(|v| matches!(v, Verdict::Hung)),
            unsupported,
            UNSUPPORTED.join(", "),
            invalid,
        )
    }
}

impl fmt::Display for Report {
    /// The failures (one line each, with the first difference), the per-op table, the
    /// first-differing-event table and the headline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.failures() {
            let what = match &c.verdict {
                Verdict::Differs(d) => d.to_string(),
                Verdict::Panicked(m) => format!("PANICKED: {m}"),
                Verdict::Hung => "HUNG (wall-clock limit)".to_owned(),
                Verdict::Invalid(m) => format!("INVALID: {m}"),
                Verdict::StaleMask { deviation, got } => {
                    format!("STALE MASK ({deviation} in deviations.txt): now {got}")
                }
                Verdict::Identical | Verdict::Unsupported(_) | Verdict::Masked(_) => {
                    unreachable!("not a failure")
                }
            };
            writeln!(f, "FAIL {}: {what}", c.name)?;
        }
        let mut table = String::new();
        let _ = writeln!(
            table,
            "\n{:<16} {:>6} {:>9} {:>7} {:>7} {:>11}",
            "op (programs)", "run", "identical", "failed", "masked", "unsupported"
        );
        for (op, t) in self.by_op() {
            let _ = writeln!(
                table,
                "{op:<16} {:>6} {:>9} {:>7} {:>7} {:>11}",
                t.run, t.identical, t.failed, t.masked, t.unsupported
            );
        }
        f.write_str(&table)?;
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        for c in &self.cases {
            match &c.verdict {
                Verdict::Unsupported(why) => {
                    for w in why {
                        *reasons.entry(w.clone()).or_insert(0) += 1;
                    }
                }
                Verdict::Masked(d) => *reasons.entry(format!("masked: {d}")).or_insert(0) += 1,
                _ => {}
            }
        }
        if !reasons.is_empty() {
            writeln!(
                f,
                "\nnot compared: unsupported (not run, or stopped when met) and masked, by reason:"
            )?;
            for (w, n) in reasons {
                writeln!(f, "  {n:>5}  {w}")?;
            }
        }
        let firsts = self.by_first_event();
        if !firsts.is_empty() {
            writeln!(f, "\nfirst differing event (expected side), by kind:")?;
            for (k, n) in firsts {
                writeln!(f, "  {k:<16} {n}")?;
            }
        }
        writeln!(f, "\n{}", self.headline())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diff(index: usize, e: &str, a: &str) -> Difference {
        Difference {
            index,
            expected: Some(e.into()),
            actual: Some(a.into()),
        }
    }

    #[test]
    fn masks_parse_and_apply_exactly() {
        let masks = parse_masks(
            "# comment\n\n  p/one.json  some-deviation  event #2: expected x / got y\n",
        )
        .unwrap();
        assert_eq!(
            masks,
            vec![Mask {
                program: "p/one.json".into(),
                deviation: "some-deviation".into(),
                difference: "event #2: expected x / got y".into(),
            }]
        );
        assert!(parse_masks("only-two fields").is_err());
        let m = &masks[0];
        assert_eq!(
            apply_mask(Verdict::Differs(diff(2, "x", "y")), m),
            Verdict::Masked("some-deviation".into())
        );
        assert!(matches!(
            apply_mask(Verdict::Differs(diff(3, "x", "y")), m),
            Verdict::StaleMask { .. }
        ));
        assert!(matches!(
            apply_mask(Verdict::Identical, m),
            Verdict::StaleMask { .. }
        ));
        assert!(apply_mask(Verdict::Identical, m).is_failure());
        assert!(!Verdict::Masked("d".into()).is_failure());
        assert!(!Verdict::Unsupported(vec!["gather".into()]).is_failure());
    }

    #[test]
    fn report_counts_by_op_and_first_event() {
        let case = |name: &str, ops: Vec<&'static str>, verdict| CaseResult {
            name: name.into(),
            ops,
            verdict,
        };
        let report = Report {
            cases: vec![
                case("a", vec!["await", "sleep"], Verdict::Identical),
                case(
                    "b",
                    vec!["await"],
                    Verdict::Differs(diff(1, r#"[0,"main","await t -> value:1"]"#, "z")),
                ),
                case(
                    "c",
                    vec!["gather"],
                    Verdict::Unsupported(vec!["gather".into()]),
                ),
            ],
        };
        let by_op = report.by_op();
        assert_eq!(
            by_op["await"],
            Tally {
                run: 2,
                identical: 1,
                failed: 1,
                masked: 0,
                unsupported: 0
            }
        );
        assert_eq!(by_op["gather"].unsupported, 1);
        assert_eq!(report.by_first_event()["await"], 1);
        assert!(!report.all_identical());
        assert!(report.to_string().contains("FAIL b: event #1"));
    }
}
