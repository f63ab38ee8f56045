//! A checkpoint around a poll function: the await point every I/O operation
//! and every wait for another thread is built on.
//!
//! [`wait_fn`] and [`wait_io`] make a future of a poll function; the
//! checkpoint lives in the future. The `futures-io` traits have no future
//! of their own (`poll_read` is called again and again on the stream), so
//! a stream keeps a [`PollCheckpoint`] per direction instead, and each of
//! its `poll_*` methods goes through it.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::cancel::checkpoint::Checkpoint;
use crate::cancel::error::CancelledError;
use crate::runtime::{context, BusyGuard};

/// A checkpoint's registration and, for I/O, the loop's busy count while it
/// is suspended (see `BusyGuard`: closing the loop waits for I/O in
/// flight).
#[derive(Default)]
pub(crate) struct PollCheckpoint {
    cp: Checkpoint,
    busy: Option<BusyGuard>,
}

impl PollCheckpoint {
    pub(crate) const fn new() -> PollCheckpoint {
        PollCheckpoint {
            cp: Checkpoint::new(),
            busy: None,
        }
    }

    /// One poll of a checkpoint around `f` (see [`Checkpoint`]'s protocol:
    /// a delivered cancellation wins over a ready result, so `f` is not
    /// even called once a cancellation has arrived). `counts`: whether a
    /// suspension counts as the loop being busy.
    #[inline]
    fn poll_with<T>(
        &mut self,
        cx: &mut Context<'_>,
        counts: bool,
        f: impl FnOnce(&mut Context<'_>) -> Poll<T>,
    ) -> Poll<Result<T, CancelledError>> {
        match self.cp.poll_fn(cx, f) {
            Poll::Ready(r) => {
                self.busy = None;
                Poll::Ready(r)
            }
            Poll::Pending => {
                if counts && self.busy.is_none() {
                    self.busy = context::with_loop(|lp| lp.busy_guard());
                }
                Poll::Pending
            }
        }
    }

    /// One poll of an I/O checkpoint around `f`: a cancellation comes out
    /// as an `io::Error` wrapping the [`CancelledError`] (see
    /// [`crate::io`]).
    ///
    /// A caller that stops polling while it is suspended (its future was
    /// dropped) leaves the checkpoint registered until the next poll or
    /// until this is dropped; a cancellation delivered meanwhile is
    /// returned by the next poll.
    #[inline]
    pub(crate) fn poll_io<T>(
        &mut self,
        cx: &mut Context<'_>,
        f: impl FnOnce(&mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        self.poll_with(cx, true, f).map(|r| match r {
            Ok(r) => r,
            Err(cancelled) => Err(cancelled.into()),
        })
    }
}

/// A checkpoint that completes when `f` returns `Ready`.
pub(crate) struct WaitFn<F> {
    f: F,
    cp: PollCheckpoint,
}

/// Makes a checkpoint of the poll function `f`.
pub(crate) fn wait_fn<T, F>(f: F) -> WaitFn<F>
where
    F: FnMut(&mut Context<'_>) -> Poll<T> + Unpin,
{
    WaitFn {
        f,
        cp: PollCheckpoint::new(),
    }
}

impl<T, F> Future for WaitFn<F>
where
    F: FnMut(&mut Context<'_>) -> Poll<T> + Unpin,
{
    type Output = Result<T, CancelledError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.cp.poll_with(cx, false, &mut this.f)
    }
}

/// [`wait_fn`] for an I/O poll function: a cancellation comes out as an
/// `io::Error` wrapping the [`CancelledError`]. A future of its own rather
/// than an `async fn` around a [`WaitFn`]: one state machine less per poll.
pub(crate) fn wait_io<T, F>(f: F) -> WaitIo<F>
where
    F: FnMut(&mut Context<'_>) -> Poll<io::Result<T>> + Unpin,
{
    WaitIo {
        f,
        cp: PollCheckpoint::new(),
    }
}

/// The future of [`wait_io`].
pub(crate) struct WaitIo<F> {
    f: F,
    cp: PollCheckpoint,
}

impl<T, F> Future for WaitIo<F>
where
    F: FnMut(&mut Context<'_>) -> Poll<io::Result<T>> + Unpin,
{
    type Output = io::Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.cp.poll_io(cx, &mut this.f)
    }
}
