//! `start_server` and `Server`; the server itself serves any kind of
//! listening socket ([`Listen`]: TCP here, Unix in `unix.rs`).

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::Waker;
use std::time::Duration;

use super::byte_stream::ByteStream;
use super::transport::Transport;
use super::{StreamReader, StreamWriter};
use crate::cancel::error::CancelledError;
use crate::io::reactor::Hook;
use crate::io::wait::wait_fn;
use crate::net::{resolve, TcpListener};

type Handler = Rc<dyn Fn(StreamReader, StreamWriter) -> Pin<Box<dyn Future<Output = ()>>>>;

/// A listening socket under a server.
pub(crate) trait Listen {
    /// Takes one pending connection without waiting (`WouldBlock` if none).
    fn try_accept(&self) -> io::Result<Box<dyn ByteStream>>;
    /// Runs `hook` on the loop whenever connections may be pending.
    fn set_accept_hook(&self, hook: Option<Hook>);
}

impl Listen for TcpListener {
    fn try_accept(&self) -> io::Result<Box<dyn ByteStream>> {
        let (s, _) = TcpListener::try_accept(self)?;
        Ok(Box::new(s))
    }

    fn set_accept_hook(&self, hook: Option<Hook>) {
        TcpListener::set_accept_hook(self, hook);
    }
}

/// How many connections one readiness event accepts at most (asyncio's
/// backlog default).
const ACCEPT_BATCH: usize = 100;
/// How long accepting pauses after an error such as running out of file
/// descriptors (asyncio's `ACCEPT_RETRY_DELAY`).
const ACCEPT_RETRY: Duration = Duration::from_secs(1);

struct ServerState {
    me: Weak<ServerState>,
    listeners: RefCell<Vec<Box<dyn Listen>>>,
    addrs: Vec<SocketAddr>,
    path: Option<PathBuf>,
    handler: Handler,
    closed: Cell<bool>,
    active: Cell<usize>,
    clients: RefCell<Vec<Weak<Transport>>>,
    closed_waiters: RefCell<Vec<Waker>>,
    idle_waiters: RefCell<Vec<Waker>>,
}

/// Counts one connection of a server as active until it is closed.
pub(crate) struct ConnGuard(Rc<ServerState>);

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let s = &self.0;
        s.active.set(s.active.get() - 1);
        if s.active.get() == 0 {
            wake_all(&s.idle_waiters);
        }
    }
}

fn wake_all(list: &RefCell<Vec<Waker>>) {
    let list = std::mem::take(&mut *list.borrow_mut());
    for w in list {
        w.wake();
    }
}

fn add_waiter(list: &RefCell<Vec<Waker>>, waker: &Waker) {
    let mut list = list.borrow_mut();
    if !list.iter().any(|w| w.will_wake(waker)) {
        list.push(waker.clone());
    }
}

impl ServerState {
    fn arm(&self) {
        let listeners = self.listeners.borrow();
        for (i, l) in listeners.iter().enumerate() {
            let me = self.me.upgrade().expect("a live server");
            l.set_accept_hook(Some(Rc::new(move || me.accept_ready(i))));
        }
    }

