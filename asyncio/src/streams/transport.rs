//! The transport under a stream pair: one byte stream (a TCP connection, a
//! Unix stream socket, a child's pipe: see [`ByteStream`]), its write
//! buffer and its lifecycle (asyncio's `_SelectorSocketTransport` and
//! `_UnixWritePipeTransport`).
//!
//! # Writing
//!
//! `write` sends what the socket takes at once and buffers the rest; while
//! the buffer is not empty, the socket's write hook (see
//! `io/reactor.rs`) flushes it whenever the socket becomes writable. The
//! hook holds the transport strongly, so buffered bytes are sent even after
//! both halves are dropped; the loop's close breaks that cycle. Above the
//! high-water mark (64 KiB) writing is *paused*: `drain` waits until the
//! buffer falls to the low-water mark (16 KiB). The `futures-io` writer
//! (`poll_write`) instead takes bytes only up to the high-water mark, and
//! waits as `drain` does when the buffer is full.
//!
//! # Closing
//!
//! `close` sends what is buffered, then closes the socket; `abort`, a write
//! error and a read error close it at once. A closed transport reads as end
//! of file (or as the error), and wakes whoever waits in `drain`, `flush`
//! or `wait_closed`. `write_eof` shuts the write side down once the buffer
//! is sent; a pipe, which cannot, is closed instead.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};

use super::byte_stream::ByteStream;
use super::server::ConnGuard;

/// asyncio's default write-buffer limits.
const HIGH_WATER: usize = 64 * 1024;
const LOW_WATER: usize = HIGH_WATER / 4;
/// How much a read asks the socket for at once.
const READ_CHUNK: usize = 32 * 1024;

pub(crate) struct Transport {
    me: Weak<Transport>,
    sock: RefCell<Option<Box<dyn ByteStream>>>,
    peer: Option<SocketAddr>,
    local: Option<SocketAddr>,
    /// The peer as it reads in messages.
    name: String,
    wbuf: RefCell<VecDeque<u8>>,
    hook_armed: Cell<bool>,
    paused: Cell<bool>,
    closing: Cell<bool>,
    eof_requested: Cell<bool>,
    eof_sent: Cell<bool>,
    /// The error that closed the transport, as kind and message.
    error: RefCell<Option<(io::ErrorKind, String)>>,
    drain_waiters: RefCell<Vec<Waker>>,
    flush_waiters: RefCell<Vec<Waker>>,
    close_waiters: RefCell<Vec<Waker>>,
    conn: RefCell<Option<ConnGuard>>,
}

fn add_waiter(list: &RefCell<Vec<Waker>>, waker: &Waker) {
    let mut list = list.borrow_mut();
    if !list.iter().any(|w| w.will_wake(waker)) {
        list.push(waker.clone());
    }
}

fn wake_all(list: &RefCell<Vec<Waker>>) {
    let list = std::mem::take(&mut *list.borrow_mut());
    for w in list {
        w.wake();
    }
}

impl Transport {
    pub(crate) fn new(sock: Box<dyn ByteStream>, conn: Option<ConnGuard>) -> Rc<Transport> {
        let peer = sock.peer_addr();
        let local = sock.local_addr();
        let name = sock.describe();
        Rc::new_cyclic(|me| Transport {
            me: me.clone(),
            sock: RefCell::new(Some(sock)),
            peer,
            local,
            name,
            wbuf: RefCell::new(VecDeque::new()),
            hook_armed: Cell::new(false),
            paused: Cell::new(false),
            closing: Cell::new(false),
            eof_requested: Cell::new(false),
            eof_sent: Cell::new(false),
            error: RefCell::new(None),
            drain_waiters: RefCell::new(Vec::new()),
            flush_waiters: RefCell::new(Vec::new()),
            close_waiters: RefCell::new(Vec::new()),
            conn: RefCell::new(conn),
        })
    }

    pub(crate) fn peer(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// The peer as it reads in messages.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn local(&self) -> Option<SocketAddr> {
        self.local
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.sock.borrow().is_none()
    }

