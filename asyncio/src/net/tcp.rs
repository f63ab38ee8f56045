//! `TcpListener` and `TcpStream`.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::task::{Context, Poll};

use super::addr::{each_addr, resolve, ToSocketAddrs};
use crate::io::reactor::{Dir, Hook, IoSource};
use crate::io::wait::wait_io;
use crate::io::with_addr;

/// A TCP socket listening for connections, registered with the running
/// loop.
///
/// ```
/// use asyncio::net::{TcpListener, TcpStream};
/// asyncio::run(async {
///     let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
///     let addr = listener.local_addr().unwrap();
///     let client = asyncio::create_task(async move {
///         let stream = TcpStream::connect(addr).await.unwrap();
///         stream.write_all(b"hello").await.unwrap();
///     });
///     let (conn, _peer) = listener.accept().await.unwrap();
///     let mut buf = [0u8; 5];
///     let mut got = 0;
///     while got < 5 {
///         got += conn.read(&mut buf[got..]).await.unwrap();
///     }
///     assert_eq!(&buf, b"hello");
///     client.await.unwrap();
/// });
/// ```
pub struct TcpListener {
    io: IoSource<mio::net::TcpListener>,
    addr: SocketAddr,
}

impl TcpListener {
    /// Binds a listening socket (with `SO_REUSEADDR`, backlog 1024) to the
    /// first address that works; a host name is resolved off the loop.
    /// Port 0 picks a free port: read it back with
    /// [`TcpListener::local_addr`].
    ///
    /// # Errors
    /// The OS error, its message naming the address (`bind to
    /// 127.0.0.1:80: Permission denied (os error 13)`); with several
    /// addresses, the last one's.
    ///
    /// # Cancellation
    /// Only a name lookup can be interrupted; no socket is left open.
    ///
    /// # Panics
    /// When awaited outside a task of a running loop.
    pub async fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        let addrs = resolve(&addr).await?;
        each_addr(addrs, |a| async move { TcpListener::bind_one(a) }).await
    }

    pub(crate) fn bind_one(addr: SocketAddr) -> io::Result<TcpListener> {
        let l = mio::net::TcpListener::bind(addr).map_err(|e| with_addr(e, "bind to", addr))?;
        let local = l.local_addr().map_err(|e| with_addr(e, "bind to", addr))?;
        Ok(TcpListener {
            io: IoSource::new(l)?,
            addr: local,
        })
    }

    /// Waits for a connection and returns it with the peer's address.
    ///
    /// # Cancellation
    /// Returns the cancellation (inside an `io::Error`, see
    /// [`crate::io`]) without taking a connection: one that arrives stays
    /// queued for the next `accept`.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (s, peer) = wait_io(|cx| self.poll_accept(cx)).await?;
        Ok((TcpStream::from_mio(s, peer)?, peer))
    }

    fn poll_accept(
        &self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<(mio::net::TcpStream, SocketAddr)>> {
        self.io
            .poll_io(Dir::Read, cx, |l| l.accept())
            .map_err(|e| with_addr(e, "accept on", self.addr))
    }

    /// Takes one pending connection without waiting (`WouldBlock` if none).
    pub(crate) fn try_accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (s, peer) = self
            .io
            .try_io(Dir::Read, |l| l.accept())
            .map_err(|e| match e.kind() {
                io::ErrorKind::WouldBlock => e,
                _ => with_addr(e, "accept on", self.addr),
            })?;
        Ok((TcpStream::from_mio(s, peer)?, peer))
    }

    /// Runs `hook` on the loop whenever connections may be pending.
    pub(crate) fn set_accept_hook(&self, hook: Option<Hook>) {
        self.io.set_hook(Dir::Read, hook);
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.addr)
    }
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpListener")
            .field("addr", &self.addr)
            .finish()
    }
}

/// A TCP connection, registered with the running loop.
///
/// Its methods take `&self`, so one task can read while another writes
/// (share it with an `Rc`). Reading and writing are checkpoints: they
/// return a cancellation inside an `io::Error` (see [`crate::io`]).
///
/// ```
/// use asyncio::net::{TcpListener, TcpStream};
/// asyncio::run(async {
///     let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
///     let addr = listener.local_addr().unwrap();
///     let server = asyncio::create_task(async move {
///         let (conn, _) = listener.accept().await.unwrap();
///         let mut buf = [0u8; 64];
///         let n = conn.read(&mut buf).await.unwrap();
///         conn.write_all(&buf[..n]).await.unwrap(); // echo
///     });
///     let stream = TcpStream::connect(addr).await.unwrap();
///     stream.set_nodelay(true).unwrap();
///     stream.write_all(b"ping").await.unwrap();
///     let mut buf = [0u8; 4];
///     let mut got = 0;
///     while got < 4 {
///         got += stream.read(&mut buf[got..]).await.unwrap();
///     }
///     assert_eq!(&buf, b"ping");
///     server.await.unwrap();
/// });
/// ```
pub struct TcpStream {
    io: IoSource<mio::net::TcpStream>,
    peer: SocketAddr,
}

