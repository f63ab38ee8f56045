//! `StreamReader`.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;

use super::transport::Transport;
use super::{IncompleteReadError, LimitOverrunError};
use crate::io::wait::wait_io;

/// asyncio's default buffer limit for `readline` and `readuntil`.
pub(crate) const DEFAULT_LIMIT: usize = 64 * 1024;

/// The reading half of a connection, from [`open_connection`](crate::open_connection)
/// or a [`start_server`](crate::start_server) handler: a buffer over the
/// socket, with asyncio's `read`, `readline`, `readexactly` and
/// `readuntil`.
///
/// Bytes are read from the socket into the buffer only when a call needs
/// more, and leave the buffer only when a call returns them, so a cancelled
/// call never loses bytes: the next call sees them.
///
/// ```
/// # asyncio::run(async {
/// let server = asyncio::start_server(
///     |_reader, writer| async move {
///         writer.write(b"line one\nline two\nrest");
///         writer.close();
///     },
///     "127.0.0.1",
///     0,
/// )
/// .await
/// .unwrap();
/// let addr = server.local_addrs()[0];
/// let (mut reader, _writer) = asyncio::open_connection("127.0.0.1", addr.port()).await.unwrap();
/// assert_eq!(reader.readline().await.unwrap(), b"line one\n");
/// assert_eq!(reader.readexactly(4).await.unwrap(), b"line");
/// assert_eq!(reader.readuntil(b"\n").await.unwrap(), b" two\n");
/// assert_eq!(reader.read_to_end().await.unwrap(), b"rest");
/// assert!(reader.at_eof());
/// # });
/// ```
pub struct StreamReader {
    t: Rc<Transport>,
    buf: Vec<u8>,
    eof: bool,
    limit: usize,
}

impl StreamReader {
    pub(crate) fn new(t: Rc<Transport>) -> StreamReader {
        StreamReader {
            t,
            buf: Vec::new(),
            eof: false,
            limit: DEFAULT_LIMIT,
        }
    }

    /// Reads more from the socket into the buffer; sets `eof` on end of
    /// file. The one await point of the reader.
    async fn fill(&mut self) -> io::Result<()> {
        let (t, buf) = (&self.t, &mut self.buf);
        let n = wait_io(|cx| t.poll_read_into(cx, buf)).await?;
        if n == 0 {
            self.eof = true;
        }
        Ok(())
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        let rest = self.buf.split_off(n);
        std::mem::replace(&mut self.buf, rest)
    }