    pub(crate) fn is_closing(&self) -> bool {
        self.closing.get() || self.is_closed()
    }

    pub(crate) fn buffered(&self) -> usize {
        self.wbuf.borrow().len()
    }

    fn stored_error(&self) -> Option<io::Error> {
        self.error
            .borrow()
            .as_ref()
            .map(|(k, m)| io::Error::new(*k, m.clone()))
    }

    // ----- reading -----

    /// Reads what the socket has into the end of `buf`: `Ok(0)` at end of
    /// file or once the transport is closed (the error that closed it, if
    /// any, is returned instead). A read error closes the transport, as in
    /// asyncio: later reads, `drain` and `wait_closed` report it.
    pub(crate) fn poll_read_into(
        &self,
        cx: &mut Context<'_>,
        buf: &mut Vec<u8>,
    ) -> Poll<io::Result<usize>> {
        let start = buf.len();
        let r = {
            let sock = self.sock.borrow();
            let Some(s) = &*sock else {
                return Poll::Ready(match self.stored_error() {
                    Some(e) => Err(e),
                    None => Ok(0),
                });
            };
            buf.resize(start + READ_CHUNK, 0);
            s.poll_read(cx, &mut buf[start..])
        };
        let n = match &r {
            Poll::Ready(Ok(n)) => *n,
            _ => 0,
        };
        buf.truncate(start + n);
        if let Poll::Ready(Err(e)) = &r {
            self.fatal(io::Error::new(e.kind(), e.to_string()));
        }
        r
    }

    // ----- writing -----

