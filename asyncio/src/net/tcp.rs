//! `TcpListener` and `TcpStream`.

use std::fmt;
use std::io;
use std::net::{Shutdown, SocketAddr};

use super::addr::{each_addr, resolve, ToSocketAddrs};
use crate::io::reactor::Hook;
use crate::io::stream::{IoListener, IoStream};
use crate::io::wait::PollCheckpoint;
use crate::io::with_addr;

/// The length of a listening socket's queue of connections not accepted
/// yet (the OS caps it at `net.core.somaxconn`). Beyond it, the OS drops
/// new connection attempts, and the clients retry only after a second.
const BACKLOG: i32 = 1024;

/// Sets the backlog of a socket that is listening already (`mio` listens
/// with 128); calling `listen` again only changes the backlog.
#[cfg(unix)]
fn set_backlog(l: &mio::net::TcpListener, backlog: i32) -> io::Result<()> {
    crate::sys::listen(std::os::fd::AsFd::as_fd(l), backlog)
}

#[cfg(not(unix))]
fn set_backlog(_l: &mio::net::TcpListener, _backlog: i32) -> io::Result<()> {
    Ok(())
}

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
    l: IoListener<mio::net::TcpListener, SocketAddr>,
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
        set_backlog(&l, BACKLOG).map_err(|e| with_addr(e, "listen on", addr))?;
        let local = l.local_addr().map_err(|e| with_addr(e, "bind to", addr))?;
        Ok(TcpListener {
            l: IoListener::new(l, local)?,
        })
    }

    /// Waits for a connection and returns it with the peer's address.
    ///
    /// # Cancellation
    /// Returns the cancellation (inside an `io::Error`, see
    /// [`crate::io`]) without taking a connection: one that arrives stays
    /// queued for the next `accept`.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (s, peer) = self.l.accept().await?;
        Ok((TcpStream::from_mio(s, peer)?, peer))
    }

    /// Takes one pending connection without waiting (`WouldBlock` if none).
    pub(crate) fn try_accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (s, peer) = self.l.try_accept()?;
        Ok((TcpStream::from_mio(s, peer)?, peer))
    }

    /// Runs `hook` on the loop whenever connections may be pending.
    pub(crate) fn set_accept_hook(&self, hook: Option<Hook>) {
        self.l.set_accept_hook(hook);
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(*self.l.addr())
    }
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpListener")
            .field("addr", self.l.addr())
            .finish()
    }
}

/// A TCP connection, registered with the running loop.
///
/// Its methods take `&self`, so one task can read while another writes
/// (share it with an `Rc`). Reading and writing are checkpoints: they
/// return a cancellation inside an `io::Error` (see [`crate::io`]).
///
/// It also implements the `futures-io` traits
/// ([`AsyncRead`](futures_io::AsyncRead),
/// [`AsyncWrite`](futures_io::AsyncWrite); see [`crate::net`]).
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
    s: IoStream<mio::net::TcpStream, SocketAddr>,
    /// The checkpoints of the `futures-io` traits (see `io/wait.rs`).
    read_cp: PollCheckpoint,
    write_cp: PollCheckpoint,
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
        let stream = TcpStream::from_mio(s, addr)?;
        stream.s.connected().await?;
        Ok(stream)
    }

    pub(crate) fn from_mio(s: mio::net::TcpStream, peer: SocketAddr) -> io::Result<TcpStream> {
        Ok(TcpStream {
            s: IoStream::new(s, peer)?,
            read_cp: PollCheckpoint::new(),
            write_cp: PollCheckpoint::new(),
        })
    }

    /// Reads some bytes into `buf`, waiting until at least one is available;
    /// `Ok(0)` means the peer closed its side (end of file), or `buf` is
    /// empty.
    ///
    /// # Errors
    /// The OS error, naming the peer: `ConnectionReset` if the peer reset
    /// the connection.
    ///
    /// # Cancellation
    /// Returns the cancellation without reading: no byte is lost, the next
    /// read returns what arrived.
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.s.read(buf).await
    }

    /// Writes some bytes of `buf`, waiting until the socket accepts at least
    /// one; returns how many were written.
    ///
    /// # Cancellation
    /// Returns the cancellation without writing anything.
    pub async fn write(&self, buf: &[u8]) -> io::Result<usize> {
        self.s.write(buf).await
    }

    /// Writes all of `buf`, waiting as often as needed.
    ///
    /// # Cancellation
    /// Returns the cancellation; a prefix of `buf` may have been written
    /// already (its length is not reported). Use [`TcpStream::write`] to
    /// know exactly what was sent.
    pub async fn write_all(&self, buf: &[u8]) -> io::Result<()> {
        self.s.write_all(buf).await
    }

    /// Shuts down the read side, the write side (the peer reads end of
    /// file), or both. Never waits.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.s.shutdown(how)
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(*self.s.peer())
    }

    /// The local address of the connection.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.s.get_ref().local_addr()
    }

    /// Sets `TCP_NODELAY` (disables Nagle's algorithm) when `on`.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.s.get_ref().set_nodelay(on)
    }

    /// Whether `TCP_NODELAY` is set.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.s.get_ref().nodelay()
    }

    /// The registered socket, for the stream transports.
    pub(crate) fn stream(&self) -> &IoStream<mio::net::TcpStream, SocketAddr> {
        &self.s
    }
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpStream")
            .field("peer", self.s.peer())
            .field("local", &self.local_addr().ok())
            .finish()
    }
}

super::futures_io_impl!(TcpStream);
