//! `StreamWriter`.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::transport::Transport;
use crate::io::wait::{wait_io, PollCheckpoint};

/// The writing half of a connection, from [`open_connection`](crate::open_connection),
/// [`open_unix_connection`](crate::open_unix_connection), a server's
/// handler, or a child's stdin ([`Process`](crate::Process)).
///
/// [`write`](StreamWriter::write) never waits: it sends what the socket
/// takes and buffers the rest, which the loop sends in the background.
/// Await [`drain`](StreamWriter::drain) after writing to respect the
/// buffer's high-water mark (64 KiB), as in asyncio. The connection closes
/// on [`close`](StreamWriter::close) (after the buffer is sent), or when
/// both halves are dropped (after the buffer is sent, too).
///
/// ```
/// # asyncio::run(async {
/// let server = asyncio::start_server(
///     |mut reader, writer| async move {
///         let line = reader.readline().await.unwrap();
///         writer.write(&line);
///         writer.drain().await.unwrap();
///     },
///     "127.0.0.1",
///     0,
/// )
/// .await
/// .unwrap();
/// let port = server.local_addrs()[0].port();
/// let (mut reader, writer) = asyncio::open_connection("127.0.0.1", port).await.unwrap();
/// writer.write(b"echo me\n");
/// writer.drain().await.unwrap();
/// assert_eq!(reader.readline().await.unwrap(), b"echo me\n");
/// writer.close();
/// writer.wait_closed().await.unwrap();
/// # });
/// ```
///
/// # `futures-io`
///
/// It also implements [`futures_io::AsyncWrite`] on the same buffer:
/// `poll_write` takes bytes up to the high-water mark and then waits until
/// the loop has sent the buffer down to the low-water mark (back-pressure,
/// as `drain` applies it); `poll_flush` waits until the buffer is empty;
/// `poll_close` is [`close`](StreamWriter::close) followed by
/// [`wait_closed`](StreamWriter::wait_closed) — it closes the whole
/// connection, as asyncio's `close()` does (use
/// [`write_eof`](StreamWriter::write_eof) to half-close). Each poll that
/// waits is a checkpoint: a cancellation comes out as an `io::Error`
/// wrapping the [`CancelledError`](crate::CancelledError) (see
/// [`crate::net`] for how a dropped poll's checkpoint carries over). The writer's
/// own `write` and `close` win over `AsyncWriteExt`'s: call those by their
/// path.
///
/// ```
/// use futures::io::AsyncWriteExt;
/// # asyncio::run(async {
/// # let server = asyncio::start_server(
/// #     |mut r, w| async move { let line = r.readline().await.unwrap(); w.write(&line); }, "127.0.0.1", 0)
/// #     .await.unwrap();
/// # let port = server.local_addrs()[0].port();
/// let (mut reader, mut writer) = asyncio::open_connection("127.0.0.1", port).await.unwrap();
/// writer.write_all(b"via AsyncWriteExt\n").await.unwrap();
/// writer.flush().await.unwrap(); // every byte handed to the OS
/// assert_eq!(reader.readline().await.unwrap(), b"via AsyncWriteExt\n");
/// AsyncWriteExt::close(&mut writer).await.unwrap(); // closed, and waited for
/// # });
/// ```
pub struct StreamWriter {
    t: Rc<Transport>,
    /// The checkpoint of the `futures-io` writes (see `io/wait.rs`).
    cp: PollCheckpoint,
}

impl StreamWriter {
    pub(crate) fn new(t: Rc<Transport>) -> StreamWriter {
        StreamWriter {
            t,
            cp: PollCheckpoint::new(),
        }
    }

    /// Sends `data`, buffering what the socket does not take at once. Never
    /// waits. Ignored once the writer is closing, after
    /// [`write_eof`](StreamWriter::write_eof), or after a write error (which
    /// [`drain`](StreamWriter::drain) reports).
    pub fn write(&self, data: &[u8]) {
        self.t.write(data);
    }

    /// Writes each buffer in turn.
    pub fn writelines<I, B>(&self, lines: I)
    where
        I: IntoIterator<Item = B>,
        B: AsRef<[u8]>,
    {
        for l in lines {
            self.t.write(l.as_ref());
        }
    }

    /// Waits until the write buffer is below its high-water mark (returns at
    /// once, without yielding, if it is already).
    ///
    /// # Errors
    /// The error that broke the connection (a reset, a broken pipe), or
    /// `ConnectionReset` if it was already closed.
    ///
    /// # Cancellation
    /// Returns the cancellation; the buffered bytes are still sent.
    pub async fn drain(&self) -> io::Result<()> {
        let mut waited = false;
        wait_io(|cx| self.t.poll_drain(cx, &mut waited)).await
    }

    /// Shuts down the write side (the peer reads end of file) once the
    /// buffer is sent; reading goes on. A pipe (a child's stdin), which has
    /// no half-close, is closed instead.
    pub fn write_eof(&self) {
        self.t.write_eof();
    }

    /// Whether [`write_eof`](StreamWriter::write_eof) is supported: always.
    pub fn can_write_eof(&self) -> bool {
        true
    }

    /// Closes the connection once the buffer is sent. Never waits: await
    /// [`wait_closed`](StreamWriter::wait_closed) for that. The reader then
    /// reads end of file.
    pub fn close(&self) {
        self.t.close();
    }

    /// Closes the connection now, dropping the buffer.
    pub fn abort(&self) {
        self.t.abort();
    }

    /// Whether the connection is closed or closing.
    pub fn is_closing(&self) -> bool {
        self.t.is_closing()
    }

    /// Waits until the connection is closed.
    ///
    /// # Errors
    /// The error that closed it, if one did.
    ///
    /// # Cancellation
    /// Returns the cancellation; the close goes on.
    pub async fn wait_closed(&self) -> io::Result<()> {
        wait_io(|cx| self.t.poll_closed(cx)).await
    }

    /// Bytes waiting in the write buffer.
    pub fn buffer_size(&self) -> usize {
        self.t.buffered()
    }

    /// The peer's address, for a TCP connection (`None` for a Unix socket
    /// or a pipe).
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.t.peer()
    }

    /// The local address, for a TCP connection (`None` for a Unix socket
    /// or a pipe).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.t.local()
    }

    /// Waits until the connection is closed (for [`Process`](crate::Process)'s
    /// `communicate`).
    pub(crate) fn poll_closed(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.t.poll_closed(cx)
    }
}

impl futures_io::AsyncWrite for StreamWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let t = &this.t;
        this.cp.poll_io(cx, |cx| t.poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let t = &this.t;
        this.cp.poll_io(cx, |cx| t.poll_flush(cx))
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let t = &this.t;
        t.close();
        this.cp.poll_io(cx, |cx| t.poll_closed(cx))
    }
}

impl fmt::Debug for StreamWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamWriter")
            .field("peer", &self.t.name())
            .field("buffered", &self.t.buffered())
            .field("closing", &self.t.is_closing())
            .finish()
    }
}