    /// Sends or buffers `data` (see the module doc). Ignored once the
    /// transport is closing or closed.
    pub(crate) fn write(&self, data: &[u8]) {
        if data.is_empty() || self.is_closing() || self.eof_requested.get() {
            return;
        }
        let mut rest = data;
        if self.wbuf.borrow().is_empty() {
            let r = match &*self.sock.borrow() {
                Some(s) => s.try_write(data),
                None => return,
            };
            match r {
                Ok(n) => rest = &data[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return self.fatal(e),
            }
        }
        if rest.is_empty() {
            return;
        }
        self.wbuf.borrow_mut().extend(rest);
        self.arm_hook();
        if self.wbuf.borrow().len() > HIGH_WATER {
            self.paused.set(true);
        }
    }

    fn arm_hook(&self) {
        if self.hook_armed.replace(true) {
            return;
        }
        let me = self.me.upgrade().expect("a live transport");
        if let Some(s) = &*self.sock.borrow() {
            s.set_write_hook(Some(Rc::new(move || me.flush())));
        }
    }

    fn disarm_hook(&self) {
        if self.hook_armed.replace(false) {
            if let Some(s) = &*self.sock.borrow() {
                s.set_write_hook(None);
            }
        }
    }

    /// The `futures-io` write (see the module doc): takes up to the room
    /// left below the high-water mark, or waits until the buffer is
    /// drained to the low-water mark.
    pub(crate) fn poll_write(&self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        if let Some(e) = self.stored_error() {
            return Poll::Ready(Err(e));
        }
        if self.is_closing() || self.eof_requested.get() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                format!("write to {} after close", self.name),
            )));
        }
        let room = HIGH_WATER.saturating_sub(self.buffered());
        if room == 0 && !data.is_empty() {
            self.paused.set(true);
            add_waiter(&self.drain_waiters, cx.waker());
            return Poll::Pending;
        }
        let n = data.len().min(room);
        self.write(&data[..n]);
        match self.stored_error() {
            Some(e) => Poll::Ready(Err(e)),
            None => Poll::Ready(Ok(n)),
        }
    }

    /// Waits until the buffer is empty (every byte handed to the OS).
    pub(crate) fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(e) = self.stored_error() {
            return Poll::Ready(Err(e));
        }
        if self.buffered() == 0 {
            return Poll::Ready(Ok(()));
        }
        add_waiter(&self.flush_waiters, cx.waker());
        Poll::Pending
    }

    /// Sends what the socket takes from the buffer (the write hook).
    fn flush(&self) {
        let mut failed = None;
        {
            let sock = self.sock.borrow();
            let Some(s) = &*sock else { return };
            let mut buf = self.wbuf.borrow_mut();
            while !buf.is_empty() {
                let (chunk, _) = buf.as_slices();
                match s.try_write(chunk) {
                    Ok(0) => {
                        failed = Some(io::Error::from(io::ErrorKind::WriteZero));
                        break;
                    }
                    Ok(n) => {
                        buf.drain(..n);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
        }
        if let Some(e) = failed {
            return self.fatal(e);
        }
        if self.paused.get() && self.buffered() <= LOW_WATER {
            self.paused.set(false);
            wake_all(&self.drain_waiters);
        }
        if self.buffered() == 0 {
            self.disarm_hook();
            wake_all(&self.flush_waiters);
            self.after_flush();
        }
    }

    /// The buffer is empty: finish a pending close or `write_eof`.
    fn after_flush(&self) {
        if self.closing.get() {
            self.close_now();
        } else if self.eof_requested.get() && !self.eof_sent.replace(true) {
            let half_closed = match &*self.sock.borrow() {
                Some(s) => s.shutdown_write(),
                None => true,
            };
            if !half_closed {
                self.close_now();
            }
        }
    }

    /// Waits while writing is paused (see the module doc). `Err` if the
    /// transport was closed by an error, or was already closed when the
    /// wait began (asyncio's "Connection lost").
    pub(crate) fn poll_drain(
        &self,
        cx: &mut Context<'_>,
        waited: &mut bool,
    ) -> Poll<io::Result<()>> {
        if let Some(e) = self.stored_error() {
            return Poll::Ready(Err(e));
        }
        if self.is_closed() {
            return Poll::Ready(if *waited {
                Ok(())
            } else {
                Err(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    format!("connection to {} lost", self.name),
                ))
            });
        }
        if !self.paused.get() {
            return Poll::Ready(Ok(()));
        }
        *waited = true;
        add_waiter(&self.drain_waiters, cx.waker());
        Poll::Pending
    }

    /// Shuts down the write side once the buffer is sent.
    pub(crate) fn write_eof(&self) {
        if self.is_closing() || self.eof_requested.replace(true) {
            return;
        }
        if self.buffered() == 0 {
            self.after_flush();
        }
    }

    // ----- closing -----

    /// Closes once the buffer is sent (`transport.close()`).
    pub(crate) fn close(&self) {
        if self.is_closing() {
            return;
        }
        self.closing.set(true);
        if self.buffered() == 0 {
            self.close_now();
        }
    }

    /// Drops the buffer and closes now (`transport.abort()`).
    pub(crate) fn abort(&self) {
        self.closing.set(true);
        self.wbuf.borrow_mut().clear();
        self.close_now();
    }

    fn fatal(&self, e: io::Error) {
        if self.error.borrow().is_none() {
            *self.error.borrow_mut() = Some((e.kind(), e.to_string()));
        }
        self.abort();
    }

    fn close_now(&self) {
        self.disarm_hook();
        let sock = self.sock.borrow_mut().take();
        if sock.is_none() {
            return;
        }
        self.wbuf.borrow_mut().clear();
        self.paused.set(false);
        drop(sock); // deregisters (waking a waiting reader) and closes
        let conn = self.conn.borrow_mut().take();
        drop(conn);
        wake_all(&self.drain_waiters);
        wake_all(&self.flush_waiters);
        wake_all(&self.close_waiters);
    }

    /// Waits until the socket is closed; `Err` with the error that closed
    /// it, if any.
    pub(crate) fn poll_closed(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.is_closed() {
            add_waiter(&self.close_waiters, cx.waker());
            return Poll::Pending;
        }
        Poll::Ready(match self.stored_error() {
            Some(e) => Err(e),
            None => Ok(()),
        })
    }
}
