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
/// Bytes of each echo request (and of its reply).
pub const ECHO_MSG: usize = 64;
/// The echo server's read buffer.
pub const ECHO_BUF: usize = 1024;
/// Round trips of an echo run at full size, over all its connections.
pub const ECHO_ROUND_TRIPS: usize = 100_000;

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
    /// TCP echo over loopback on one thread, one client connection: N round
    /// trips of [`ECHO_MSG`] bytes in all, each timed.
    Echo1,
    /// [`Workload::Echo1`] with 64 concurrent connections.
    Echo64,
    /// [`Workload::Echo1`] with 1,000 concurrent connections.
    Echo1000,
}

impl Workload {
    /// Every workload, in table order.
    pub const ALL: [Workload; 11] = [
        Workload::Spawn,
        Workload::Sleepers,
        Workload::TimeoutOk,
        Workload::TimeoutBare,
        Workload::Cancel,
        Workload::PingPong,
        Workload::Lock,
        Workload::Yield,
        Workload::Echo1,
        Workload::Echo64,
        Workload::Echo1000,
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
            Workload::Echo1 => "echo_1",
            Workload::Echo64 => "echo_64",
            Workload::Echo1000 => "echo_1000",
        }
    }

    /// Parses a command-line name; `timeout_ok` brings its bare control along,
    /// `echo` means every connection count.
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
            "echo" => &[Workload::Echo1, Workload::Echo64, Workload::Echo1000],
            "echo_1" => &[Workload::Echo1],
            "echo_64" => &[Workload::Echo64],
            "echo_1000" => &[Workload::Echo1000],
            _ => return None,
        })
    }

    /// N at full size (tasks, iterations or messages), divided by `divisor`.
    pub fn size(self, divisor: usize) -> usize {
        let full = match self {
            Workload::Yield => 10_000,
            Workload::Echo1 | Workload::Echo64 | Workload::Echo1000 => ECHO_ROUND_TRIPS,
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
            Workload::PingPong | Workload::Echo1 | Workload::Echo64 | Workload::Echo1000 => {
                "ns/round trip"
            }
            Workload::Lock => "ns/hand-off",
            Workload::Yield => "ns/yield",
        }
    }

    /// Whether each run happens in a child process (to measure its peak memory).
    pub fn in_child(self) -> bool {
        self == Workload::Sleepers
    }

    /// The number of client connections of an echo workload.
    pub fn echo_conns(self) -> Option<usize> {
        match self {
            Workload::Echo1 => Some(1),
            Workload::Echo64 => Some(64),
            Workload::Echo1000 => Some(1000),
            _ => None,
        }
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
            Workload::Echo1 | Workload::Echo64 | Workload::Echo1000 => {
                (0..n).map(|i| echo_checksum(&echo_message(i))).sum()
            }
            _ => (0..n).map(task_value).sum(),
        }
    }
}

/// Echo request `i` (client `c` of `conns` sends `c`, `c + conns`, `c + 2 * conns`…):
/// `i` little-endian, then the bytes `i`, `i + 1`, … modulo 256.
pub fn echo_message(i: u64) -> [u8; ECHO_MSG] {
    let mut msg = [0u8; ECHO_MSG];
    msg[..8].copy_from_slice(&i.to_le_bytes());
    for (k, b) in msg[8..].iter_mut().enumerate() {
        *b = (i as u8).wrapping_add(k as u8);
    }
    msg
}

/// Checks that `reply` is `sent` come back; returns what it adds to the checksum.
pub fn echo_verify(reply: &[u8], sent: &[u8]) -> std::io::Result<u64> {
    if reply != sent {
        return Err(std::io::Error::other("the echo differs from the request"));
    }
    Ok(echo_checksum(reply))
}

/// What an echoed message adds to the checksum: its index plus its byte sum.
pub fn echo_checksum(msg: &[u8]) -> u64 {
    let mut index = [0u8; 8];
    index.copy_from_slice(&msg[..8]);
    u64::from_le_bytes(index) + msg.iter().map(|&b| u64::from(b)).sum::<u64>()
}

/// The value task (or iteration) `i` produces; summed into the checksum.
pub fn task_value(i: u64) -> u64 {
    3 * i + 1
}

/// How many times task `t` of the `lock` workload takes the lock, out of `n`.
pub fn lock_share(n: usize, t: u64) -> u64 {
    share(n, LOCK_TASKS, t)
}

/// Part `t` of `n` split into `parts` near-equal parts: how many of `0..n`
/// are congruent to `t` modulo `parts`.
pub fn share(n: usize, parts: u64, t: u64) -> u64 {
    let n = n as u64;
    n / parts + u64::from(t < n % parts)
}

/// The echo task's reply to message `i` in `pingpong`.
pub fn echo_value(i: u64) -> u64 {
    2 * i + 7
}
