//! The results table: medians per runtime, then asyncio against its fastest
//! Rust peer and against CPython.

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
        }
    }

    /// The unit of the row's figures.
    pub fn unit(&self) -> &'static str {
        match self.metric {
            Metric::Time => self.workload.unit(),
            Metric::Memory => "B/task",
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

    /// asyncio's figure over the best (lowest) of tokio and smol; below 1 is better.
    pub fn vs_peers(&self) -> Option<f64> {
        let ours = self.value(Column::Rust(Runtime::Asyncio))?;
        let best = [Runtime::TokioLocal, Runtime::TokioMulti, Runtime::Smol]
            .into_iter()
            .filter_map(|rt| self.value(Column::Rust(rt)))
            .min_by(f64::total_cmp)?;
        Some(ours / best)
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

impl Report {
    /// The table as Markdown, with numbered notes for missing figures.
    pub fn render(&self) -> String {
        let mut notes: Vec<String> = Vec::new();
        let mut header = vec!["workload".to_string(), "unit".to_string()];
        header.extend(Column::ALL.iter().map(|c| c.key().to_string()));
        header.extend(["asyncio / best peer".into(), "cpython / asyncio".into()]);
        let mut lines = vec![header];
        for row in &self.rows {
            let mut line = vec![row.label(), row.unit().to_string()];
            for col in Column::ALL {
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
            line.push(row.vs_peers().map_or("-".into(), |r| format!("{r:.2}x")));
            line.push(row.vs_cpython().map_or("-".into(), |r| format!("{r:.1}x")));
            lines.push(line);
        }
        let mut out = markdown(&lines);
        out.push_str("\nMedians; lower is better. asyncio / best peer: below 1.00x means asyncio beats tokio and smol.\n");
        for (i, note) in notes.iter().enumerate() {
            out.push_str(&format!("[{}] {note}\n", i + 1));
        }
        out
    }
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
        .map(|i| lines.iter().map(|l| l[i].len()).max().unwrap_or(0))
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