impl TcpStream {
    /// Opens a connection to the first address that accepts it; a host name
    /// is resolved off the loop (`"localhost:8080"`, `("example.org", 80)`).
    ///
    /// # Errors
    /// The OS error, its message naming the address (`connect to
    /// 127.0.0.1:1: Connection refused (os error 111)`); with several
    /// addresses, the last one's.
    ///
    /// # Cancellation
    /// The half-open socket is closed; nothing else is left behind.
    ///
    /// # Panics
    /// When awaited outside a task of a running loop.
    pub async fn connect(addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        let addrs = resolve(&addr).await?;
        each_addr(addrs, TcpStream::connect_one).await
    }

    async fn connect_one(addr: SocketAddr) -> io::Result<TcpStream> {
        let s = mio::net::TcpStream::connect(addr).map_err(|e| with_addr(e, "connect to", addr))?;
        let stream = TcpStream {
            io: IoSource::new(s)?,
            peer: addr,
        };
        wait_io(|cx| {
            stream.io.poll_io(Dir::Write, cx, |s| {
                if let Some(e) = s.take_error()? {
                    return Err(e);
                }
                match s.peer_addr() {
                    Ok(_) => Ok(()),
                    // Not connected yet: wait for the next writable edge.
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                        Err(io::ErrorKind::WouldBlock.into())
                    }
                    Err(e) => Err(e),
                }
            })
        })
        .await
        .map_err(|e| with_addr(e, "connect to", addr))?;
        Ok(stream)
    }

    pub(crate) fn from_mio(s: mio::net::TcpStream, peer: SocketAddr) -> io::Result<TcpStream> {
        Ok(TcpStream {
            io: IoSource::new(s)?,
            peer,
        })
    }

    /// Reads some bytes into `buf`, waiting until at least one is available;
    /// `Ok(0)` means the peer closed its side (end of file), or `buf` is
    /// empty.
    ///
    /// # Cancellation
    /// Returns the cancellation without reading: no byte is lost, the next
    /// read returns what arrived.
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        wait_io(|cx| self.poll_read(cx, buf)).await
    }

    pub(crate) fn poll_read(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        self.io
            .poll_io(Dir::Read, cx, |mut s| s.read(buf))
            .map_err(|e| with_addr(e, "read from", self.peer))
    }

    /// Writes some bytes of `buf`, waiting until the socket accepts at least
    /// one; returns how many were written.
    ///
    /// # Cancellation
    /// Returns the cancellation without writing anything.
    pub async fn write(&self, buf: &[u8]) -> io::Result<usize> {
        wait_io(|cx| {
            self.io
                .poll_io(Dir::Write, cx, |mut s| s.write(buf))
                .map_err(|e| with_addr(e, "write to", self.peer))
        })
        .await
    }

    /// Writes all of `buf`, waiting as often as needed.
    ///
    /// # Cancellation
    /// Returns the cancellation; a prefix of `buf` may have been written
    /// already (its length is not reported). Use [`TcpStream::write`] to
    /// know exactly what was sent.
    pub async fn write_all(&self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.write(buf).await? {
                0 => {
                    return Err(with_addr(
                        io::ErrorKind::WriteZero.into(),
                        "write to",
                        self.peer,
                    ))
                }
                n => buf = &buf[n..],
            }
        }
        Ok(())
    }

    /// Writes without waiting: `WouldBlock` if the socket's buffer is full.
    pub(crate) fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        self.io
            .try_io(Dir::Write, |mut s| s.write(buf))
            .map_err(|e| match e.kind() {
                io::ErrorKind::WouldBlock => e,
                _ => with_addr(e, "write to", self.peer),
            })
    }

    /// Runs `hook` on the loop whenever the socket may accept more bytes.
    pub(crate) fn set_write_hook(&self, hook: Option<Hook>) {
        self.io.set_hook(Dir::Write, hook);
    }

    /// Shuts down the read side, the write side (the peer reads end of
    /// file), or both. Never waits.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self.io.get_ref().shutdown(how) {
            // The peer already went away: nothing left to shut down.
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
            r => r.map_err(|e| with_addr(e, "shutdown of the connection to", self.peer)),
        }
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.peer)
    }

    /// The local address of the connection.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// Sets `TCP_NODELAY` (disables Nagle's algorithm) when `on`.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.io.get_ref().set_nodelay(on)
    }

    /// Whether `TCP_NODELAY` is set.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.io.get_ref().nodelay()
    }
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpStream")
            .field("peer", &self.peer)
            .field("local", &self.local_addr().ok())
            .finish()
    }
}
