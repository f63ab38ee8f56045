//! [`ByteStream`]: what a transport needs of the stream under it, for each
//! kind of stream the streams API runs on — a TCP connection, a Unix stream
//! socket, a child's pipe.

use std::io;
use std::net::{Shutdown, SocketAddr};
use std::task::{Context, Poll};

use crate::io::reactor::Hook;
use crate::net::TcpStream;

/// A registered byte stream under a [`Transport`](super::transport::Transport).
pub(crate) trait ByteStream {
    /// Reads what is there into `buf`, waiting (registering `cx`) if
    /// nothing is; `Ok(0)` at end of file. A write-only stream (a child's
    /// stdin) reads end of file.
    fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>>;

    /// Writes without waiting: `WouldBlock` when the stream is full. A
    /// read-only stream refuses (`Unsupported`).
    fn try_write(&self, buf: &[u8]) -> io::Result<usize>;

    /// Runs `hook` on the loop whenever the stream may take more bytes.
    fn set_write_hook(&self, hook: Option<Hook>);

    /// Shuts the write side down (`write_eof`): `false` if the stream has
    /// no half-close (a pipe), and the transport closes instead.
    fn shutdown_write(&self) -> bool;

    /// The peer's address, for a TCP connection.
    fn peer_addr(&self) -> Option<SocketAddr>;

    /// The local address, for a TCP connection.
    fn local_addr(&self) -> Option<SocketAddr>;

    /// The peer as it reads in messages.
    fn describe(&self) -> String;
}

impl ByteStream for TcpStream {
    fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        self.stream().poll_read(cx, buf)
    }

    fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        self.stream().try_write(buf)
    }

    fn set_write_hook(&self, hook: Option<Hook>) {
        self.stream().set_write_hook(hook);
    }

    fn shutdown_write(&self) -> bool {
        let _ = self.shutdown(Shutdown::Write);
        true
    }

    fn peer_addr(&self) -> Option<SocketAddr> {
        TcpStream::peer_addr(self).ok()
    }

    fn local_addr(&self) -> Option<SocketAddr> {
        TcpStream::local_addr(self).ok()
    }

    fn describe(&self) -> String {
        self.stream().peer().to_string()
    }
}

#[cfg(unix)]
mod unix {
    use super::*;
    use crate::io::stream::IoStream;
    use crate::net::UnixStream;
    use mio::unix::pipe;

    impl ByteStream for UnixStream {
        fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
            self.stream().poll_read(cx, buf)
        }

        fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
            self.stream().try_write(buf)
        }

        fn set_write_hook(&self, hook: Option<Hook>) {
            self.stream().set_write_hook(hook);
        }

        fn shutdown_write(&self) -> bool {
            let _ = self.shutdown(Shutdown::Write);
            true
        }

        fn peer_addr(&self) -> Option<SocketAddr> {
            None
        }

        fn local_addr(&self) -> Option<SocketAddr> {
            None
        }

        fn describe(&self) -> String {
            self.stream().peer().clone()
        }
    }

    /// The reading end of a pipe (a child's stdout or stderr).
    impl ByteStream for IoStream<pipe::Receiver, String> {
        fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
            IoStream::poll_read(self, cx, buf)
        }

        fn try_write(&self, _buf: &[u8]) -> io::Result<usize> {
            Err(io::ErrorKind::Unsupported.into())
        }

        fn set_write_hook(&self, _hook: Option<Hook>) {}

        fn shutdown_write(&self) -> bool {
            false
        }

        fn peer_addr(&self) -> Option<SocketAddr> {
            None
        }

        fn local_addr(&self) -> Option<SocketAddr> {
            None
        }

        fn describe(&self) -> String {
            self.peer().clone()
        }
    }

    /// The writing end of a pipe (a child's stdin).
    impl ByteStream for IoStream<pipe::Sender, String> {
        fn poll_read(&self, _cx: &mut Context<'_>, _buf: &mut [u8]) -> Poll<io::Result<usize>> {
            Poll::Ready(Ok(0))
        }

        fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
            IoStream::try_write(self, buf)
        }

        fn set_write_hook(&self, hook: Option<Hook>) {
            IoStream::set_write_hook(self, hook);
        }

        fn shutdown_write(&self) -> bool {
            false
        }

        fn peer_addr(&self) -> Option<SocketAddr> {
            None
        }

        fn local_addr(&self) -> Option<SocketAddr> {
            None
        }

        fn describe(&self) -> String {
            self.peer().clone()
        }
    }
}
