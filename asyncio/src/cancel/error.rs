//! `CancelledError`: a cancellation in flight, as a value.
//!
//! A `CancelledError` is a *live token*. While any `CancelledError` for a
//! delivery exists, the code that received it is still being cancelled;
//! once every copy is dropped, the cancellation has been handled (Python's
//! `except CancelledError: pass`). The runtime reads the liveness when a
//! task's future completes (the task then ends cancelled) and when a
//! timeout scope exits (it then reports [`TimeoutError`](crate::TimeoutError)).
//! Liveness is an atomic count, so a token dropped on another thread — inside
//! a `Box<dyn Error + Send + Sync>`, say — counts as handled too.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// The shared half of a cancellation token: how many `CancelledError`s
/// stand for it, and the message of the request that created it.
pub(crate) struct TokenInner {
    live: AtomicU32,
    /// The token of an error made outside any task: no book lists it, and
    /// its errors are not live (they cancel nobody).
    inert: bool,
    msg: Option<Arc<str>>,
}

/// A shared, counted reference to a token, held by the runtime's books (not
/// counted in the liveness).
pub(crate) type Token = Arc<TokenInner>;

impl TokenInner {
    /// A token no error stands for yet (a delivery's, until it is raised).
    pub(crate) fn new(msg: Option<Arc<str>>) -> Token {
        TokenInner::make(0, false, msg)
    }

    fn make(live: u32, inert: bool, msg: Option<Arc<str>>) -> Token {
        Arc::new(TokenInner {
            live: AtomicU32::new(live),
            inert,
            msg,
        })
    }

    /// Whether some `CancelledError` still stands for this token.
    pub(crate) fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire) > 0
    }

    pub(crate) fn message(&self) -> Option<&Arc<str>> {
        self.msg.as_ref()
    }
}

/// The error every checkpoint returns when the code awaiting it is cancelled.
///
/// Propagating it (with `?`) means "I am still being cancelled", exactly like
/// letting Python's `CancelledError` propagate. Dropping it means the
/// cancellation was handled: the task carries on and does not end cancelled.
/// To keep a record of a cancellation without keeping it in flight, call
/// [`CancelledError::handled`].
///
/// ```
/// use std::time::Duration;
/// asyncio::Runner::builder().virtual_time(true).build().run(async {
///     let mut task = asyncio::create_task(async {
///         match asyncio::sleep(Duration::from_secs(10)).await {
///             Ok(()) => "slept",
///             // Dropping the error handles the cancellation: the task
///             // returns normally.
///             Err(_cancelled) => "cleaned up",
///         }
///     });
///     asyncio::sleep(Duration::from_secs(1)).await.unwrap();
///     task.cancel();
///     assert_eq!((&mut task).await.unwrap(), "cleaned up");
///     assert!(!task.cancelled());
/// });
/// ```
///
/// One pointer: `Result<(), CancelledError>`, what most checkpoints return,
/// is one word.
pub struct CancelledError {
    token: Token,
}

impl CancelledError {
    /// Makes a live error for `token` (a checkpoint returning its delivery).
    pub(crate) fn from_token(token: Token) -> CancelledError {
        if token.live.fetch_add(1, Ordering::AcqRel) > u32::MAX / 2 {
            // As `Arc` does: a count this high means leaked errors; never
            // wrap (a wrapped count would read as handled).
            std::process::abort();
        }
        CancelledError { token }
    }

    /// A live error for a new token: the token starts with this one error
    /// counted, with no atomic operation (nothing else can see it yet).
    pub(crate) fn fresh(msg: Option<Arc<str>>) -> CancelledError {
        CancelledError {
            token: TokenInner::make(1, false, msg),
        }
    }

    /// The token this error stands for.
    pub(crate) fn token(&self) -> &Token {
        &self.token
    }

    /// An error that stands for no cancellation (made outside any task).
    fn inert(msg: Option<Arc<str>>) -> CancelledError {
        CancelledError {
            token: TokenInner::make(0, true, msg),
        }
    }

