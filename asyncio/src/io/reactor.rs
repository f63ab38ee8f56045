//! The reactor: readiness of the loop's sockets, on `mio` (epoll on Linux).
//!
//! # The model
//!
//! Each socket is registered once, for both directions, edge-triggered, under
//! a token that is its key in the reactor's slab of [`SourceState`]s. A
//! source keeps one *readiness* bit per direction:
//!
//! - it starts set (optimistic: the first read or write is simply tried);
//! - an event for the token sets it (a hang-up or an error counts as ready
//!   in both directions, so the next operation reports it);
//! - an operation that fails with `WouldBlock` clears it, and only then
//!   does the caller wait, registering its waker in the direction's list.
//!
//! Readiness is only ever changed on the loop's thread, and events are only
//! read in the loop's idle wait, between two task steps. So no event can slip
//! between an operation's `WouldBlock` and the clearing of the bit, and the
//! bit needs no "tick" as in multi-threaded reactors.
//!
//! An event wakes every waker registered for its direction (a waker of a
//! future that is gone only causes a spurious poll) and schedules the
//! direction's *hook*, if any: a callback run on the loop (asyncio's
//! `add_reader`/`add_writer`), used by stream transports to flush their write
//! buffer and by servers to accept connections without a task of their own.
//!
//! [`IoSource`] owns a socket and its registration: dropping it deregisters
//! the socket, then closes it.
//!
//! The reactor is created on the loop's first registration; until then the
//! loop waits by parking its thread (see `runtime/idle.rs`).

use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use mio::event::Source;
use mio::{Events, Interest, Token};

use crate::runtime::context;
use crate::util::slab::Slab;

/// The token of the reactor's `mio::Waker` (other threads' wake-ups).
const WAKER: Token = Token(usize::MAX);

const READ: u8 = 0b01;
const WRITE: u8 = 0b10;

/// A direction of readiness.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dir {
    Read,
    Write,
}

impl Dir {
    fn bit(self) -> u8 {
        match self {
            Dir::Read => READ,
            Dir::Write => WRITE,
        }
    }
}

/// A callback the reactor schedules on the loop when a direction becomes
/// ready.
pub(crate) type Hook = Rc<dyn Fn()>;

/// The readiness and waiters of one registered socket.
pub(crate) struct SourceState {
    ready: Cell<u8>,
    /// Directions the peer closed (or an error ended): they stay ready.
    closed: Cell<u8>,
    readers: RefCell<Vec<Waker>>,
    writers: RefCell<Vec<Waker>>,
    read_hook: RefCell<Option<Hook>>,
    write_hook: RefCell<Option<Hook>>,
}

impl SourceState {
    fn new() -> SourceState {
        SourceState {
            ready: Cell::new(READ | WRITE),
            closed: Cell::new(0),
            readers: RefCell::new(Vec::new()),
            writers: RefCell::new(Vec::new()),
            read_hook: RefCell::new(None),
            write_hook: RefCell::new(None),
        }
    }

    fn waiters(&self, dir: Dir) -> &RefCell<Vec<Waker>> {
        match dir {
            Dir::Read => &self.readers,
            Dir::Write => &self.writers,
        }
    }

    fn hook(&self, dir: Dir) -> &RefCell<Option<Hook>> {
        match dir {
            Dir::Read => &self.read_hook,
            Dir::Write => &self.write_hook,
        }
    }

    fn is_ready(&self, dir: Dir) -> bool {
        self.ready.get() & dir.bit() != 0
    }

    fn clear(&self, dir: Dir) {
        self.ready.set(self.ready.get() & !dir.bit());
    }

    /// Clears `dir` unless its side was closed: an end of file already
    /// reported by the poller gives no further edge.
    fn clear_open(&self, dir: Dir) {
        if self.closed.get() & dir.bit() == 0 {
            self.clear(dir);
        }
    }

    #[inline]
    fn add_waiter(&self, dir: Dir, waker: &Waker) {
        let mut list = self.waiters(dir).borrow_mut();
        if !list.iter().any(|w| w.will_wake(waker)) {
            list.push(waker.clone());
        }
    }

