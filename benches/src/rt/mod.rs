//! The Rust runtimes under comparison, one module each.

pub mod asyncio_rt;
pub mod smol_rt;
pub mod tokio_rt;

use crate::harness::{RunError, RunResult};
use crate::workload::Workload;

/// A Rust runtime that runs the workloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Runtime {
    /// This project's `asyncio` crate.
    Asyncio,
    /// tokio's current-thread runtime with a `LocalSet`.
    TokioLocal,
    /// tokio's multi-thread runtime.
    TokioMulti,
    /// smol: `LocalExecutor` on `async_io::block_on`.
    Smol,
}

impl Runtime {
    /// Every runtime, in the order runs alternate and columns appear.
    pub const ALL: [Runtime; 4] = [
        Runtime::Asyncio,
        Runtime::TokioLocal,
        Runtime::TokioMulti,
        Runtime::Smol,
    ];

    /// Short name for the table header and the child-process command line.
    pub fn key(self) -> &'static str {
        match self {
            Runtime::Asyncio => "asyncio",
            Runtime::TokioLocal => "tokio-lt",
            Runtime::TokioMulti => "tokio-mt",
            Runtime::Smol => "smol",
        }
    }

    /// The inverse of [`Runtime::key`].
    pub fn parse(key: &str) -> Option<Runtime> {
        Runtime::ALL.into_iter().find(|rt| rt.key() == key)
    }

    /// Runs workload `w` of size `n` once, in this process, on a fresh runtime.
    pub fn run(self, w: Workload, n: usize) -> Result<RunResult, RunError> {
        match self {
            Runtime::Asyncio => asyncio_rt::run(w, n),
            Runtime::TokioLocal => tokio_rt::run(tokio_rt::Flavor::Local, w, n),
            Runtime::TokioMulti => tokio_rt::run(tokio_rt::Flavor::Multi, w, n),
            Runtime::Smol => smol_rt::run(w, n),
        }
    }
}