    /// Raises a cancellation by hand, like Python's `raise CancelledError()`.
    ///
    /// Inside a task the new error counts as a cancellation of that task: if
    /// it propagates out of the task's future, the task ends cancelled —
    /// unless it leaves an expiring `timeout`/`wait_for` first, which turns
    /// it into `TimeoutError`, as asyncio does. Outside a task it is an inert
    /// record.
    pub fn new() -> CancelledError {
        CancelledError::with_message_opt(None)
    }

    /// Like [`CancelledError::new`], with a message.
    pub fn with_message(msg: impl Into<String>) -> CancelledError {
        CancelledError::with_message_opt(Some(Arc::from(msg.into())))
    }

    fn with_message_opt(msg: Option<Arc<str>>) -> CancelledError {
        match crate::task::current_raised_error(msg.clone()) {
            Some(err) => err,
            None => CancelledError::inert(msg),
        }
    }

    /// The message given to [`TaskRef::cancel_with`](crate::TaskRef::cancel_with),
    /// if any.
    pub fn message(&self) -> Option<&str> {
        self.token.msg.as_deref()
    }

    /// Whether this error still stands for a cancellation in flight.
    /// `false` for errors made outside a task.
    pub fn is_live(&self) -> bool {
        !self.token.inert
    }

    /// Marks the cancellation as handled and keeps it as plain data: the
    /// returned record cancels nobody.
    pub fn handled(self) -> CancelRecord {
        CancelRecord {
            msg: self.token.msg.clone(),
        }
    }
}

impl Default for CancelledError {
    fn default() -> Self {
        CancelledError::new()
    }
}

impl Clone for CancelledError {
    /// A clone stands for the same cancellation: the cancellation stays in
    /// flight until every clone is dropped.
    fn clone(&self) -> Self {
        if self.token.inert {
            CancelledError {
                token: self.token.clone(),
            }
        } else {
            CancelledError::from_token(self.token.clone())
        }
    }
}

impl Drop for CancelledError {
    fn drop(&mut self) {
        if !self.token.inert {
            self.token.live.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl fmt::Debug for CancelledError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelledError")
            .field("message", &self.message())
            .field("live", &self.is_live())
            .finish()
    }
}

impl fmt::Display for CancelledError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.token.msg {
            Some(m) => write!(f, "cancelled: {m}"),
            None => f.write_str("cancelled"),
        }
    }
}

impl std::error::Error for CancelledError {}

/// A handled cancellation kept as data (see [`CancelledError::handled`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CancelRecord {
    msg: Option<Arc<str>>,
}

impl CancelRecord {
    /// A record of a cancellation that ended a task (gather's collected
    /// outcomes).
    pub(crate) fn new(msg: Option<Arc<str>>) -> CancelRecord {
        CancelRecord { msg }
    }

    /// The cancel message, if there was one.
    pub fn message(&self) -> Option<&str> {
        self.msg.as_deref()
    }
}

impl fmt::Display for CancelRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.msg {
            Some(m) => write!(f, "cancelled (handled): {m}"),
            None => f.write_str("cancelled (handled)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn liveness_follows_every_copy() {
        let token = TokenInner::new(Some(Arc::from("bye")));
        assert!(!token.is_live());
        let a = CancelledError::from_token(token.clone());
        let b = a.clone();
        assert!(token.is_live());
        drop(a);
        assert!(token.is_live());
        assert_eq!(b.message(), Some("bye"));
        let rec = b.handled();
        assert!(!token.is_live());
        assert_eq!(rec.message(), Some("bye"));
    }

    #[test]
    fn dropping_on_another_thread_counts() {
        let token = TokenInner::new(None);
        let err = CancelledError::from_token(token.clone());
        let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(err);
        std::thread::spawn(move || drop(boxed)).join().unwrap();
        assert!(!token.is_live());
    }

    #[test]
    fn outside_a_task_it_is_inert() {
        let e = CancelledError::with_message("x");
        assert!(!e.is_live());
        assert_eq!(e.to_string(), "cancelled: x");
    }

    /// Every checkpoint returns a `Result<_, CancelledError>`: it stays
    /// one pointer, and a unit result one word.
    #[test]
    fn an_error_is_one_pointer() {
        use std::mem::size_of;
        assert_eq!(size_of::<CancelledError>(), size_of::<usize>());
        assert_eq!(size_of::<Result<(), CancelledError>>(), size_of::<usize>());
    }
}