    /// Marks `bits` ready (and `closed` of them closed); returns the
    /// wakers and hooks to run.
    fn fire(&self, bits: u8, closed: u8, wake: &mut Vec<Waker>, hooks: &mut Vec<Hook>) {
        self.ready.set(self.ready.get() | bits);
        self.closed.set(self.closed.get() | closed);
        for dir in [Dir::Read, Dir::Write] {
            if bits & dir.bit() != 0 {
                // Most directions have no waiter or one: `append`'s
                // reserve and copy cost more than moving one waker.
                let mut list = self.waiters(dir).borrow_mut();
                match list.len() {
                    0 => {}
                    1 => wake.extend(list.pop()),
                    _ => wake.append(&mut list),
                }
                if let Some(h) = &*self.hook(dir).borrow() {
                    hooks.push(h.clone());
                }
            }
        }
    }

    /// Drops every waker and hook (loop close), returning the hooks so the
    /// caller drops them outside any borrow.
    fn clear_all(&self) -> [Option<Hook>; 2] {
        self.readers.borrow_mut().clear();
        self.writers.borrow_mut().clear();
        [
            self.read_hook.borrow_mut().take(),
            self.write_hook.borrow_mut().take(),
        ]
    }
}

/// The loop's reactor (see the module doc). Lives in an `Rc`, shared by the
/// loop and every [`IoSource`] registered with it.
pub(crate) struct Reactor {
    poll: RefCell<mio::Poll>,
    events: RefCell<Events>,
    sources: RefCell<Slab<Rc<SourceState>>>,
    waker: Arc<mio::Waker>,
    /// Scratch lists for one `poll`, kept to reuse their allocations.
    woken: RefCell<(Vec<Waker>, Vec<Hook>)>,
}

impl Reactor {
    pub(crate) fn new() -> io::Result<Rc<Reactor>> {
        let poll = mio::Poll::new()?;
        let waker = Arc::new(mio::Waker::new(poll.registry(), WAKER)?);
        Ok(Rc::new(Reactor {
            poll: RefCell::new(poll),
            events: RefCell::new(Events::with_capacity(1024)),
            sources: RefCell::new(Slab::new()),
            waker,
            woken: RefCell::default(),
        }))
    }

    /// What other threads use to wake the loop out of [`Reactor::poll`].
    pub(crate) fn waker(&self) -> Arc<mio::Waker> {
        self.waker.clone()
    }

    /// Whether no socket is registered.
    pub(crate) fn is_empty(&self) -> bool {
        self.sources.borrow().iter().next().is_none()
    }

    /// Waits up to `timeout` (`None`: without limit) for events, marks the
    /// sources ready, wakes their waiters and hands their hooks to
    /// `schedule`. A wake-up from another thread only ends the wait.
    pub(crate) fn poll(&self, timeout: Option<Duration>, mut schedule: impl FnMut(Hook)) {
        let (mut wake, mut hooks) = std::mem::take(&mut *self.woken.borrow_mut());
        {
            let mut events = self.events.borrow_mut();
            if let Err(e) = self.poll.borrow_mut().poll(&mut events, timeout) {
                assert!(
                    e.kind() == io::ErrorKind::Interrupted,
                    "asyncio: waiting for I/O events failed: {e}"
                );
                return;
            }
            let sources = self.sources.borrow();
            for ev in events.iter() {
                if ev.token() == WAKER {
                    continue;
                }
                let Some(state) = sources.get(ev.token().0) else {
                    continue;
                };
                let mut bits = 0;
                let mut closed = 0;
                if ev.is_read_closed() || ev.is_error() {
                    closed |= READ;
                }
                if ev.is_write_closed() || ev.is_error() {
                    closed |= WRITE;
                }
                if ev.is_readable() {
                    bits |= READ;
                }
                if ev.is_writable() {
                    bits |= WRITE;
                }
                state.fire(bits | closed, closed, &mut wake, &mut hooks);
            }
        }
        for w in wake.drain(..) {
            w.wake();
        }
        for h in hooks.drain(..) {
            schedule(h);
        }
        *self.woken.borrow_mut() = (wake, hooks);
    }

    /// Drops every waiter and hook (loop close). Hooks may own the last
    /// reference to a transport or a server, whose sockets close now.
    pub(crate) fn shutdown(&self) {
        let states: Vec<Rc<SourceState>> = self
            .sources
            .borrow()
            .iter()
            .map(|(_, s)| s.clone())
            .collect();
        let hooks: Vec<_> = states.iter().map(|s| s.clear_all()).collect();
        drop(hooks);
    }

