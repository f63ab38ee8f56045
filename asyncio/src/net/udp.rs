//! `UdpSocket`.

use std::fmt;
use std::io;
use std::net::SocketAddr;

use super::addr::{each_addr, resolve, ToSocketAddrs};
use crate::io::reactor::{Dir, IoSource};
use crate::io::wait::wait_io;
use crate::io::with_addr;

/// A UDP socket, registered with the running loop.
///
/// ```
/// use asyncio::net::UdpSocket;
/// asyncio::run(async {
///     let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
///     let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
///     a.send_to(b"hi", b.local_addr().unwrap()).await.unwrap();
///     let mut buf = [0u8; 16];
///     let (n, from) = b.recv_from(&mut buf).await.unwrap();
///     assert_eq!(&buf[..n], b"hi");
///     assert_eq!(from, a.local_addr().unwrap());
/// });
/// ```
pub struct UdpSocket {
    io: IoSource<mio::net::UdpSocket>,
    local: SocketAddr,
}

impl UdpSocket {
    /// Binds a socket to the first address that works (port 0 picks a free
    /// port); a host name is resolved off the loop.
    ///
    /// # Errors
    /// The OS error, its message naming the address.
    ///
    /// # Cancellation
    /// Only a name lookup can be interrupted; no socket is left open.
    pub async fn bind(addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        let addrs = resolve(&addr).await?;
        each_addr(addrs, |a| async move {
            let s = mio::net::UdpSocket::bind(a).map_err(|e| with_addr(e, "bind to", a))?;
            let local = s.local_addr().map_err(|e| with_addr(e, "bind to", a))?;
            Ok(UdpSocket {
                io: IoSource::new(s)?,
                local,
            })
        })
        .await
    }

    /// Sets the default peer: [`UdpSocket::send`] goes there and
    /// [`UdpSocket::recv`] only receives from there. A host name is resolved
    /// off the loop; the first address that works is used.
    ///
    /// # Cancellation
    /// Only a name lookup can be interrupted; the socket is unchanged.
    pub async fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        let addrs = resolve(&addr).await?;
        each_addr(addrs, |a| async move {
            self.io
                .get_ref()
                .connect(a)
                .map_err(|e| with_addr(e, "connect to", a))
        })
        .await
    }

    /// Sends one datagram to `target`; returns the bytes sent.
    ///
    /// # Cancellation
    /// Returns the cancellation without sending.
    pub async fn send_to(&self, buf: &[u8], target: SocketAddr) -> io::Result<usize> {
        wait_io(|cx| {
            self.io
                .poll_io(Dir::Write, cx, |s| s.send_to(buf, target))
                .map_err(|e| with_addr(e, "send to", target))
        })
        .await
    }

    /// Receives one datagram into `buf` (the excess of a longer one is
    /// discarded); returns its length and sender.
    ///
    /// # Cancellation
    /// Returns the cancellation without receiving: no datagram is lost.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        wait_io(|cx| {
            self.io
                .poll_io(Dir::Read, cx, |s| s.recv_from(buf))
                .map_err(|e| with_addr(e, "receive on", self.local))
        })
        .await
    }

    /// Sends one datagram to the peer set by [`UdpSocket::connect`].
    ///
    /// # Cancellation
    /// Returns the cancellation without sending.
    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        wait_io(|cx| {
            self.io
                .poll_io(Dir::Write, cx, |s| s.send(buf))
                .map_err(|e| self.peer_error(e, "send to"))
        })
        .await
    }

    /// Receives one datagram from the peer set by [`UdpSocket::connect`].
    ///
    /// # Cancellation
    /// Returns the cancellation without receiving: no datagram is lost.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        wait_io(|cx| {
            self.io
                .poll_io(Dir::Read, cx, |s| s.recv(buf))
                .map_err(|e| self.peer_error(e, "receive from"))
        })
        .await
    }

    fn peer_error(&self, e: io::Error, op: &str) -> io::Error {
        match self.peer_addr() {
            Ok(peer) => with_addr(e, op, peer),
            Err(_) => with_addr(e, &format!("{op} the peer of"), self.local),
        }
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }

    /// The peer set by [`UdpSocket::connect`] (`NotConnected` if none).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr()
    }

    /// Allows sending to broadcast addresses when `on`.
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.io.get_ref().set_broadcast(on)
    }
}

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpSocket")
            .field("local", &self.local)
            .finish()
    }
}
