//! Sockets on the loop: TCP, UDP and Unix stream sockets.
//!
//! Every socket is registered with the running loop's reactor when it is
//! made, and must be used from that loop's tasks (the types are `!Send`).
//! Every operation that can wait is a checkpoint: when the code awaiting it
//! is cancelled, it returns an `io::Error` wrapping the
//! [`CancelledError`](crate::CancelledError) (see [`crate::io`] for how to
//! test for it and get it back). OS errors keep their
//! [`ErrorKind`](std::io::ErrorKind), and their message names the address
//! concerned. Dropping a socket closes it.
//!
//! The loop's reactor (epoll, through `mio`) is created with the first
//! socket; a loop that never does I/O never opens it. Run programs that wait
//! for the network on the real clock: a [virtual
//! clock](crate::RunnerBuilder::virtual_time) polls for I/O without waiting
//! and then jumps to the next timer, so a peer's answer would always come
//! "too late" for a timeout.
//!
//! For line- and length-oriented protocols, the buffered
//! [streams](crate::open_connection) are usually easier.
//!
//! # `futures-io`
//!
//! [`TcpStream`] and [`UnixStream`] implement
//! [`futures_io::AsyncRead`] and [`futures_io::AsyncWrite`], so the
//! adapters of the `futures` crate (`AsyncReadExt`, `copy`, codecs) work on
//! them. Each `poll_read` and `poll_write` is a checkpoint, like the
//! methods: a cancellation comes out as an `io::Error` wrapping the
//! [`CancelledError`](crate::CancelledError), and a cancelled read loses no
//! byte. `poll_flush` has nothing to do (there is no buffer in user space)
//! and `poll_close` shuts the write side down, so the peer reads end of
//! file. The traits take `&mut self`: to read in one task and write in
//! another, use the methods through an `Rc` instead.
//!
//! There is no future to hold the checkpoint of a `poll_read`, so the
//! stream holds it, one per direction. If the future of a waiting read is
//! dropped (the losing branch of a `select!`), the stream stays registered
//! as waiting until its next poll of that direction or until it is dropped:
//! a cancellation delivered to the task meanwhile is also returned by that
//! next poll, even if the task handled it elsewhere. The methods (`read`,
//! `write`) have no such carry-over.
//!
//! ```
//! use futures::io::{AsyncReadExt, AsyncWriteExt};
//! asyncio::run(async {
//!     let (mut a, mut b) = asyncio::net::UnixStream::pair().unwrap();
//!     a.write_all(b"over futures-io").await.unwrap();
//!     a.close().await.unwrap(); // shuts down the write side
//!     let mut got = String::new();
//!     b.read_to_string(&mut got).await.unwrap();
//!     assert_eq!(got, "over futures-io");
//! });
//! ```
//!
//! A socket belongs to its loop's thread:
//!
//! ```compile_fail
//! fn send<T: Send>(_: T) {}
//! asyncio::run(async {
//!     let s = asyncio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
//!     send(s); // error: `Rc<...>` cannot be sent between threads safely
//! });
//! ```

mod addr;
mod tcp;
mod udp;
#[cfg(unix)]
mod unix;

pub(crate) use addr::resolve;
pub use addr::ToSocketAddrs;
pub use tcp::{TcpListener, TcpStream};
pub use udp::UdpSocket;
#[cfg(unix)]
pub use unix::{UnixListener, UnixStream};

/// Implements the `futures-io` traits for a stream type with the fields `s`
/// (an `IoStream`), `read_cp` and `write_cp` (see the module doc).
macro_rules! futures_io_impl {
    ($t:ty) => {
        impl futures_io::AsyncRead for $t {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &mut [u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                let this = self.get_mut();
                let s = &this.s;
                this.read_cp.poll_io(cx, |cx| s.poll_read(cx, buf))
            }
        }

        impl futures_io::AsyncWrite for $t {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                let this = self.get_mut();
                let s = &this.s;
                this.write_cp.poll_io(cx, |cx| s.poll_write(cx, buf))
            }

            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::task::Poll::Ready(Ok(()))
            }

            fn poll_close(
                self: std::pin::Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::task::Poll::Ready(self.s.shutdown(std::net::Shutdown::Write))
            }
        }
    };
}
use futures_io_impl;
