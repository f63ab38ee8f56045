//! A checkpoint around a poll function: the await point every I/O operation
//! and every wait for another thread is built on.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::cancel::error::CancelledError;
use crate::cancel::scope::Checkpoint;
use crate::runtime::{context, BusyGuard};

/// A checkpoint that completes when `f` returns `Ready` (see
/// [`Checkpoint`]'s protocol: a delivered cancellation wins over a ready
/// result, so `f` is not even called once a cancellation has arrived).
pub(crate) struct WaitFn<F> {
    f: F,
    cp: Checkpoint,
    /// Whether a suspension counts as the loop being busy (I/O does: see
    /// `BusyGuard`), and the count while suspended.
    counts: bool,
    busy: Option<BusyGuard>,
}

/// Makes a checkpoint of the poll function `f`.
pub(crate) fn wait_fn<T, F>(f: F) -> WaitFn<F>
where
    F: FnMut(&mut Context<'_>) -> Poll<T> + Unpin,
{
    WaitFn {
        f,
        cp: Checkpoint::new(),
        counts: false,
        busy: None,
    }
}

impl<T, F> Future for WaitFn<F>
where
    F: FnMut(&mut Context<'_>) -> Poll<T> + Unpin,
{
    type Output = Result<T, CancelledError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Some(err) = std::task::ready!(this.cp.poll_cancelled(cx)) {
            this.busy = None;
            return Poll::Ready(Err(err));
        }
        match (this.f)(cx) {
            Poll::Ready(v) => {
                this.cp.complete();
                this.busy = None;
                Poll::Ready(Ok(v))
            }
            Poll::Pending => {
                this.cp.suspend(cx, None);
                if this.counts && this.busy.is_none() {
                    this.busy = context::with_loop(|lp| lp.busy_guard());
                }
                Poll::Pending
            }
        }
    }
}

/// [`wait_fn`] for an I/O poll function: a cancellation comes out as an
/// `io::Error` wrapping the [`CancelledError`].
pub(crate) async fn wait_io<T, F>(f: F) -> io::Result<T>
where
    F: FnMut(&mut Context<'_>) -> Poll<io::Result<T>> + Unpin,
{
    let mut wait = wait_fn(f);
    wait.counts = true;
    match wait.await {
        Ok(r) => r,
        Err(cancelled) => Err(cancelled.into()),
    }
}
