//! `UnixListener` and `UnixStream`: stream sockets on a path, mirroring
//! the TCP types.

use std::fmt;
use std::io;
use std::net::Shutdown;
use std::os::unix::net::SocketAddr;
use std::path::Path;

use crate::io::reactor::Hook;
use crate::io::stream::{IoListener, IoStream};
use crate::io::wait::PollCheckpoint;
use crate::io::with_addr;

/// How a socket address reads in an error message: its path, or
/// `(unnamed)`.
fn show(addr: &SocketAddr) -> String {
    match addr.as_pathname() {
        Some(p) => p.display().to_string(),
        None => "(unnamed)".to_string(),
    }
}

/// A Unix stream socket listening on a path, registered with the running
/// loop (the socket of asyncio's `start_unix_server`).
///
/// ```
/// use asyncio::net::{UnixListener, UnixStream};
/// asyncio::run(async {
///     let path = std::env::temp_dir().join(format!("asyncio-doc-l-{}.sock", std::process::id()));
///     let _ = std::fs::remove_file(&path);
///     let listener = UnixListener::bind(&path).unwrap();
///     let p = path.clone();
///     let client = asyncio::create_task(async move {
///         let stream = UnixStream::connect(&p).await.unwrap();
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
///     std::fs::remove_file(&path).unwrap();
/// });
/// ```
pub struct UnixListener {
    /// The socket, and its path as it reads in error messages.
    l: IoListener<mio::net::UnixListener, String>,
}

impl UnixListener {
    /// Binds a listening socket to `path` (which must not exist yet: remove
    /// a stale socket file first). Never waits.
    ///
    /// ```
    /// # asyncio::run(async {
    /// let err = asyncio::net::UnixListener::bind("/nonexistent-dir/x.sock").unwrap_err();
    /// assert!(err.to_string().contains("/nonexistent-dir/x.sock"));
    /// # });
    /// ```
    ///
    /// # Errors
    /// The OS error, its message naming the path (`bind to /tmp/x.sock:
    /// Address already in use (os error 98)`), or `NoRunningLoop` inside an
    /// `io::Error` outside a loop.
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixListener> {
        let path = path.as_ref();
        let l = mio::net::UnixListener::bind(path)
            .map_err(|e| with_addr(e, "bind to", path.display()))?;
        Ok(UnixListener {
            l: IoListener::new(l, path.display().to_string())?,
        })
    }

    /// Waits for a connection and returns it with the peer's address
    /// (usually unnamed).
    ///
    /// ```
    /// # use asyncio::net::{UnixListener, UnixStream};
    /// # asyncio::run(async {
    /// # let path = std::env::temp_dir().join(format!("asyncio-doc-a-{}.sock", std::process::id()));
    /// # let _ = std::fs::remove_file(&path);
    /// let listener = UnixListener::bind(&path).unwrap();
    /// let _client = UnixStream::connect(&path).await.unwrap();
    /// let (conn, peer) = listener.accept().await.unwrap();
    /// assert!(peer.is_unnamed());
    /// # drop(conn);
    /// # std::fs::remove_file(&path).unwrap();
    /// # });
    /// ```
    ///
    /// # Cancellation
    /// Returns the cancellation (inside an `io::Error`, see
    /// [`crate::io`]) without taking a connection: one that arrives stays
    /// queued for the next `accept`.
    pub async fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (s, peer) = self.l.accept().await?;
        Ok((UnixStream::from_mio(s)?, peer))
    }

    /// Takes one pending connection without waiting (`WouldBlock` if none).
    pub(crate) fn try_accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (s, peer) = self.l.try_accept()?;
        Ok((UnixStream::from_mio(s)?, peer))
    }

    /// Runs `hook` on the loop whenever connections may be pending.
    pub(crate) fn set_accept_hook(&self, hook: Option<Hook>) {
        self.l.set_accept_hook(hook);
    }

    /// The address the socket is bound to.
    ///
    /// ```
    /// # asyncio::run(async {
    /// # let path = std::env::temp_dir().join(format!("asyncio-doc-la-{}.sock", std::process::id()));
    /// # let _ = std::fs::remove_file(&path);
    /// let listener = asyncio::net::UnixListener::bind(&path).unwrap();
    /// assert_eq!(listener.local_addr().unwrap().as_pathname(), Some(path.as_path()));
    /// # std::fs::remove_file(&path).unwrap();
    /// # });
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.l.get_ref().local_addr()
    }
}

impl fmt::Debug for UnixListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixListener")
            .field("path", self.l.addr())
            .finish()
    }
}

/// A Unix stream connection, registered with the running loop.
///
/// Its methods take `&self`, so one task can read while another writes
/// (share it with an `Rc`). Reading and writing are checkpoints: they
/// return a cancellation inside an `io::Error` (see [`crate::io`]). It
/// also implements the `futures-io` traits (see [`crate::net`]).
///
/// ```
/// use asyncio::net::UnixStream;
/// asyncio::run(async {
///     let (a, b) = UnixStream::pair().unwrap();
///     a.write_all(b"ping").await.unwrap();
///     let mut buf = [0u8; 4];
///     let mut got = 0;
///     while got < 4 {
///         got += b.read(&mut buf[got..]).await.unwrap();
///     }
///     assert_eq!(&buf, b"ping");
/// });
/// ```
pub struct UnixStream {
    /// The socket, and its peer as it reads in error messages.
    s: IoStream<mio::net::UnixStream, String>,
    /// The checkpoints of the `futures-io` traits (see `io/wait.rs`).
    read_cp: PollCheckpoint,
    write_cp: PollCheckpoint,
}

