//! The results tables: medians per runtime, then asyncio against its fastest
//! Rust peer and against CPython. The echo workloads get a table of their own,
//! since their rows mix higher-is-better (req/s) with lower-is-better figures.

use crate::rt::Runtime;
use crate::workload::Workload;

/// A column of the table: a Rust runtime, or CPython.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Column {
    /// A Rust runtime run in this binary.
    Rust(Runtime),
    /// CPython's asyncio, via `asyncio_bench.py`.
    CPython,
}

impl Column {
    /// Every column, in table order.
    pub const ALL: [Column; 5] = [
        Column::Rust(Runtime::Asyncio),
        Column::Rust(Runtime::TokioLocal),
        Column::Rust(Runtime::TokioMulti),
        Column::Rust(Runtime::Smol),
        Column::CPython,
    ];

    /// Header text.
    pub fn key(self) -> &'static str {
        match self {
            Column::Rust(rt) => rt.key(),
            Column::CPython => "cpython",
        }
    }
}

/// What a row measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Time per operation, in the workload's unit.
    Time,
    /// Peak memory growth per task.
    Memory,
    /// Requests (round trips) per second: higher is better.
    Throughput,
    /// Median round-trip latency.
    P50,
    /// 99th-percentile round-trip latency.
    P99,
}

impl Metric {
    /// Whether a larger figure is the better one.
    pub fn higher_is_better(self) -> bool {
        self == Metric::Throughput
    }
}

/// One entry of the table.
#[derive(Clone, Debug)]
pub enum Cell {
    /// A median.
    Value(f64),
    /// No figure, and why.
    Missing(String),
}

/// One line of the table.
pub struct Row {
    /// The workload measured.
    pub workload: Workload,
    /// What about it.
    pub metric: Metric,
    /// The figures, by column.
    pub cells: Vec<(Column, Cell)>,
}

impl Row {
    /// An empty row.
    pub fn new(workload: Workload, metric: Metric) -> Row {
        Row {
            workload,
            metric,
            cells: Vec::new(),
        }
    }

    /// The row's name in the table and the chart.
    pub fn label(&self) -> String {
        match (self.workload, self.metric) {
            (Workload::TimeoutBare, _) => "timeout_ok: bare yield".to_string(),
            (Workload::Sleepers, Metric::Time) => "sleepers overhead".to_string(),
            (w, Metric::Memory) => format!("{} memory", w.name()),
            (w, Metric::Time) => w.name().to_string(),
            (w, Metric::Throughput) => format!("{} req/s", w.name()),
            (w, Metric::P50) => format!("{} p50", w.name()),
            (w, Metric::P99) => format!("{} p99", w.name()),
        }
    }

    /// The unit of the row's figures.
    pub fn unit(&self) -> &'static str {
        match self.metric {
            Metric::Time => self.workload.unit(),
            Metric::Memory => "B/task",
            Metric::Throughput => "req/s (higher is better)",
            Metric::P50 | Metric::P99 => "µs (lower is better)",
        }
    }

    /// The cell of column `col`.
    pub fn cell(&self, col: Column) -> Option<&Cell> {
        self.cells
            .iter()
            .find(|(c, _)| *c == col)
            .map(|(_, cell)| cell)
    }

    /// The median of column `col`, where there is one.
    pub fn value(&self, col: Column) -> Option<f64> {
        match self.cell(col) {
            Some(Cell::Value(v)) => Some(*v),
            _ => None,
        }
    }

    /// asyncio's figure over the best of tokio and smol (the lowest, or the
    /// highest for a [`Metric::higher_is_better`] row).
    pub fn vs_peers(&self) -> Option<f64> {
        let ours = self.value(Column::Rust(Runtime::Asyncio))?;
        let peers = [Runtime::TokioLocal, Runtime::TokioMulti, Runtime::Smol]
            .into_iter()
            .filter_map(|rt| self.value(Column::Rust(rt)));
        let best = if self.metric.higher_is_better() {
            peers.max_by(f64::total_cmp)?
        } else {
            peers.min_by(f64::total_cmp)?
        };
        Some(ours / best)
    }

    /// [`Row::vs_peers`] turned so that below 1 is better on every row: a
    /// throughput ratio is inverted (the best peer's req/s over asyncio's).
    pub fn cost_vs_peers(&self) -> Option<f64> {
        let r = self.vs_peers()?;
        Some(if self.metric.higher_is_better() {
            1.0 / r
        } else {
            r
        })
    }

    /// asyncio's figure over CPython's.
    pub fn asyncio_over_cpython(&self) -> Option<f64> {
        Some(self.value(Column::Rust(Runtime::Asyncio))? / self.value(Column::CPython)?)
    }

    /// CPython's figure over asyncio's: how many times cheaper asyncio-rs is.
    pub fn vs_cpython(&self) -> Option<f64> {
        Some(self.value(Column::CPython)? / self.value(Column::Rust(Runtime::Asyncio))?)
    }
}

