//! Trace events in `ref.py`'s exact format, and the line-by-line comparison of two traces.

use std::fmt;

/// One trace event: `[time, label, text]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Virtual time in units (1 unit = 10 ms) when the event was logged.
    pub time: u64,
    /// The label of the body instance that logged it (`main`, `T`, `L>B`, or `*`).
    pub label: String,
    /// The event text (`start B`, `await T -> value:3`, ...).
    pub text: String,
}

impl Event {
    /// The event as `ref.py` writes it: one compact JSON array, no trailing newline.
    pub fn line(&self) -> String {
        serde_json::to_string(&(self.time, &self.label, &self.text)).expect("events serialize")
    }

    /// Parses one trace line written by [`Event::line`] or `ref.py`.
    pub fn parse(line: &str) -> Option<Event> {
        let (time, label, text): (u64, String, String) = serde_json::from_str(line).ok()?;
        Some(Event { time, label, text })
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.line())
    }
}

/// Renders a program value as JSON (`3`, `-1`, `null`), as `ref.py`'s `jv` does.
pub fn value(v: Option<i64>) -> String {
    match v {
        Some(x) => x.to_string(),
        None => "null".to_owned(),
    }
}

/// Renders a boolean as `true` / `false`.
pub fn boolean(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

/// Where two traces first differ.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    /// Index of the first differing event (0-based).
    pub index: usize,
    /// The expected line there, `None` past the end of the expected trace.
    pub expected: Option<String>,
    /// The actual line there, `None` past the end of the actual trace.
    pub actual: Option<String>,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |l: &Option<String>| l.clone().unwrap_or_else(|| "<end of trace>".into());
        write!(
            f,
            "event #{}: expected {} / got {}",
            self.index,
            show(&self.expected),
            show(&self.actual)
        )
    }
}

/// The first line where `expected` and `actual` differ, or `None` if they are identical.
pub fn first_difference<A: AsRef<str>, B: AsRef<str>>(
    expected: &[A],
    actual: &[B],
) -> Option<Difference> {
    let n = expected.len().max(actual.len());
    (0..n).find_map(|i| {
        let e = expected.get(i).map(|s| s.as_ref());
        let a = actual.get(i).map(|s| s.as_ref());
        (e != a).then(|| Difference {
            index: i,
            expected: e.map(str::to_owned),
            actual: a.map(str::to_owned),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_match_python_json_dumps() {
        let ev = Event {
            time: 3,
            label: "main>b1".into(),
            text: "await t -> value:-1".into(),
        };
        assert_eq!(ev.line(), r#"[3,"main>b1","await t -> value:-1"]"#);
        assert_eq!(Event::parse(&ev.line()), Some(ev));
        assert_eq!(Event::parse("[1,2]"), None);
        assert_eq!(value(None), "null");
        assert_eq!(value(Some(-42)), "-42");
        assert_eq!(boolean(true), "true");
    }

    #[test]
    fn first_difference_finds_changed_and_missing_lines() {
        assert_eq!(first_difference(&["a", "b"], &["a", "b"]), None);
        let d = first_difference(&["a", "b"], &["a", "c"]).unwrap();
        assert_eq!(
            (d.index, d.expected.as_deref(), d.actual.as_deref()),
            (1, Some("b"), Some("c"))
        );
        let d = first_difference(&["a"], &["a", "x"]).unwrap();
        assert_eq!(
            (d.index, d.expected.as_deref(), d.actual.as_deref()),
            (1, None, Some("x"))
        );
        assert_eq!(d.to_string(), "event #1: expected <end of trace> / got x");
    }
}