    fn register(&self, io: &mut impl Source) -> io::Result<(usize, Rc<SourceState>)> {
        let state = Rc::new(SourceState::new());
        let key = self.sources.borrow_mut().insert(state.clone());
        let poll = self.poll.borrow();
        if let Err(e) =
            poll.registry()
                .register(io, Token(key), Interest::READABLE | Interest::WRITABLE)
        {
            self.sources.borrow_mut().remove(key);
            return Err(e);
        }
        Ok((key, state))
    }

    /// Deregisters; whoever still waits on the source is woken, to find
    /// it gone (a stream reader whose transport was closed reads end of
    /// file).
    fn deregister(&self, io: &mut impl Source, key: usize) {
        let _ = self.poll.borrow().registry().deregister(io);
        let removed = self.sources.borrow_mut().remove(key);
        if let Some(state) = removed {
            let mut wake = std::mem::take(&mut *state.readers.borrow_mut());
            wake.append(&mut state.writers.borrow_mut());
            drop(state.clear_all());
            for w in wake {
                w.wake();
            }
        }
    }
}

/// A socket registered with the running loop's reactor. Dropping it
/// deregisters the socket and then closes it.
pub(crate) struct IoSource<S: Source> {
    io: S,
    reactor: Rc<Reactor>,
    key: usize,
    state: Rc<SourceState>,
}

impl<S: Source> IoSource<S> {
    /// Registers `io` with the running loop's reactor (creating the reactor
    /// on first use).
    pub(crate) fn new(mut io: S) -> io::Result<IoSource<S>> {
        let reactor = context::with_loop(|lp| lp.reactor())
            .unwrap_or_else(|| Err(io::Error::other(crate::NoRunningLoop)))?;
        let (key, state) = reactor.register(&mut io)?;
        Ok(IoSource {
            io,
            reactor,
            key,
            state,
        })
    }

    /// The socket itself, for calls that never block.
    pub(crate) fn get_ref(&self) -> &S {
        &self.io
    }

    /// Runs `op` while the direction is ready; on `WouldBlock` clears the
    /// readiness and registers `cx`'s waker. `Interrupted` is retried.
    pub(crate) fn poll_io<T>(
        &self,
        dir: Dir,
        cx: &mut Context<'_>,
        mut op: impl FnMut(&S) -> io::Result<T>,
    ) -> Poll<io::Result<T>> {
        loop {
            if !self.state.is_ready(dir) {
                self.state.add_waiter(dir, cx.waker());
                return Poll::Pending;
            }
            match op(&self.io) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.state.clear(dir),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                r => return Poll::Ready(r),
            }
        }
    }

    /// The last operation in `dir` moved fewer bytes than asked (but some):
    /// the kernel buffer is drained, so the next one would only see
    /// `WouldBlock`. Clearing the readiness now saves that system call; the
    /// reactor sets it again on the next edge.
    pub(crate) fn drained(&self, dir: Dir) {
        self.state.clear_open(dir);
    }

    /// Runs `op` once without waiting: `WouldBlock` clears the readiness
    /// and is returned as is.
    pub(crate) fn try_io<T>(
        &self,
        dir: Dir,
        mut op: impl FnMut(&S) -> io::Result<T>,
    ) -> io::Result<T> {
        if !self.state.is_ready(dir) {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        loop {
            match op(&self.io) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.state.clear(dir);
                    return Err(e);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                r => return r,
            }
        }
    }

    /// Sets (or removes) the callback run on the loop whenever `dir`
    /// becomes ready. If it is ready now, the hook is scheduled at once.
    pub(crate) fn set_hook(&self, dir: Dir, hook: Option<Hook>) {
        if let Some(h) = &hook {
            if self.state.is_ready(dir) {
                let h = h.clone();
                context::with_loop(|lp| lp.call_soon(Box::new(move || h())));
            }
        }
        let old = self.state.hook(dir).replace(hook);
        drop(old);
    }
}

impl<S: Source> Drop for IoSource<S> {
    fn drop(&mut self) {
        self.reactor.deregister(&mut self.io, self.key);
    }
}