/// Every row of a benchmark run.
#[derive(Default)]
pub struct Report {
    /// Rows in table order.
    pub rows: Vec<Row>,
}

/// The runtimes of the echo table: those that run on one thread.
const ECHO_COLUMNS: [Column; 4] = [
    Column::Rust(Runtime::Asyncio),
    Column::Rust(Runtime::TokioLocal),
    Column::Rust(Runtime::Smol),
    Column::CPython,
];

impl Report {
    /// The tables as Markdown, with numbered notes for missing figures.
    pub fn render(&self) -> String {
        let (echo, other): (Vec<&Row>, Vec<&Row>) = self
            .rows
            .iter()
            .partition(|r| r.workload.echo_conns().is_some());
        let mut notes: Vec<String> = Vec::new();
        let mut out = String::new();
        if !other.is_empty() {
            let heads = ["asyncio / best peer", "cpython / asyncio"];
            out += &table(&other, &Column::ALL, heads, &mut notes, |row| {
                [
                    row.vs_peers().map_or("-".into(), |r| format!("{r:.2}x")),
                    row.vs_cpython().map_or("-".into(), |r| format!("{r:.1}x")),
                ]
            });
            out += "\nMedians; lower is better. asyncio / best peer: below 1.00x means asyncio beats tokio and smol.\n";
        }
        if !echo.is_empty() {
            if !out.is_empty() {
                out += "\n";
            }
            let heads = ["asyncio / best peer", "asyncio / cpython"];
            out += &table(&echo, &ECHO_COLUMNS, heads, &mut notes, |row| {
                [
                    row.vs_peers().map_or("-".into(), |r| format!("{r:.2}x")),
                    row.asyncio_over_cpython()
                        .map_or("-".into(), |r| format!("{r:.2}x")),
                ]
            });
            out += "\nEcho over loopback, clients and server on one thread (so no tokio-mt); \
                    medians of runs. Both ratios are asyncio's figure over the other's: on req/s \
                    rows above 1.00x means asyncio is faster, on latency rows below 1.00x means \
                    asyncio answers sooner.\n";
        }
        for (i, note) in notes.iter().enumerate() {
            out.push_str(&format!("[{}] {note}\n", i + 1));
        }
        out
    }
}

/// One Markdown table of `rows` over `columns`, then the two ratio columns
/// headed `ratio_heads` whose cells `ratios` gives; missing figures get
/// numbered `notes`.
fn table(
    rows: &[&Row],
    columns: &[Column],
    ratio_heads: [&str; 2],
    notes: &mut Vec<String>,
    ratios: impl Fn(&Row) -> [String; 2],
) -> String {
    let mut header = vec!["workload".to_string(), "unit".to_string()];
    header.extend(columns.iter().map(|c| c.key().to_string()));
    header.extend(ratio_heads.map(String::from));
    let mut lines = vec![header];
    for row in rows {
        let mut line = vec![row.label(), row.unit().to_string()];
        for &col in columns {
            line.push(match row.cell(col) {
                Some(Cell::Value(v)) => format_value(*v),
                Some(Cell::Missing(why)) => {
                    let note = format!("{}: {why}", col.key());
                    let i = notes.iter().position(|n| *n == note).unwrap_or_else(|| {
                        notes.push(note);
                        notes.len() - 1
                    });
                    format!("n/a [{}]", i + 1)
                }
                None => "-".to_string(),
            });
        }
        line.extend(ratios(row));
        lines.push(line);
    }
    markdown(&lines)
}

fn format_value(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn markdown(lines: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..lines[0].len())
        .map(|i| {
            lines
                .iter()
                .map(|l| l[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let render = |line: &Vec<String>| {
        let cells: Vec<String> = line
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| {
                if i < 2 {
                    format!("{c:<w$}")
                } else {
                    format!("{c:>w$}")
                }
            })
            .collect();
        format!("| {} |\n", cells.join(" | "))
    };
    let mut out = render(&lines[0]);
    let rule: Vec<String> = widths
        .iter()
        .enumerate()
        .map(|(i, w)| {
            if i < 2 {
                "-".repeat(w + 2)
            } else {
                format!("{}:", "-".repeat(w + 1))
            }
        })
        .collect();
    out.push_str(&format!("|{}|\n", rule.join("|")));
    for line in &lines[1..] {
        out.push_str(&render(line));
    }
    out
}
