//! Differential conformance testing of the `asyncio` crate against CPython 3.13.
//!
//! Programs in the `asyncio-difftest/1` language (see `ref/FORMAT.md`) describe asyncio
//! task programs: spawns, sleeps, cancels, timeouts, shields, `wait_for`, `try`/`except
//! CancelledError`, ... `ref/ref.py` runs each on CPython's own asyncio with a virtual clock
//! and writes its event trace; [`interp`] runs the same program on the crate's public API
//! on a virtual-time [`asyncio::Runner`] and prints the trace in exactly the same format.
//! The traces must agree line by line: the same events, at the same virtual times, in the
//! same order.
//!
//! - [`program`]: the syntax tree and a parser that accepts exactly what `ref.py` accepts;
//! - [`trace`]: events, their JSON lines, and the first difference between two traces;
//! - [`interp`]: the interpreter over the `asyncio` crate;
//! - [`corpus`]: running a directory of programs and summarising the comparison.
//!
//! The corpus lives in `programs/` and is rebuilt by `regen.sh` (which needs CPython
//! 3.13); `tests/difftest.rs` runs all of it, and the `difftest` binary runs a single
//! program or directory.

#![deny(missing_docs)]

pub mod corpus;
pub mod interp;
pub mod program;
pub mod trace;