impl UnixStream {
    /// Connects to the socket listening on `path`.
    ///
    /// ```
    /// # asyncio::run(async {
    /// let err = asyncio::net::UnixStream::connect("/nonexistent-dir/x.sock").await.unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    /// assert!(err.to_string().contains("/nonexistent-dir/x.sock"));
    /// # });
    /// ```
    ///
    /// # Errors
    /// The OS error, its message naming the path (`connect to /tmp/x.sock:
    /// Connection refused (os error 111)`).
    ///
    /// # Cancellation
    /// The half-open socket is closed; nothing else is left behind.
    ///
    /// # Panics
    /// When awaited outside a task of a running loop.
    pub async fn connect(path: impl AsRef<Path>) -> io::Result<UnixStream> {
        let path = path.as_ref();
        let s = mio::net::UnixStream::connect(path)
            .map_err(|e| with_addr(e, "connect to", path.display()))?;
        let stream = UnixStream::with_peer(s, path.display().to_string())?;
        stream.s.connected().await?;
        Ok(stream)
    }

    /// A pair of connected sockets (`socket.socketpair()`), both registered
    /// with the running loop.
    ///
    /// ```
    /// # asyncio::run(async {
    /// let (a, b) = asyncio::net::UnixStream::pair().unwrap();
    /// drop(a);
    /// let mut buf = [0u8; 1];
    /// assert_eq!(b.read(&mut buf).await.unwrap(), 0); // end of file
    /// # });
    /// ```
    ///
    /// # Errors
    /// The OS error, or `NoRunningLoop` inside an `io::Error` outside a loop.
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = mio::net::UnixStream::pair()?;
        Ok((UnixStream::from_mio(a)?, UnixStream::from_mio(b)?))
    }

    fn from_mio(s: mio::net::UnixStream) -> io::Result<UnixStream> {
        let peer = s
            .peer_addr()
            .map(|a| show(&a))
            .unwrap_or_else(|_| "(unnamed)".to_string());
        UnixStream::with_peer(s, peer)
    }

    fn with_peer(s: mio::net::UnixStream, peer: String) -> io::Result<UnixStream> {
        Ok(UnixStream {
            s: IoStream::new(s, peer)?,
            read_cp: PollCheckpoint::new(),
            write_cp: PollCheckpoint::new(),
        })
    }

    /// Reads some bytes into `buf`, waiting until at least one is available;
    /// `Ok(0)` means the peer closed its side (end of file), or `buf` is
    /// empty.
    ///
    /// ```
    /// # asyncio::run(async {
    /// let (a, b) = asyncio::net::UnixStream::pair().unwrap();
    /// a.write_all(b"x").await.unwrap();
    /// let mut buf = [0u8; 8];
    /// assert_eq!(b.read(&mut buf).await.unwrap(), 1);
    /// # });
    /// ```
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
    /// ```
    /// # asyncio::run(async {
    /// let (a, _b) = asyncio::net::UnixStream::pair().unwrap();
    /// assert_eq!(a.write(b"abc").await.unwrap(), 3);
    /// # });
    /// ```
    ///
    /// # Cancellation
    /// Returns the cancellation without writing anything.
    pub async fn write(&self, buf: &[u8]) -> io::Result<usize> {
        self.s.write(buf).await
    }

    /// Writes all of `buf`, waiting as often as needed.
    ///
    /// ```
    /// # asyncio::run(async {
    /// let (a, b) = asyncio::net::UnixStream::pair().unwrap();
    /// a.write_all(b"all of it").await.unwrap();
    /// drop(a);
    /// let mut out = Vec::new();
    /// let mut buf = [0u8; 4];
    /// loop {
    ///     match b.read(&mut buf).await.unwrap() {
    ///         0 => break,
    ///         n => out.extend_from_slice(&buf[..n]),
    ///     }
    /// }
    /// assert_eq!(out, b"all of it");
    /// # });
    /// ```
    ///
    /// # Cancellation
    /// Returns the cancellation; a prefix of `buf` may have been written
    /// already (its length is not reported). Use [`UnixStream::write`] to
    /// know exactly what was sent.
    pub async fn write_all(&self, buf: &[u8]) -> io::Result<()> {
        self.s.write_all(buf).await
    }

    /// Shuts down the read side, the write side (the peer reads end of
    /// file), or both. Never waits.
    ///
    /// ```
    /// # asyncio::run(async {
    /// let (a, b) = asyncio::net::UnixStream::pair().unwrap();
    /// a.shutdown(std::net::Shutdown::Write).unwrap();
    /// assert_eq!(b.read(&mut [0u8; 1]).await.unwrap(), 0);
    /// # });
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.s.shutdown(how)
    }

    /// The peer's address (unnamed for an accepted connection or a
    /// [`pair`](UnixStream::pair)).
    ///
    /// ```
    /// # asyncio::run(async {
    /// let (a, _b) = asyncio::net::UnixStream::pair().unwrap();
    /// assert!(a.peer_addr().unwrap().is_unnamed());
    /// # });
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.s.get_ref().peer_addr()
    }

    /// The local address of the connection (usually unnamed for a client).
    ///
    /// ```
    /// # asyncio::run(async {
    /// let (a, _b) = asyncio::net::UnixStream::pair().unwrap();
    /// assert!(a.local_addr().unwrap().is_unnamed());
    /// # });
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.s.get_ref().local_addr()
    }

    /// The registered socket, for the stream transports.
    pub(crate) fn stream(&self) -> &IoStream<mio::net::UnixStream, String> {
        &self.s
    }
}

impl fmt::Debug for UnixStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixStream")
            .field("peer", self.s.peer())
            .finish()
    }
}

super::futures_io_impl!(UnixStream);
