//! The queue's errors: `QueueEmpty`, `QueueFull`, `QueueShutDown`, and the
//! enums the operations return.
//!
//! An error of a put hands the rejected item back; a cancellation travels
//! as the live [`CancelledError`] (propagate it, or drop it to handle it).

use std::error::Error;
use std::fmt;

use crate::cancel::error::CancelledError;

/// [`Queue::get_nowait`](crate::Queue::get_nowait) found the queue empty
/// (Python's `asyncio.QueueEmpty`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueEmpty;

impl fmt::Display for QueueEmpty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the queue is empty")
    }
}

impl Error for QueueEmpty {}

/// [`Queue::put_nowait`](crate::Queue::put_nowait) found the queue full
/// (Python's `asyncio.QueueFull`); holds the item that was not put.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct QueueFull<T>(pub T);

impl<T> QueueFull<T> {
    /// The item that was not put.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for QueueFull<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("QueueFull(..)")
    }
}

impl<T> fmt::Display for QueueFull<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the queue is full")
    }
}

impl<T> Error for QueueFull<T> {}

/// The queue was shut down (Python 3.13's `asyncio.QueueShutDown`). On a
/// put it holds the item that was not put; on a get it holds `()`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct QueueShutDown<T = ()>(pub T);

impl<T> QueueShutDown<T> {
    /// The item that was not put (`()` for a get).
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for QueueShutDown<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("QueueShutDown(..)")
    }
}

impl<T> fmt::Display for QueueShutDown<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the queue is shut down")
    }
}

impl<T> Error for QueueShutDown<T> {}

/// Why [`Queue::get_nowait`](crate::Queue::get_nowait) returned no item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GetNowaitError {
    /// The queue is empty.
    Empty(QueueEmpty),
    /// The queue is shut down, and empty (or was shut down `immediate`ly).
    ShutDown(QueueShutDown),
}

impl From<QueueEmpty> for GetNowaitError {
    fn from(e: QueueEmpty) -> Self {
        GetNowaitError::Empty(e)
    }
}

impl From<QueueShutDown> for GetNowaitError {
    fn from(e: QueueShutDown) -> Self {
        GetNowaitError::ShutDown(e)
    }
}

impl fmt::Display for GetNowaitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GetNowaitError::Empty(e) => e.fmt(f),
            GetNowaitError::ShutDown(e) => e.fmt(f),
        }
    }
}

impl Error for GetNowaitError {}

/// Why [`Queue::put_nowait`](crate::Queue::put_nowait) did not put the
/// item; each variant hands it back.
pub enum PutNowaitError<T> {
    /// The queue is full.
    Full(QueueFull<T>),
    /// The queue is shut down.
    ShutDown(QueueShutDown<T>),
}

impl<T> PutNowaitError<T> {
    /// The item that was not put.
    pub fn into_inner(self) -> T {
        match self {
            PutNowaitError::Full(e) => e.0,
            PutNowaitError::ShutDown(e) => e.0,
        }
    }
}

impl<T> From<QueueFull<T>> for PutNowaitError<T> {
    fn from(e: QueueFull<T>) -> Self {
        PutNowaitError::Full(e)
    }
}

impl<T> From<QueueShutDown<T>> for PutNowaitError<T> {
    fn from(e: QueueShutDown<T>) -> Self {
        PutNowaitError::ShutDown(e)
    }
}

impl<T> fmt::Debug for PutNowaitError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutNowaitError::Full(e) => f.debug_tuple("Full").field(e).finish(),
            PutNowaitError::ShutDown(e) => f.debug_tuple("ShutDown").field(e).finish(),
        }
    }
}

impl<T> fmt::Display for PutNowaitError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutNowaitError::Full(e) => e.fmt(f),
            PutNowaitError::ShutDown(e) => e.fmt(f),
        }
    }
}

impl<T> Error for PutNowaitError<T> {}

/// Why [`Queue::get`](crate::Queue::get) returned no item.
#[derive(Debug)]
pub enum GetError {
    /// The getting task was cancelled (a live cancellation: propagate it).
    Cancelled(CancelledError),
    /// The queue is shut down, and empty (or was shut down `immediate`ly).
    ShutDown(QueueShutDown),
}

impl GetError {
    /// Whether this is a cancellation.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, GetError::Cancelled(_))
    }

    /// Whether the queue was shut down.
    pub fn is_shut_down(&self) -> bool {
        matches!(self, GetError::ShutDown(_))
    }
}

impl From<CancelledError> for GetError {
    fn from(e: CancelledError) -> Self {
        GetError::Cancelled(e)
    }
}

impl From<QueueShutDown> for GetError {
    fn from(e: QueueShutDown) -> Self {
        GetError::ShutDown(e)
    }
}

impl fmt::Display for GetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GetError::Cancelled(e) => e.fmt(f),
            GetError::ShutDown(e) => e.fmt(f),
        }
    }
}

impl Error for GetError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            GetError::Cancelled(e) => Some(e),
            GetError::ShutDown(e) => Some(e),
        }
    }
}

/// Why [`Queue::put`](crate::Queue::put) did not put the item; each
/// variant hands it back.
pub enum PutError<T> {
    /// The putting task was cancelled (a live cancellation: propagate it).
    Cancelled(CancelledError, T),
    /// The queue is shut down.
    ShutDown(QueueShutDown<T>),
}

impl<T> PutError<T> {
    /// Whether this is a cancellation.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, PutError::Cancelled(..))
    }

    /// Whether the queue was shut down.
    pub fn is_shut_down(&self) -> bool {
        matches!(self, PutError::ShutDown(_))
    }

    /// The item that was not put, dropping the error (a cancellation is
    /// then handled; use [`PutError::into_parts`] to keep it).
    pub fn into_inner(self) -> T {
        self.into_parts().1
    }

    /// The cancellation, if any, and the item that was not put.
    pub fn into_parts(self) -> (Option<CancelledError>, T) {
        match self {
            PutError::Cancelled(e, item) => (Some(e), item),
            PutError::ShutDown(e) => (None, e.0),
        }
    }
}

impl<T> From<QueueShutDown<T>> for PutError<T> {
    fn from(e: QueueShutDown<T>) -> Self {
        PutError::ShutDown(e)
    }
}

impl<T> fmt::Debug for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutError::Cancelled(e, _) => f.debug_tuple("Cancelled").field(e).finish(),
            PutError::ShutDown(e) => f.debug_tuple("ShutDown").field(e).finish(),
        }
    }
}

impl<T> fmt::Display for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutError::Cancelled(e, _) => e.fmt(f),
            PutError::ShutDown(e) => e.fmt(f),
        }
    }
}

impl<T> Error for PutError<T> {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            PutError::Cancelled(e, _) => Some(e),
            PutError::ShutDown(_) => None,
        }
    }
}

/// [`Queue::task_done`](crate::Queue::task_done) was called more times
/// than items were put (Python's `ValueError: task_done() called too many
/// times`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskDoneTooManyTimes;

impl fmt::Display for TaskDoneTooManyTimes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("task_done() called too many times")
    }
}

impl Error for TaskDoneTooManyTimes {}
