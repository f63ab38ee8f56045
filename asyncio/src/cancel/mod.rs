//! Cancellation: the error, the scopes, and the await points built on them.
//!
//! See [`scope`] for the delivery rules and [`CancelledError`] for the
//! error-as-token model.

pub(crate) mod error;
pub(crate) mod scope;
mod shield;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

pub use error::{CancelRecord, CancelledError};
pub use shield::{shield, Shield, ShieldFuture, ShieldTarget};

use scope::Checkpoint;

/// A bare checkpoint, like Trio's: yields to the loop once (asyncio's
/// `sleep(0)`) and returns `Err(CancelledError)` if the task is cancelled.
///
/// ```
/// asyncio::run(async {
///     asyncio::checkpoint().await.unwrap();
/// });
/// ```
pub fn checkpoint() -> crate::time::Sleep {
    crate::time::sleep(std::time::Duration::ZERO)
}

/// Makes a foreign future (one not from this crate) a checkpoint: it can
/// now be interrupted by a cancellation, returning `Err(CancelledError)`
/// and dropping the inner future.
///
/// ```
/// asyncio::run(async {
///     let v = asyncio::cancellable(std::future::ready(5)).await.unwrap();
///     assert_eq!(v, 5);
/// });
/// ```
///
/// # Cancellation
/// When cancelled, the inner future is dropped at the next poll; whatever
/// it had done is kept, whatever it was waiting for is abandoned.
pub fn cancellable<F: Future>(fut: F) -> Cancellable<F> {
    Cancellable {
        inner: Some(fut),
        cp: Checkpoint::new(),
    }
}

pin_project_lite::pin_project! {
    /// The future returned by [`cancellable`].
    pub struct Cancellable<F> {
        #[pin]
        inner: Option<F>,
        cp: Checkpoint,
    }
}

impl<F: Future> Future for Cancellable<F> {
    type Output = Result<F::Output, CancelledError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Some(err) = std::task::ready!(this.cp.poll_cancelled(cx)) {
            this.inner.set(None);
            return Poll::Ready(Err(err));
        }
        let Some(fut) = this.inner.as_mut().as_pin_mut() else {
            panic!("Cancellable polled after completion");
        };
        match fut.poll(cx) {
            Poll::Ready(v) => {
                this.cp.complete();
                this.inner.set(None);
                Poll::Ready(Ok(v))
            }
            Poll::Pending => {
                this.cp.suspend(cx, None);
                Poll::Pending
            }
        }
    }
}
