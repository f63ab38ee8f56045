//! Streams: `open_connection`, `start_server`, `open_unix_connection`,
//! `start_unix_server`, `StreamReader`, `StreamWriter` (asyncio's
//! `streams.py`). The same reader and writer also serve a child's pipes
//! (`subprocess.rs`).

mod byte_stream;
mod reader;
mod server;
mod transport;
#[cfg(unix)]
mod unix;
mod writer;

use std::fmt;
use std::io;

pub use reader::StreamReader;
pub use server::{start_server, Server};
#[cfg(unix)]
pub use unix::{open_unix_connection, start_unix_server};
pub use writer::StreamWriter;

use crate::net::TcpStream;

/// Opens a TCP connection to `host:port` and returns its reading and
/// writing halves (`asyncio.open_connection`). A host name is resolved off
/// the loop; each address is tried in turn.
///
/// ```
/// asyncio::run(async {
///     let err = asyncio::open_connection("127.0.0.1", 1).await.unwrap_err();
///     assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
///     assert!(err.to_string().contains("127.0.0.1:1"));
/// });
/// ```
///
/// # Errors
/// As [`TcpStream::connect`]: the OS error, naming the address.
///
/// # Cancellation
/// Nothing is left open.
pub async fn open_connection(host: &str, port: u16) -> io::Result<(StreamReader, StreamWriter)> {
    let stream = TcpStream::connect((host, port)).await?;
    let t = transport::Transport::new(Box::new(stream), None);
    Ok((StreamReader::new(t.clone()), StreamWriter::new(t)))
}

/// The reader of a child's stdout or stderr pipe.
#[cfg(unix)]
pub(crate) fn pipe_reader(
    pipe: crate::io::stream::IoStream<mio::unix::pipe::Receiver, String>,
) -> StreamReader {
    StreamReader::new(transport::Transport::new(Box::new(pipe), None))
}

/// The writer of a child's stdin pipe.
#[cfg(unix)]
pub(crate) fn pipe_writer(
    pipe: crate::io::stream::IoStream<mio::unix::pipe::Sender, String>,
) -> StreamWriter {
    StreamWriter::new(transport::Transport::new(Box::new(pipe), None))
}

/// End of file came before a read was complete
/// ([`StreamReader::readexactly`], [`StreamReader::readuntil`]). It travels
/// inside an `io::Error` of kind
/// [`UnexpectedEof`](io::ErrorKind::UnexpectedEof); get it back with
/// `err.get_ref().and_then(|e| e.downcast_ref::<IncompleteReadError>())`.
///
/// ```
/// # asyncio::run(async {
/// let server = asyncio::start_server(
///     |_r, w| async move { w.write(b"no end"); w.close() }, "127.0.0.1", 0).await.unwrap();
/// let port = server.local_addrs()[0].port();
/// let (mut reader, _w) = asyncio::open_connection("127.0.0.1", port).await.unwrap();
/// let err = reader.readuntil(b"\n").await.unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
/// let inc = err.get_ref().and_then(|e| e.downcast_ref::<asyncio::IncompleteReadError>());
/// assert_eq!(inc.unwrap().partial, b"no end");
/// # });
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncompleteReadError {
    /// The bytes read before end of file.
    pub partial: Vec<u8>,
    /// How many were asked for (`None` for `readuntil`).
    pub expected: Option<usize>,
}

impl fmt::Display for IncompleteReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.expected {
            Some(n) => write!(
                f,
                "{} bytes read on a total of {n} expected bytes",
                self.partial.len()
            ),
            None => write!(
                f,
                "{} bytes read on a total of undefined expected bytes",
                self.partial.len()
            ),
        }
    }
}

impl std::error::Error for IncompleteReadError {}

/// The buffer limit was reached before the separator was found
/// ([`StreamReader::readuntil`], [`StreamReader::readline`]). It travels
/// inside an `io::Error` of kind [`InvalidData`](io::ErrorKind::InvalidData).
///
/// ```
/// # asyncio::run(async {
/// let server = asyncio::start_server(
///     |_r, w| async move { w.write(b"a long line\n"); w.close() }, "127.0.0.1", 0).await.unwrap();
/// let port = server.local_addrs()[0].port();
/// let (mut reader, _w) = asyncio::open_connection("127.0.0.1", port).await.unwrap();
/// reader.set_limit(4);
/// let err = reader.readuntil(b"\n").await.unwrap_err();
/// let overrun = err.get_ref().and_then(|e| e.downcast_ref::<asyncio::LimitOverrunError>());
/// assert_eq!(overrun.unwrap().consumed, 11);
/// # });
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitOverrunError {
    message: &'static str,
    /// How many bytes to consume to get past the overrun.
    pub consumed: usize,
}

impl fmt::Display for LimitOverrunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message)
    }
}

impl std::error::Error for LimitOverrunError {}
