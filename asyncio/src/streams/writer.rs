//! `StreamWriter`.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;

use super::transport::Transport;
use crate::io::wait::wait_io;

/// The writing half of a connection, from [`open_connection`](crate::open_connection)
/// or a [`start_server`](crate::start_server) handler.
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
pub struct StreamWriter {
    t: Rc<Transport>,
}

impl StreamWriter {
    pub(crate) fn new(t: Rc<Transport>) -> StreamWriter {
        StreamWriter { t }
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
    /// buffer is sent; reading goes on.
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

    /// The peer's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.t.peer()
    }

    /// The local address of the connection.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.t.local()
    }
}

impl fmt::Debug for StreamWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamWriter")
            .field("peer", &self.t.peer())
            .field("buffered", &self.t.buffered())
            .field("closing", &self.t.is_closing())
            .finish()
    }
}
