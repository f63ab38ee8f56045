//! `StreamReader`.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::transport::Transport;
use super::{IncompleteReadError, LimitOverrunError};
use crate::io::wait::{wait_io, PollCheckpoint};

/// asyncio's default buffer limit for `readline` and `readuntil`.
pub(crate) const DEFAULT_LIMIT: usize = 64 * 1024;

/// The reading half of a connection, from [`open_connection`](crate::open_connection),
/// [`open_unix_connection`](crate::open_unix_connection), a server's
/// handler, or a child's stdout or stderr ([`Process`](crate::Process)): a
/// buffer over the stream, with asyncio's `read`, `readline`,
/// `readexactly` and `readuntil`.
///
/// Bytes are read from the stream into the buffer only when a call needs
/// more, and leave the buffer only when a call returns them, so a cancelled
/// call never loses bytes: the next call sees them.
///
/// It also implements [`futures_io::AsyncRead`] and
/// [`futures_io::AsyncBufRead`], on the same buffer (so the two kinds of
/// call can be mixed). Each poll that waits is a checkpoint, as the
/// methods are: a cancellation comes out as an `io::Error` wrapping the
/// [`CancelledError`](crate::CancelledError), and no byte is lost (see
/// [`crate::net`] for how a dropped poll's checkpoint carries over). Where
/// an extension method has the name of a method of the reader (`read`,
/// `read_to_end`), the reader's own wins: call the trait's by its path.
///
/// ```
/// use futures::io::{AsyncBufReadExt, AsyncReadExt};
/// # asyncio::run(async {
/// # let server = asyncio::start_server(
/// #     |_r, w| async move { w.write(b"first line\nthe rest"); w.close() }, "127.0.0.1", 0)
/// #     .await.unwrap();
/// # let port = server.local_addrs()[0].port();
/// let (mut reader, _writer) = asyncio::open_connection("127.0.0.1", port).await.unwrap();
/// let mut line = String::new();
/// reader.read_line(&mut line).await.unwrap(); // AsyncBufReadExt
/// assert_eq!(line, "first line\n");
/// let mut rest = Vec::new();
/// AsyncReadExt::read_to_end(&mut reader, &mut rest).await.unwrap();
/// assert_eq!(rest, b"the rest");
/// # });
/// ```
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
    /// The buffer: its bytes from `pos` on are unread.
    buf: Vec<u8>,
    pos: usize,
    eof: bool,
    limit: usize,
    /// The checkpoint of the `futures-io` reads (see `io/wait.rs`).
    cp: PollCheckpoint,
}

impl StreamReader {
    pub(crate) fn new(t: Rc<Transport>) -> StreamReader {
        StreamReader {
            t,
            buf: Vec::new(),
            pos: 0,
            eof: false,
            limit: DEFAULT_LIMIT,
            cp: PollCheckpoint::new(),
        }
    }

    /// The unread bytes.
    fn data(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Reads more from the stream into the buffer; sets `eof` on end of
    /// file.
    pub(crate) fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let n = std::task::ready!(self.t.poll_read_into(cx, &mut self.buf))?;
        if n == 0 {
            self.eof = true;
        }
        Poll::Ready(Ok(()))
    }

    /// Reads until end of file into the buffer (for `communicate`).
    pub(crate) fn poll_fill_to_eof(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.eof {
            std::task::ready!(self.poll_fill(cx))?;
        }
        Poll::Ready(Ok(()))
    }

    /// [`StreamReader::poll_fill`] as a checkpoint: the one await point of
    /// the reader's methods.
    async fn fill(&mut self) -> io::Result<()> {
        wait_io(|cx| self.poll_fill(cx)).await
    }

    /// Takes the first `n` unread bytes.
    fn take(&mut self, n: usize) -> Vec<u8> {
        let out = self.buf[self.pos..self.pos + n].to_vec();
        self.consume_bytes(n);
        out
    }

    /// Takes every unread byte.
    pub(crate) fn take_all(&mut self) -> Vec<u8> {
        let mut all = std::mem::take(&mut self.buf);
        all.drain(..self.pos);
        self.pos = 0;
        all
    }

    fn consume_bytes(&mut self, n: usize) {
        self.pos += n;
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
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
        if self.data().is_empty() && !self.eof {
            self.fill().await?;
        }
        let k = n.min(self.data().len());
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
        Ok(self.take_all())
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
            if self.data().len() >= n {
                return Ok(self.take(n));
            }
            if self.eof {
                return Err(incomplete(self.take_all(), Some(n)));
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
            if let Some(i) = find(&self.data()[from..], sep).map(|i| i + from) {
                if i > self.limit {
                    return Err(overrun(
                        "the separator is found, but the chunk is longer than the limit",
                        i,
                    ));
                }
                return Ok(self.take(i + sep.len()));
            }
            from = (self.data().len() + 1).saturating_sub(sep.len());
            if from > self.limit {
                return Err(overrun(
                    "the separator is not found, and the chunk exceeds the limit",
                    from,
                ));
            }
            if self.eof {
                return Err(incomplete(self.take_all(), None));
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
                match self.data().iter().position(|&b| b == b'\n') {
                    Some(i) => self.consume_bytes(i + 1),
                    None => drop(self.take_all()),
                }
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// Whether end of file was reached and the buffer is empty.
    pub fn at_eof(&self) -> bool {
        self.eof && self.data().is_empty()
    }

    /// The limit on lines and separated chunks (64 KiB by default).
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Changes the limit on lines and separated chunks.
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit.max(1);
    }

    /// The peer's address, for a TCP connection (`None` for a Unix socket
    /// or a pipe).
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.t.peer()
    }
}

impl futures_io::AsyncRead for StreamReader {
    /// Copies from the buffer, or, if it is empty, reads the stream into it
    /// first (a checkpoint). `Ok(0)` at end of file.
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if out.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let data = std::task::ready!(this.poll_buffered(cx))?;
        let n = data.len().min(out.len());
        out[..n].copy_from_slice(&data[..n]);
        this.consume_bytes(n);
        Poll::Ready(Ok(n))
    }
}

impl futures_io::AsyncBufRead for StreamReader {
    /// The unread bytes of the buffer, reading the stream first if there are
    /// none (a checkpoint); empty at end of file.
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        self.get_mut().poll_buffered(cx)
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        let this = self.get_mut();
        let amt = amt.min(this.data().len());
        this.consume_bytes(amt);
    }
}

impl StreamReader {
    /// The unread bytes, filling the buffer through the `futures-io`
    /// checkpoint if it is empty.
    fn poll_buffered(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        if self.data().is_empty() && !self.eof {
            let mut cp = std::mem::take(&mut self.cp);
            let r = cp.poll_io(cx, |cx| self.poll_fill(cx));
            self.cp = cp;
            std::task::ready!(r)?;
        }
        Poll::Ready(Ok(self.data()))
    }
}

impl fmt::Debug for StreamReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamReader")
            .field("peer", &self.t.name())
            .field("buffered", &self.data().len())
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
