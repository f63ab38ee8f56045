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
