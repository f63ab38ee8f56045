//! I/O on the loop: the reactor, and how a cancellation travels inside an
//! `io::Error`.
//!
//! Every I/O operation of this crate ([`net`](crate::net), the
//! [streams](crate::open_connection)) returns `io::Result`. When the code
//! awaiting it is cancelled, the error is an `io::Error` of kind
//! [`Other`](std::io::ErrorKind::Other) that wraps the
//! [`CancelledError`] — still a live token, so propagating it with `?`
//! keeps the cancellation in flight exactly as propagating the
//! `CancelledError` would, and dropping it handles the cancellation. Test
//! for it with [`cancelled`] and take it back out with [`into_cancelled`];
//! `?` also converts a `CancelledError` into an `io::Error` (so
//! `asyncio::sleep(d).await?` works inside a function returning
//! `io::Result`).
//!
//! ```
//! use std::time::Duration;
//! async fn serve() -> std::io::Result<()> {
//!     let listener = asyncio::net::TcpListener::bind("127.0.0.1:0").await?;
//!     loop {
//!         let (_conn, _peer) = listener.accept().await?; // a cancellation propagates
//!     }
//! }
//! asyncio::run(async {
//!     let mut task = asyncio::create_task(serve());
//!     asyncio::sleep(Duration::from_millis(10)).await.unwrap();
//!     task.cancel();
//!     // The task ended cancelled: the io::Error carried the live token out.
//!     assert!((&mut task).await.is_err());
//!     assert!(task.cancelled());
//! });
//! ```

pub(crate) mod reactor;
pub(crate) mod stream;
pub(crate) mod wait;

use std::fmt;
use std::io;

use crate::cancel::error::CancelledError;

/// Whether `err` is a cancellation (an `io::Error` wrapping a
/// [`CancelledError`]), as returned by an I/O await point of this crate
/// when the code awaiting it is cancelled.
///
/// ```
/// let err: std::io::Error = asyncio::CancelledError::new().into();
/// assert!(asyncio::io::cancelled(&err));
/// assert!(!asyncio::io::cancelled(&std::io::ErrorKind::TimedOut.into()));
/// ```
pub fn cancelled(err: &io::Error) -> bool {
    err.get_ref().is_some_and(|e| e.is::<CancelledError>())
}

/// Takes the [`CancelledError`] out of `err` if it is a cancellation, or
/// gives `err` back unchanged.
///
/// ```
/// let err: std::io::Error = asyncio::CancelledError::with_message("bye").into();
/// let cancelled = asyncio::io::into_cancelled(err).unwrap();
/// assert_eq!(cancelled.message(), Some("bye"));
/// ```
pub fn into_cancelled(err: io::Error) -> Result<CancelledError, io::Error> {
    if !cancelled(&err) {
        return Err(err);
    }
    let inner = err.into_inner().expect("checked: it wraps an error");
    match inner.downcast::<CancelledError>() {
        Ok(c) => Ok(*c),
        Err(_) => unreachable!("checked: it wraps a CancelledError"),
    }
}

impl From<CancelledError> for io::Error {
    /// Wraps the cancellation in an `io::Error` of kind `Other`; the token
    /// stays live inside it (see [`crate::io`]).
    fn from(err: CancelledError) -> io::Error {
        io::Error::other(err)
    }
}

/// An OS error with the operation and address it concerns, e.g.
/// `connect to 127.0.0.1:1: Connection refused (os error 111)`. The OS
/// error stays reachable as the [`source`](std::error::Error::source).
#[derive(Debug)]
struct AddrError {
    what: String,
    source: io::Error,
}

impl fmt::Display for AddrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.what, self.source)
    }
}

impl std::error::Error for AddrError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Names the operation and address in `err`, keeping its kind; a
/// cancellation passes through untouched.
pub(crate) fn with_addr(err: io::Error, op: &str, addr: impl fmt::Display) -> io::Error {
    if cancelled(&err) {
        return err;
    }
    io::Error::new(
        err.kind(),
        AddrError {
            what: format!("{op} {addr}"),
            source: err,
        },
    )
}
