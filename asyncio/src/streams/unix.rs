//! The streams on Unix stream sockets: `open_unix_connection` and
//! `start_unix_server`.

use std::future::Future;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::byte_stream::ByteStream;
use super::server::{serve, Listen, Server};
use super::transport::Transport;
use super::{StreamReader, StreamWriter};
use crate::io::reactor::Hook;
use crate::net::{UnixListener, UnixStream};

/// Connects to the Unix socket at `path` and returns the reading and
/// writing halves (`asyncio.open_unix_connection`).
///
/// ```
/// # asyncio::run(async {
/// let path = std::env::temp_dir().join(format!("asyncio-doc-ouc-{}.sock", std::process::id()));
/// let server = asyncio::start_unix_server(
///     |mut r, w| async move {
///         let line = r.readline().await.unwrap();
///         w.write(&line.to_ascii_uppercase());
///     },
///     &path,
/// )
/// .await
/// .unwrap();
/// let (mut reader, writer) = asyncio::open_unix_connection(&path).await.unwrap();
/// writer.write(b"hello\n");
/// assert_eq!(reader.readline().await.unwrap(), b"HELLO\n");
/// server.close(); // removes the socket file
/// assert!(!path.exists());
/// # });
/// ```
///
/// # Errors
/// As [`UnixStream::connect`]: the OS error, naming the path.
///
/// # Cancellation
/// Nothing is left open.
pub async fn open_unix_connection(
    path: impl AsRef<Path>,
) -> io::Result<(StreamReader, StreamWriter)> {
    let stream = UnixStream::connect(path).await?;
    let t = Transport::new(Box::new(stream), None);
    Ok((StreamReader::new(t.clone()), StreamWriter::new(t)))
}

/// Starts a server on a Unix socket at `path` and returns it serving: for
/// each connection, `handler(reader, writer)` runs in a new task
/// (`asyncio.start_unix_server`). A stale socket file at `path` is
/// removed first (any other file there is an error), and the server
/// removes its socket file when it is closed, as asyncio does.
///
/// ```
/// # asyncio::run(async {
/// let path = std::env::temp_dir().join(format!("asyncio-doc-sus-{}.sock", std::process::id()));
/// let server = asyncio::start_unix_server(
///     |_r, w| async move { w.write(b"hi from a Unix socket") },
///     &path,
/// )
/// .await
/// .unwrap();
/// let (mut reader, _w) = asyncio::open_unix_connection(&path).await.unwrap();
/// assert_eq!(reader.read_to_end().await.unwrap(), b"hi from a Unix socket");
/// server.close();
/// server.wait_closed().await.unwrap();
/// # });
/// ```
///
/// # Errors
/// The OS error, naming the path; `AlreadyExists` if something other than
/// a socket is at `path`.
///
/// # Cancellation
/// Never suspends.
pub async fn start_unix_server<H, Fut>(handler: H, path: impl AsRef<Path>) -> io::Result<Server>
where
    H: Fn(StreamReader, StreamWriter) -> Fut + 'static,
    Fut: Future + 'static,
{
    let path = path.as_ref();
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "bind to {}: the path exists and is not a socket",
                    path.display()
                ),
            ));
        }
        let _ = std::fs::remove_file(path);
    }
    let l = UnixListener::bind(path)?;
    let id = std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()));
    let socket = ServerSocket {
        l,
        path: path.to_path_buf(),
        id,
    };
    Ok(serve(
        vec![Box::new(socket)],
        Vec::new(),
        Some(path.to_path_buf()),
        handler,
    ))
}

/// A Unix server's listening socket: closing it removes the socket file,
/// if the file is still this socket's.
struct ServerSocket {
    l: UnixListener,
    path: PathBuf,
    /// The socket file's device and inode, as bound.
    id: Option<(u64, u64)>,
}

impl Listen for ServerSocket {
    fn try_accept(&self) -> io::Result<Box<dyn ByteStream>> {
        let (s, _) = self.l.try_accept()?;
        Ok(Box::new(s))
    }

    fn set_accept_hook(&self, hook: Option<Hook>) {
        self.l.set_accept_hook(hook);
    }
}

impl Drop for ServerSocket {
    fn drop(&mut self) {
        let now = std::fs::symlink_metadata(&self.path)
            .ok()
            .map(|m| (m.dev(), m.ino()));
        if now.is_some() && now == self.id {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
