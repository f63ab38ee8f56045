//! The workloads: names, sizes, and the checksum each run must reproduce.

use std::time::Duration;

/// How long each task of the `sleepers` workload sleeps.
pub const SLEEP: Duration = Duration::from_secs(1);
/// The deadline of `timeout_ok` and the sleep of `cancel`: far beyond any run.
pub const LONG: Duration = Duration::from_secs(10);
/// How many times each task of the `yield` workload yields.
pub const YIELDS_PER_TASK: u64 = 100;

/// One measured thing; `TimeoutBare` is the control for `TimeoutOk`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Workload {
    /// Spawn N trivial tasks, then await every handle.
    Spawn,
    /// N tasks each sleeping [`SLEEP`]; run in a child process to measure memory.
    Sleepers,
    /// N sequential `wait_for(one yield, LONG)`.
    TimeoutOk,
    /// The `TimeoutOk` loop without the timeout: N sequential single yields.
    TimeoutBare,
    /// N tasks asleep for [`LONG`], all cancelled and reaped (only that is timed).
    Cancel,
    /// Two tasks exchange N messages through capacity-1 queues.
    PingPong,
    /// N tasks each yielding [`YIELDS_PER_TASK`] times.
    Yield,
}

impl Workload {
    /// Every workload, in table order.
    pub const ALL: [Workload; 7] = [
        Workload::Spawn,
        Workload::Sleepers,
        Workload::TimeoutOk,
        Workload::TimeoutBare,
        Workload::Cancel,
        Workload::PingPong,
        Workload::Yield,
    ];

    /// The name used on the command line, in the Python script and in the table.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Spawn => "spawn",
            Workload::Sleepers => "sleepers",
            Workload::TimeoutOk => "timeout_ok",
            Workload::TimeoutBare => "timeout_bare",
            Workload::Cancel => "cancel",
            Workload::PingPong => "pingpong",
            Workload::Yield => "yield",
        }
    }

    /// Parses a command-line name; `timeout_ok` brings its bare control along.
    pub fn parse(name: &str) -> Option<&'static [Workload]> {
        Some(match name {
            "spawn" => &[Workload::Spawn],
            "sleepers" => &[Workload::Sleepers],
            "timeout_ok" => &[Workload::TimeoutOk, Workload::TimeoutBare],
            "timeout_bare" => &[Workload::TimeoutBare],
            "cancel" => &[Workload::Cancel],
            "pingpong" => &[Workload::PingPong],
            "yield" => &[Workload::Yield],
            _ => return None,
        })
    }

    /// N at full size (tasks, iterations or messages), divided by `divisor`.
    pub fn size(self, divisor: usize) -> usize {
        let full = match self {
            Workload::Yield => 10_000,
            _ => 1_000_000,
        };
        full / divisor
    }

    /// How many operations a run of size `n` performs (the per-op denominator).
    pub fn ops(self, n: usize) -> u64 {
        match self {
            Workload::Yield => n as u64 * YIELDS_PER_TASK,
            _ => n as u64,
        }
    }

    /// The unit of the per-op time shown in the table.
    pub fn unit(self) -> &'static str {
        match self {
            Workload::Spawn | Workload::Sleepers | Workload::Cancel => "ns/task",
            Workload::TimeoutOk => "ns/wait_for",
            Workload::TimeoutBare => "ns/iter",
            Workload::PingPong => "ns/round trip",
            Workload::Yield => "ns/yield",
        }
    }

    /// Whether each run happens in a child process (to measure its peak memory).
    pub fn in_child(self) -> bool {
        self == Workload::Sleepers
    }

    /// The time not attributable to the runtime (the sleep itself for `sleepers`).
    pub fn floor(self) -> Duration {
        match self {
            Workload::Sleepers => SLEEP,
            _ => Duration::ZERO,
        }
    }

    /// The checksum a correct run of size `n` reports.
    pub fn expected(self, n: usize) -> u64 {
        let n = n as u64;
        match self {
            Workload::Cancel => n,
            Workload::PingPong => (0..n).map(echo_value).sum(),
            _ => (0..n).map(task_value).sum(),
        }
    }
}

/// The value task (or iteration) `i` produces; summed into the checksum.
pub fn task_value(i: u64) -> u64 {
    3 * i + 1
}

/// The echo task's reply to message `i` in `pingpong`.
pub fn echo_value(i: u64) -> u64 {
    2 * i + 7
}