    /// Up to `n` bytes: what the buffer holds, or, if it is empty, what the
    /// next read from the socket brings. Empty at end of file (or if `n` is
    /// 0).
    ///
    /// # Cancellation
    /// Nothing is lost: bytes that arrive stay buffered for the next call.
    pub async fn read(&mut self, n: usize) -> io::Result<Vec<u8>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        if self.buf.is_empty() && !self.eof {
            self.fill().await?;
        }
        let k = n.min(self.buf.len());
        Ok(self.take(k))
    }

    /// Everything until end of file (Python's `read()` / `read(-1)`).
    ///
    /// # Cancellation
    /// Nothing is lost: what was read so far stays buffered for the next
    /// call.
    pub async fn read_to_end(&mut self) -> io::Result<Vec<u8>> {
        while !self.eof {
            self.fill().await?;
        }
        Ok(std::mem::take(&mut self.buf))
    }

    /// Exactly `n` bytes.
    ///
    /// # Errors
    /// If end of file comes first, an `io::Error` of kind
    /// [`UnexpectedEof`](io::ErrorKind::UnexpectedEof) wrapping an
    /// [`IncompleteReadError`] that holds the bytes read (they are taken
    /// from the buffer, as in asyncio):
    ///
    /// ```
    /// # asyncio::run(async {
    /// # let server = asyncio::start_server(
    /// #     |_r, w| async move { w.write(b"abc"); w.close(); }, "127.0.0.1", 0).await.unwrap();
    /// # let port = server.local_addrs()[0].port();
    /// let (mut reader, _w) = asyncio::open_connection("127.0.0.1", port).await.unwrap();
    /// let err = reader.readexactly(10).await.unwrap_err();
    /// let incomplete = err.get_ref().unwrap().downcast_ref::<asyncio::IncompleteReadError>().unwrap();
    /// assert_eq!(incomplete.partial, b"abc");
    /// assert_eq!(incomplete.expected, Some(10));
    /// # });
    /// ```
    ///
    /// # Cancellation
    /// Nothing is lost: the bytes read so far stay buffered, and the next
    /// call returns them.
    pub async fn readexactly(&mut self, n: usize) -> io::Result<Vec<u8>> {
        loop {
            if self.buf.len() >= n {
                return Ok(self.take(n));
            }
            if self.eof {
                let partial = std::mem::take(&mut self.buf);
                return Err(incomplete(partial, Some(n)));
            }
            self.fill().await?;
        }
    }

    /// The bytes up to and including the first `sep`.
    ///
    /// # Errors
    /// - End of file before `sep`: [`IncompleteReadError`] (kind
    ///   `UnexpectedEof`) with everything that was buffered, which is taken.
    /// - More than the limit (64 KiB) buffered without `sep`, or `sep` found
    ///   beyond it: [`LimitOverrunError`] (kind `InvalidData`); the bytes
    ///   stay buffered.
    ///
    /// # Cancellation
    /// Nothing is lost, as for [`StreamReader::readexactly`].
    ///
    /// # Panics
    /// If `sep` is empty.
    pub async fn readuntil(&mut self, sep: &[u8]) -> io::Result<Vec<u8>> {
        assert!(
            !sep.is_empty(),
            "readuntil(): the separator must not be empty"
        );
        let mut from = 0;
        loop {
            if let Some(i) = find(&self.buf[from..], sep).map(|i| i + from) {
                if i > self.limit {
                    return Err(overrun(
                        "the separator is found, but the chunk is longer than the limit",
                        i,
                    ));
                }
                return Ok(self.take(i + sep.len()));
            }
            from = (self.buf.len() + 1).saturating_sub(sep.len());
            if from > self.limit {
                return Err(overrun(
                    "the separator is not found, and the chunk exceeds the limit",
                    from,
                ));
            }
            if self.eof {
                let partial = std::mem::take(&mut self.buf);
                return Err(incomplete(partial, None));
            }
            self.fill().await?;
        }
    }

    /// One line, up to and including `\n`; at end of file, what is left
    /// (possibly empty, possibly without `\n`).
    ///
    /// # Errors
    /// A line longer than the limit (64 KiB): [`LimitOverrunError`] (kind
    /// `InvalidData`); as in asyncio, the long line (or, without a newline
    /// in sight, the whole buffer) is dropped.
    ///
    /// # Cancellation
    /// Nothing is lost, as for [`StreamReader::readexactly`].
    pub async fn readline(&mut self) -> io::Result<Vec<u8>> {
        match self.readuntil(b"\n").await {
            Ok(line) => Ok(line),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                match e.into_inner().map(|b| b.downcast::<IncompleteReadError>()) {
                    Some(Ok(inc)) => Ok(inc.partial),
                    _ => unreachable!("readuntil's end-of-file error"),
                }
            }
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                match self.buf.iter().position(|&b| b == b'\n') {
                    Some(i) => drop(self.take(i + 1)),
                    None => self.buf.clear(),
                }
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// Whether end of file was reached and the buffer is empty.
    pub fn at_eof(&self) -> bool {
        self.eof && self.buf.is_empty()
    }

    /// The limit on lines and separated chunks (64 KiB by default).
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Changes the limit on lines and separated chunks.
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit.max(1);
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.t.peer()
    }
}

impl fmt::Debug for StreamReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamReader")
            .field("peer", &self.t.peer())
            .field("buffered", &self.buf.len())
            .field("eof", &self.eof)
            .finish()
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

fn incomplete(partial: Vec<u8>, expected: Option<usize>) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        IncompleteReadError { partial, expected },
    )
}

fn overrun(message: &'static str, consumed: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        LimitOverrunError { message, consumed },
    )
}
