//! What every byte stream of the crate shares — TCP and Unix stream
//! sockets, a child's pipes — and every listener: reading, writing, waiting
//! for a connection, shutting down, accepting, each error naming the peer.
//!
//! The public types (`net::TcpStream`, `net::UnixStream`, the listeners,
//! the pipes under a subprocess's streams) are thin wrappers over these.

use std::fmt::Display;
use std::future::Future;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::task::{Context, Poll};

use mio::event::Source;

use super::reactor::{Dir, Hook, IoSource};
use super::wait::{wait_io, PollCheckpoint};
use super::with_addr;

/// A registered byte stream `S` and how its peer reads in error messages
/// (`D`: a `SocketAddr`, a path, "the stdout of `cat`").
pub(crate) struct IoStream<S: Source, D> {
    io: IoSource<S>,
    peer: D,
}

impl<S: Source, D: Display> IoStream<S, D> {
    /// Registers `s` with the running loop's reactor.
    pub(crate) fn new(s: S, peer: D) -> io::Result<IoStream<S, D>> {
        Ok(IoStream {
            io: IoSource::new(s)?,
            peer,
        })
    }

    /// The stream itself, for calls that never block.
    pub(crate) fn get_ref(&self) -> &S {
        self.io.get_ref()
    }

    /// The peer, as it reads in error messages.
    pub(crate) fn peer(&self) -> &D {
        &self.peer
    }

    fn named(&self, e: io::Error, op: &str) -> io::Error {
        match e.kind() {
            io::ErrorKind::WouldBlock => e,
            _ => with_addr(e, op, &self.peer),
        }
    }
}

impl<S: Source, D: Display> IoStream<S, D>
where
    for<'a> &'a S: Read,
{
    /// Reads some bytes into `buf`; `Ok(0)` at end of file or if `buf` is
    /// empty.
    pub(crate) fn poll_read(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let want = buf.len();
        let r = self.io.poll_io(Dir::Read, cx, |mut s| s.read(buf));
        if let Poll::Ready(Ok(n)) = r {
            // A short read drained the socket (not end of file: a zero read
            // must stay ready, so that it is seen again).
            if n > 0 && n < want {
                self.io.drained(Dir::Read);
            }
        }
        r.map_err(|e| self.named(e, "read from"))
    }

    /// [`IoStream::poll_read`] as a checkpoint.
    pub(crate) fn read<'a>(
        &'a self,
        buf: &'a mut [u8],
    ) -> impl Future<Output = io::Result<usize>> + 'a {
        wait_io(move |cx| self.poll_read(cx, buf))
    }
}

impl<S: Source, D: Display> IoStream<S, D>
where
    for<'a> &'a S: Write,
{
    /// Writes some bytes of `buf`, waiting until at least one is taken.
    pub(crate) fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.io
            .poll_io(Dir::Write, cx, |mut s| s.write(buf))
            .map_err(|e| self.named(e, "write to"))
    }

    /// Writes without waiting: `WouldBlock` if the buffer is full.
    pub(crate) fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        self.io
            .try_io(Dir::Write, |mut s| s.write(buf))
            .map_err(|e| self.named(e, "write to"))
    }

    /// [`IoStream::poll_write`] as a checkpoint.
    pub(crate) fn write<'a>(
        &'a self,
        buf: &'a [u8],
    ) -> impl Future<Output = io::Result<usize>> + 'a {
        wait_io(move |cx| self.poll_write(cx, buf))
    }

    /// Writes all of `buf`, waiting as often as needed.
    ///
    /// One future around one checkpoint: the checkpoint is unregistered
    /// after each write that took bytes, so each write of the loop starts
    /// as a fresh await point, as a new [`IoStream::write`] would.
    pub(crate) fn write_all<'a>(
        &'a self,
        mut buf: &'a [u8],
    ) -> impl Future<Output = io::Result<()>> + 'a {
        let mut cp = PollCheckpoint::new();
        std::future::poll_fn(move |cx| {
            while !buf.is_empty() {
                match std::task::ready!(cp.poll_io(cx, |cx| self.poll_write(cx, buf))) {
                    Ok(0) => {
                        return Poll::Ready(Err(with_addr(
                            io::ErrorKind::WriteZero.into(),
                            "write to",
                            &self.peer,
                        )))
                    }
                    Ok(n) => buf = &buf[n..],
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
            Poll::Ready(Ok(()))
        })
    }

    /// Runs `hook` on the loop whenever the stream may take more bytes.
    pub(crate) fn set_write_hook(&self, hook: Option<Hook>) {
        self.io.set_hook(Dir::Write, hook);
    }
}

