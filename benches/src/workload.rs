//! The workloads: names, sizes, and the checksum each run must reproduce.

use std::time::Duration;

/// How long each task of the `sleepers` workload sleeps.
pub const SLEEP: Duration = Duration::from_secs(1);
/// The deadline of `timeout_ok` and the sleep of `cancel`: far beyond any run.
pub const LONG: Duration = Duration::from_secs(10);
/// How many times each task of the `yield` workload yields.
pub const YIELDS_PER_TASK: u64 = 100;
/// How many tasks contend the lock in the `lock` workload.
pub const LOCK_TASKS: u64 = 4;

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
    /// [`LOCK_TASKS`] tasks take a lock N times in all, each holding it
    /// across a yield, so that every release hands it to a waiting task.
    Lock,
    /// N tasks each yielding [`YIELDS_PER_TASK`] times.
    Yield,
}

impl Workload {
    /// Every workload, in table order.
    pub const ALL: [Workload; 8] = [
        Workload::Spawn,
        Workload::Sleepers,
        Workload::TimeoutOk,
        Workload::TimeoutBare,
        Workload::Cancel,
        Workload::PingPong,
        Workload::Lock,
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
            Workload::Lock => "lock",
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
            "lock" => &[Workload::Lock],
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
            Workload::Lock => "ns/hand-off",
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

/// How many times task `t` of the `lock` workload takes the lock, out of `n`.
pub fn lock_share(n: usize, t: u64) -> u64 {
    let n = n as u64;
    n / LOCK_TASKS + u64::from(t < n % LOCK_TASKS)
}

/// The echo task's reply to message `i` in `pingpong`.
pub fn echo_value(i: u64) -> u64 {
    2 * i + 7
}