    /// The accept hook of listener `i`: takes the pending connections and
    /// starts a handler task for each. After a full batch it goes on at
    /// the next turn of the loop: readiness is edge-triggered, so no new
    /// event would come for the connections still queued.
    fn accept_ready(&self, i: usize) {
        let mut accepted = Vec::new();
        let mut failed = None;
        let mut more = false;
        {
            let listeners = self.listeners.borrow();
            let Some(l) = listeners.get(i) else { return };
            loop {
                if accepted.len() == ACCEPT_BATCH {
                    more = true;
                    break;
                }
                match l.try_accept() {
                    Ok(s) => accepted.push(s),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    // The peer gave up before we took it: nothing to do.
                    Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => {}
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            if failed.is_some() {
                l.set_accept_hook(None);
            }
        }
        for s in accepted {
            self.start_connection(s);
        }
        if more {
            if let Ok(lp) = crate::get_running_loop() {
                let me = self.me.upgrade().expect("a live server");
                lp.call_soon(move || me.accept_ready(i));
            }
        }
        if let Some(e) = failed {
            // Out of descriptors or similar: report, pause, then retry.
            let Ok(lp) = crate::get_running_loop() else {
                return;
            };
            lp.inner()
                .report(format!("asyncio server: accept() failed: {e}"), None);
            let me = self.me.upgrade().expect("a live server");
            lp.call_later(ACCEPT_RETRY, move || {
                if !me.closed.get() {
                    me.arm();
                }
            });
        }
    }

    fn start_connection(&self, s: Box<dyn ByteStream>) {
        let me = self.me.upgrade().expect("a live server");
        me.active.set(me.active.get() + 1);
        let t = Transport::new(s, Some(ConnGuard(me)));
        {
            let mut clients = self.clients.borrow_mut();
            // Forget closed connections before the list would grow: at
            // most once per doubling, so accepting stays O(1) amortized.
            if clients.len() == clients.capacity() {
                clients.retain(|c| c.strong_count() > 0);
            }
            clients.push(Rc::downgrade(&t));
        }
        let fut = (self.handler)(StreamReader::new(t.clone()), StreamWriter::new(t));
        drop(crate::create_task(fut));
    }

    fn close(&self) {
        if self.closed.replace(true) {
            return;
        }
        let listeners = std::mem::take(&mut *self.listeners.borrow_mut());
        drop(listeners); // stop listening: the sockets close
        wake_all(&self.closed_waiters);
        if self.active.get() == 0 {
            wake_all(&self.idle_waiters);
        }
    }

    fn clients(&self) -> Vec<Rc<Transport>> {
        self.clients
            .borrow()
            .iter()
            .filter_map(Weak::upgrade)
            .collect()
    }
}

/// A listening server, from [`start_server`] or
/// [`start_unix_server`](crate::start_unix_server) (asyncio's `Server`).
///
/// It serves from the moment it is made; dropping the handle does not stop
/// it (the loop keeps it, as asyncio does) — [`Server::close`] does.
/// Connections outlive the server's close unless
/// [`Server::close_clients`] closes them too.
///
/// ```
/// use std::rc::Rc;
/// asyncio::run(async {
///     let server = asyncio::start_server(|_r, w| async move { w.write(b"hi") }, "127.0.0.1", 0)
///         .await
///         .unwrap();
///     assert!(server.is_serving());
///     let server = Rc::new(server);
///     let s = server.clone();
///     let mut serving = asyncio::create_task(async move { s.serve_forever().await });
///     let (mut reader, _w) =
///         asyncio::open_connection("127.0.0.1", server.local_addrs()[0].port()).await.unwrap();
///     assert_eq!(reader.readexactly(2).await.unwrap(), b"hi");
///     serving.cancel(); // closes the server, as in asyncio
///     assert!((&mut serving).await.is_err());
///     assert!(!server.is_serving());
/// });
/// ```
pub struct Server {
    state: Rc<ServerState>,
}

/// Starts a TCP server on `host:port` (every address `host` resolves to;
/// port 0 picks a free port) and returns it serving: for each connection,
/// `handler(reader, writer)` runs in a new task (`asyncio.start_server`).
/// The handler's output is dropped.
///
/// ```
/// asyncio::run(async {
///     let server = asyncio::start_server(
///         |mut reader, writer| async move {
///             while let Ok(line) = reader.readline().await {
///                 if line.is_empty() {
///                     break; // end of file
///                 }
///                 writer.write(&line.to_ascii_uppercase());
///                 if writer.drain().await.is_err() {
///                     break;
///                 }
///             }
///         },
///         "127.0.0.1",
///         0,
///     )
///     .await
///     .unwrap();
///     let port = server.local_addrs()[0].port();
///     let (mut reader, writer) = asyncio::open_connection("127.0.0.1", port).await.unwrap();
///     writer.write(b"hello\n");
///     assert_eq!(reader.readline().await.unwrap(), b"HELLO\n");
///     server.close();
///     writer.close();
///     server.wait_closed().await.unwrap();
/// });
/// ```
///
/// # Errors
/// If `host` does not resolve, or an address cannot be bound (the message
/// names it).
///
/// # Cancellation
/// Only the name lookup can be interrupted; nothing is left listening.
pub async fn start_server<H, Fut>(handler: H, host: &str, port: u16) -> io::Result<Server>
where
    H: Fn(StreamReader, StreamWriter) -> Fut + 'static,
    Fut: Future + 'static,
{
    let mut addrs = resolve(&(host, port)).await?;
    addrs.dedup();
    let mut listeners: Vec<Box<dyn Listen>> = Vec::new();
    let mut bound = Vec::new();
    for a in addrs {
        let l = TcpListener::bind_one(a)?;
        bound.push(l.local_addr()?);
        listeners.push(Box::new(l));
    }
    Ok(serve(listeners, bound, None, handler))
}

/// Starts serving on `listeners` (bound to `addrs` or `path`): the
/// server's state, armed.
pub(crate) fn serve<H, Fut>(
    listeners: Vec<Box<dyn Listen>>,
    addrs: Vec<SocketAddr>,
    path: Option<PathBuf>,
    handler: H,
) -> Server
where
    H: Fn(StreamReader, StreamWriter) -> Fut + 'static,
    Fut: Future + 'static,
{
    let handler: Handler = Rc::new(move |r, w| {
        let fut = handler(r, w);
        Box::pin(async move {
            drop(fut.await);
        })
    });
    let state = Rc::new_cyclic(|me| ServerState {
        me: me.clone(),
        addrs,
        path,
        listeners: RefCell::new(listeners),
        handler,
        closed: Cell::new(false),
        active: Cell::new(0),
        clients: RefCell::new(Vec::new()),
        closed_waiters: RefCell::new(Vec::new()),
        idle_waiters: RefCell::new(Vec::new()),
    });
    state.arm();
    Server { state }
}

impl Server {
    /// The addresses a TCP server listens on (asyncio's `server.sockets`),
    /// with the ports actually bound; empty for a Unix server.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.state.addrs.clone()
    }

    /// The path a Unix server listens on; `None` for a TCP server.
    ///
    /// ```
    /// # asyncio::run(async {
    /// let path = std::env::temp_dir().join(format!("asyncio-doc-sp-{}.sock", std::process::id()));
    /// let server = asyncio::start_unix_server(|_r, _w| async {}, &path).await.unwrap();
    /// assert_eq!(server.path(), Some(path.as_path()));
    /// assert!(server.local_addrs().is_empty());
    /// # });
    /// ```
    pub fn path(&self) -> Option<&Path> {
        self.state.path.as_deref()
    }

    /// Whether the server still accepts connections.
    pub fn is_serving(&self) -> bool {
        !self.state.closed.get()
    }

    /// Stops listening: the listening sockets close at once (a Unix server
    /// also removes its socket file, unless another socket replaced it).
    /// Connections already accepted go on (see [`Server::close_clients`]).
    /// Idempotent.
    pub fn close(&self) {
        self.state.close();
    }

    /// Closes every connection of this server still open, each once its
    /// write buffer is sent (Python 3.13's `close_clients`).
    pub fn close_clients(&self) {
        for t in self.state.clients() {
            t.close();
        }
    }

    /// Closes every connection of this server still open now, dropping
    /// their write buffers (Python 3.13's `abort_clients`).
    pub fn abort_clients(&self) {
        for t in self.state.clients() {
            t.abort();
        }
    }

    /// The number of connections of this server still open.
    pub fn active_connections(&self) -> usize {
        self.state.active.get()
    }

    /// Waits until the server is closed and every connection it accepted
    /// is closed (Python 3.12's `wait_closed`).
    ///
    /// # Cancellation
    /// Returns the cancellation; the server is left as it is.
    pub async fn wait_closed(&self) -> Result<(), CancelledError> {
        let s = &self.state;
        wait_fn(|cx| {
            if !s.closed.get() {
                add_waiter(&s.closed_waiters, cx.waker());
                std::task::Poll::Pending
            } else if s.active.get() > 0 {
                add_waiter(&s.idle_waiters, cx.waker());
                std::task::Poll::Pending
            } else {
                std::task::Poll::Ready(())
            }
        })
        .await
    }

    /// Serves until the server is closed (returning `Ok`) or the awaiting
    /// task is cancelled (`serve_forever`).
    ///
    /// # Cancellation
    /// Closes the server, waits for its connections to close (as
    /// [`Server::wait_closed`]), then returns the cancellation.
    pub async fn serve_forever(&self) -> Result<(), CancelledError> {
        let s = &self.state;
        let served = wait_fn(|cx| {
            if s.closed.get() {
                std::task::Poll::Ready(())
            } else {
                add_waiter(&s.closed_waiters, cx.waker());
                std::task::Poll::Pending
            }
        })
        .await;
        match served {
            Ok(()) => Ok(()),
            Err(cancelled) => {
                self.close();
                let _ = self.wait_closed().await;
                Err(cancelled)
            }
        }
    }
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("addrs", &self.state.addrs)
            .field("path", &self.state.path)
            .field("serving", &self.is_serving())
            .field("active", &self.state.active.get())
            .finish()
    }
}