/// A stream socket: what connecting and shutting down need.
pub(crate) trait Socket: Source {
    fn take_error(&self) -> io::Result<Option<io::Error>>;
    /// `Ok(false)` while a connection is still being made.
    fn is_connected(&self) -> io::Result<bool>;
    fn shutdown(&self, how: Shutdown) -> io::Result<()>;
}

macro_rules! socket_impl {
    ($($t:ty),*) => {$(
        impl Socket for $t {
            fn take_error(&self) -> io::Result<Option<io::Error>> {
                <$t>::take_error(self)
            }
            fn is_connected(&self) -> io::Result<bool> {
                match self.peer_addr() {
                    Ok(_) => Ok(true),
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
                    Err(e) => Err(e),
                }
            }
            fn shutdown(&self, how: Shutdown) -> io::Result<()> {
                <$t>::shutdown(self, how)
            }
        }
    )*};
}

socket_impl!(mio::net::TcpStream);
#[cfg(unix)]
socket_impl!(mio::net::UnixStream);

impl<S: Socket, D: Display> IoStream<S, D> {
    /// Waits until a connection started by a non-blocking `connect` is made
    /// (or has failed).
    pub(crate) async fn connected(&self) -> io::Result<()> {
        wait_io(|cx| {
            self.io.poll_io(Dir::Write, cx, |s| {
                if let Some(e) = s.take_error()? {
                    return Err(e);
                }
                match s.is_connected()? {
                    true => Ok(()),
                    // Not connected yet: wait for the next writable edge.
                    false => Err(io::ErrorKind::WouldBlock.into()),
                }
            })
        })
        .await
        .map_err(|e| with_addr(e, "connect to", &self.peer))
    }

    /// Shuts down one side or both. Never waits; a peer that already went
    /// away is not an error.
    pub(crate) fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self.io.get_ref().shutdown(how) {
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
            r => r.map_err(|e| with_addr(e, "shutdown of the connection to", &self.peer)),
        }
    }
}

/// A listening socket: what accepting needs.
pub(crate) trait Accept: Source {
    /// The accepted stream.
    type Conn;
    /// The peer's address.
    type Addr;
    fn accept(&self) -> io::Result<(Self::Conn, Self::Addr)>;
}

impl Accept for mio::net::TcpListener {
    type Conn = mio::net::TcpStream;
    type Addr = std::net::SocketAddr;
    fn accept(&self) -> io::Result<(Self::Conn, Self::Addr)> {
        mio::net::TcpListener::accept(self)
    }
}

#[cfg(unix)]
impl Accept for mio::net::UnixListener {
    type Conn = mio::net::UnixStream;
    type Addr = std::os::unix::net::SocketAddr;
    fn accept(&self) -> io::Result<(Self::Conn, Self::Addr)> {
        mio::net::UnixListener::accept(self)
    }
}

/// A registered listening socket and how its address reads in error
/// messages.
pub(crate) struct IoListener<L: Source, D> {
    io: IoSource<L>,
    addr: D,
}

impl<L: Accept, D: Display> IoListener<L, D> {
    /// Registers `l` with the running loop's reactor.
    pub(crate) fn new(l: L, addr: D) -> io::Result<IoListener<L, D>> {
        Ok(IoListener {
            io: IoSource::new(l)?,
            addr,
        })
    }

    /// The socket itself, for calls that never block.
    pub(crate) fn get_ref(&self) -> &L {
        self.io.get_ref()
    }

    /// The address, as it reads in error messages.
    pub(crate) fn addr(&self) -> &D {
        &self.addr
    }

    /// Waits for a connection. A cancellation takes none: one that arrives
    /// stays queued for the next call.
    pub(crate) async fn accept(&self) -> io::Result<(L::Conn, L::Addr)> {
        wait_io(|cx| {
            self.io
                .poll_io(Dir::Read, cx, |l| l.accept())
                .map_err(|e| with_addr(e, "accept on", &self.addr))
        })
        .await
    }

    /// Takes one pending connection without waiting (`WouldBlock` if none).
    pub(crate) fn try_accept(&self) -> io::Result<(L::Conn, L::Addr)> {
        self.io
            .try_io(Dir::Read, |l| l.accept())
            .map_err(|e| match e.kind() {
                io::ErrorKind::WouldBlock => e,
                _ => with_addr(e, "accept on", &self.addr),
            })
    }

    /// Runs `hook` on the loop whenever connections may be pending.
    pub(crate) fn set_accept_hook(&self, hook: Option<Hook>) {
        self.io.set_hook(Dir::Read, hook);
    }
}
