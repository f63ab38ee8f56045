//! Errors of the time module.

use std::fmt;

/// A `wait_for` or `timeout` expired and the work inside it ended cancelled
/// (asyncio's `TimeoutError`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimeoutError;

impl fmt::Display for TimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("timed out")
    }
}

impl std::error::Error for TimeoutError {}

/// An operation was attempted in a state that does not allow it (asyncio's
/// `RuntimeError`/`InvalidStateError` for these cases), e.g. rescheduling a
/// timeout that has already expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidStateError {
    msg: String,
}

impl InvalidStateError {
    pub(crate) fn new(msg: impl Into<String>) -> Self {
        InvalidStateError { msg: msg.into() }
    }
}

impl fmt::Display for InvalidStateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for InvalidStateError {}
