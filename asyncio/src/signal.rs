//! Unix signals on the loop: `EventLoop::add_signal_handler`, and the
//! Ctrl-C handling of [`run`](crate::run) / [`Runner::run`](crate::Runner::run).
//!
//! # How a signal reaches the loop
//!
//! The process-wide C handler ([`on_signal`]) only does what is
//! async-signal-safe: it sets the signal's `PENDING` flag and posts an
//! unnamed POSIX semaphore. One dispatcher thread (started with the first
//! subscription, then kept for the life of the process) waits on that
//! semaphore, takes the pending flags, and hands each loop subscribed to a
//! signal a callback through the loop's cross-thread queue (the
//! `call_soon_threadsafe` path, which wakes the loop out of `epoll` or out
//! of its park). The callback runs on the loop's thread, on its next turn,
//! and calls the handler there. Signals that arrive together are coalesced,
//! as the OS coalesces them.
//!
//! Why a semaphore and a thread, not a self-pipe in each loop's reactor:
//! every [`run`](crate::run) listens for SIGINT, and a loop that never does
//! I/O must keep opening no file descriptor and no `epoll` instance (see
//! `runtime/idle.rs`). A semaphore is no descriptor, and `sem_post` is on
//! POSIX's list of async-signal-safe functions.
//!
//! # Dispositions
//!
//! The first subscription to a signal (any loop of the process) installs
//! the C handler with `sigaction` and keeps the previous disposition; the
//! last unsubscription restores it. Loop close unsubscribes whatever its
//! handlers left.
//!
//! # Ctrl-C in `run`
//!
//! While [`Runner::run`](crate::Runner::run) runs a main task, and if
//! SIGINT still has its default disposition (nobody else handles it) and
//! the loop has no SIGINT handler of its own, the loop subscribes to SIGINT
//! (asyncio.Runner does the same): the first SIGINT cancels the main task;
//! a second one, while any loop of the process is in this mode, exits the
//! process at once with status 130 (from the C handler itself, so even a
//! loop blocked in a foreign call stops). If the main task then ends
//! cancelled, `Runner::run` panics with a message naming
//! `KeyboardInterrupt`, and [`run`](crate::run) closes the loop, prints
//! `KeyboardInterrupt` to stderr and exits the process with status 130 (the
//! shell's code for death by SIGINT).

use std::cell::{Cell, RefCell, UnsafeCell};
use std::io;
use std::mem::MaybeUninit;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Once};

use libc::c_int;

use crate::runtime::{context, EventLoop, Loop, Remote};
use crate::task::TaskRef;

/// Signal numbers below this are supported (Linux: 1..=64).
const NSIG: usize = 65;

static PENDING: [AtomicBool; NSIG] = [const { AtomicBool::new(false) }; NSIG];
/// How many loops are in `run`'s Ctrl-C mode.
static INTERRUPT_MODE: AtomicUsize = AtomicUsize::new(0);
/// SIGINTs seen while some loop was in Ctrl-C mode.
static SIGINT_COUNT: AtomicUsize = AtomicUsize::new(0);

/// The semaphore the C handler posts and the dispatcher waits on.
struct Sem(UnsafeCell<MaybeUninit<libc::sem_t>>);

// SAFETY: a `sem_t` is made to be shared between threads (and signal
// handlers); it is only ever used through the `sem_*` functions, after
// `sem_init` ran once (`INIT`).
unsafe impl Sync for Sem {}

static SEM: Sem = Sem(UnsafeCell::new(MaybeUninit::uninit()));
static INIT: Once = Once::new();

impl Sem {
    fn ptr(&self) -> *mut libc::sem_t {
        self.0.get().cast()
    }
}

/// The C signal handler: async-signal-safe operations only.
extern "C" fn on_signal(signum: c_int) {
    #[cfg(target_os = "linux")]
    // SAFETY: `__errno_location` returns this thread's errno, always valid.
    let saved = unsafe { *libc::__errno_location() };
    if signum == libc::SIGINT
        && INTERRUPT_MODE.load(Ordering::SeqCst) > 0
        && SIGINT_COUNT.fetch_add(1, Ordering::SeqCst) >= 1
    {
        // SAFETY: `_exit` is async-signal-safe; the second Ctrl-C ends the
        // process at once, as documented.
        unsafe { libc::_exit(130) };
    }
    if let Some(p) = PENDING.get(signum as usize) {
        p.store(true, Ordering::SeqCst);
    }
    // SAFETY: the handler is only installed after `INIT` initialised the
    // semaphore; `sem_post` is async-signal-safe.
    unsafe { libc::sem_post(SEM.ptr()) };
    #[cfg(target_os = "linux")]
    // SAFETY: as above; restores errno for the interrupted code.
    unsafe {
        *libc::__errno_location() = saved
    };
}

/// One loop's subscription to one signal.
struct Sub {
    signum: c_int,
    loop_id: u64,
    remote: Arc<Remote>,
}

struct Registry {
    subs: Vec<Sub>,
    /// The disposition each installed signal had before.
    saved: Vec<(c_int, libc::sigaction)>,
}

// SAFETY: `libc::sigaction` is plain data (a handler address, a mask and
// flags); it is only read back to restore a disposition.
unsafe impl Send for Registry {}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    subs: Vec::new(),
    saved: Vec::new(),
});

fn registry() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

fn check(signum: c_int) -> io::Result<()> {
    if signum <= 0 || signum as usize >= NSIG || signum == libc::SIGKILL || signum == libc::SIGSTOP
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("signal {signum} cannot be handled"),
        ));
    }
    Ok(())
}

/// Initialises the semaphore and starts the dispatcher thread, once.
fn init() -> io::Result<()> {
    let mut result = Ok(());
    INIT.call_once(|| {
        // SAFETY: the semaphore is initialised exactly once, here, before
        // any handler is installed or the dispatcher starts.
        if unsafe { libc::sem_init(SEM.ptr(), 0, 0) } != 0 {
            result = Err(io::Error::last_os_error());
            return;
        }
        match std::thread::Builder::new()
            .name("asyncio-signals".into())
            .spawn(dispatch)
        {
            Ok(_) => DISPATCHER_UP.store(true, Ordering::SeqCst),
            Err(e) => result = Err(e),
        }
    });
    result?;
    // A failed first initialisation leaves no dispatcher: refuse.
    DISPATCHER_UP
        .load(Ordering::SeqCst)
        .then_some(())
        .ok_or_else(|| io::Error::other("the signal dispatcher thread could not start"))
}

static DISPATCHER_UP: AtomicBool = AtomicBool::new(false);

/// The dispatcher thread (see the module doc).
fn dispatch() {
    loop {
        // SAFETY: initialised by `init` before this thread started.
        if unsafe { libc::sem_wait(SEM.ptr()) } != 0 {
            continue; // EINTR
        }
        for (signum, pending) in PENDING.iter().enumerate() {
            if !pending.swap(false, Ordering::SeqCst) {
                continue;
            }
            let signum = signum as c_int;
            let mut targets: Vec<(u64, Arc<Remote>)> = Vec::new();
            for s in registry().subs.iter().filter(|s| s.signum == signum) {
                if !targets.iter().any(|(id, _)| *id == s.loop_id) {
                    targets.push((s.loop_id, s.remote.clone()));
                }
            }
            for (_, remote) in targets {
                let _ = remote.call_soon(Box::new(move || {
                    context::with_loop(|lp| lp.signals().deliver(signum));
                }));
            }
        }
    }
}

/// Subscribes the loop to `signum`, installing the C handler if no loop
/// was subscribed to it.
fn subscribe(lp: &Loop, signum: c_int) -> io::Result<()> {
    check(signum)?;
    init()?;
    let mut reg = registry();
    if !reg.subs.iter().any(|s| s.signum == signum) {
        // SAFETY: an all-zero `sigaction` is a valid value (no handler, an
        // empty mask, no flags), then filled in; `sigaction` only reads
        // `new` and writes `old`.
        unsafe {
            let mut new: libc::sigaction = std::mem::zeroed();
            let mut old: libc::sigaction = std::mem::zeroed();
            new.sa_sigaction = on_signal as extern "C" fn(c_int) as libc::sighandler_t;
            libc::sigemptyset(&mut new.sa_mask);
            new.sa_flags = libc::SA_RESTART;
            if signum == libc::SIGCHLD {
                new.sa_flags |= libc::SA_NOCLDSTOP;
            }
            if libc::sigaction(signum, &new, &mut old) != 0 {
                return Err(io::Error::last_os_error());
            }
            reg.saved.push((signum, old));
        }
    }
    reg.subs.push(Sub {
        signum,
        loop_id: lp.id,
        remote: lp.remote.clone(),
    });
    Ok(())
}

/// Takes back one subscription of the loop to `signum`; the last one of
/// the process restores the previous disposition.
fn unsubscribe(lp: &Loop, signum: c_int) {
    let mut reg = registry();
    if let Some(i) = reg
        .subs
        .iter()
        .position(|s| s.signum == signum && s.loop_id == lp.id)
    {
        reg.subs.remove(i);
    }
    if reg.subs.iter().any(|s| s.signum == signum) {
        return;
    }
    if let Some(i) = reg.saved.iter().position(|(s, _)| *s == signum) {
        let (_, old) = reg.saved.remove(i);
        // SAFETY: `old` is the disposition `sigaction` reported when the
        // handler was installed.
        unsafe { libc::sigaction(signum, &old, std::ptr::null_mut()) };
        PENDING[signum as usize].store(false, Ordering::SeqCst);
    }
}

/// Whether SIGINT has its default disposition, or is already ours.
fn sigint_is_free() -> bool {
    let reg = registry();
    if reg.subs.iter().any(|s| s.signum == libc::SIGINT) {
        return true;
    }
    // SAFETY: reads the current disposition into a zeroed `sigaction`.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(libc::SIGINT, std::ptr::null(), &mut old) == 0
            && old.sa_sigaction == libc::SIG_DFL
    }
}

/// A signal handler set with `add_signal_handler`.
type Handler = Rc<dyn Fn()>;

/// A loop's signal handlers and Ctrl-C state (a field of the loop).
#[derive(Default)]
pub(crate) struct LoopSignals {
    handlers: RefCell<Vec<(c_int, Handler)>>,
    /// The main task to cancel on SIGINT (`run`'s Ctrl-C mode).
    main: RefCell<Option<TaskRef>>,
    interrupted: Cell<bool>,
}

impl LoopSignals {
    /// Runs on the loop when `signum` arrived.
    fn deliver(&self, signum: c_int) {
        let handler = self
            .handlers
            .borrow()
            .iter()
            .find(|(s, _)| *s == signum)
            .map(|(_, h)| h.clone());
        if let Some(h) = handler {
            h();
            return;
        }
        if signum == libc::SIGINT {
            let main = self.main.borrow().clone();
            if let Some(main) = main {
                if !self.interrupted.replace(true) && !main.done() {
                    main.cancel();
                }
            }
        }
    }

    /// Leaves Ctrl-C mode, if in it; returns whether a SIGINT arrived.
    fn leave_interrupt_mode(&self, lp: &Loop) -> bool {
        if self.main.borrow_mut().take().is_some() {
            unsubscribe(lp, libc::SIGINT);
            if INTERRUPT_MODE.fetch_sub(1, Ordering::SeqCst) == 1 {
                SIGINT_COUNT.store(0, Ordering::SeqCst);
            }
        }
        self.interrupted.replace(false)
    }

    /// Loop close: unsubscribes every handler.
    pub(crate) fn close(&self, lp: &Loop) {
        let handlers = std::mem::take(&mut *self.handlers.borrow_mut());
        for (signum, _) in &handlers {
            unsubscribe(lp, *signum);
        }
        self.leave_interrupt_mode(lp);
        drop(handlers);
    }
}

/// `run`'s Ctrl-C mode for one main task (see the module doc); leaving it
/// (drop, or [`Interrupt::finish`]) restores SIGINT's disposition.
pub(crate) struct Interrupt {
    lp: Rc<Loop>,
}

impl Interrupt {
    /// Enters Ctrl-C mode for `main`, unless SIGINT is handled elsewhere
    /// (another disposition, or a handler of this loop).
    pub(crate) fn enter(lp: &Rc<Loop>, main: &TaskRef) -> Option<Interrupt> {
        let sig = lp.signals();
        if sig.main.borrow().is_some()
            || sig
                .handlers
                .borrow()
                .iter()
                .any(|(s, _)| *s == libc::SIGINT)
            || !sigint_is_free()
            || subscribe(lp, libc::SIGINT).is_err()
        {
            return None;
        }
        INTERRUPT_MODE.fetch_add(1, Ordering::SeqCst);
        *sig.main.borrow_mut() = Some(main.clone());
        sig.interrupted.set(false);
        Some(Interrupt { lp: lp.clone() })
    }

    /// Leaves Ctrl-C mode; returns whether a SIGINT cancelled the main
    /// task.
    pub(crate) fn finish(self) -> bool {
        self.lp.signals().leave_interrupt_mode(&self.lp)
    }
}

impl Drop for Interrupt {
    fn drop(&mut self) {
        self.lp.signals().leave_interrupt_mode(&self.lp);
    }
}

impl EventLoop {
    /// Calls `f` on the loop each time the process receives signal
    /// `signum` (`loop.add_signal_handler`), replacing this loop's previous
    /// handler for it. `f` runs on the loop's thread, as a callback on the
    /// turn after the signal arrived; several deliveries that arrive
    /// together may run it once. Unix only.
    ///
    /// While a handler for SIGINT is set, Ctrl-C no longer cancels the main
    /// task of [`run`](crate::run): the handler decides.
    ///
    /// ```
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    /// use std::time::Duration;
    /// asyncio::run(async {
    ///     let lp = asyncio::get_running_loop().unwrap();
    ///     let got = Rc::new(Cell::new(false));
    ///     let g = got.clone();
    ///     lp.add_signal_handler(libc::SIGUSR2, move || g.set(true)).unwrap();
    ///     // SAFETY: sends a signal that now has a handler to this process.
    ///     unsafe { libc::kill(libc::getpid(), libc::SIGUSR2) };
    ///     while !got.get() {
    ///         asyncio::sleep(Duration::from_millis(1)).await.unwrap();
    ///     }
    ///     assert!(lp.remove_signal_handler(libc::SIGUSR2));
    /// });
    /// ```
    ///
    /// # Errors
    /// `InvalidInput` for a signal that cannot be caught (`SIGKILL`,
    /// `SIGSTOP`) or out of range; the OS error if `sigaction` fails.
    pub fn add_signal_handler(&self, signum: c_int, f: impl Fn() + 'static) -> io::Result<()> {
        let lp = self.inner();
        let sig = lp.signals();
        let f: Handler = Rc::new(f);
        let old = {
            let mut handlers = sig.handlers.borrow_mut();
            match handlers.iter_mut().find(|(s, _)| *s == signum) {
                Some((_, h)) => Some(std::mem::replace(h, f)),
                None => {
                    subscribe(lp, signum)?;
                    handlers.push((signum, f));
                    None
                }
            }
        };
        drop(old);
        Ok(())
    }

    /// Removes this loop's handler for `signum`; returns whether there was
    /// one. When no loop of the process handles the signal any more, its
    /// previous disposition is restored.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let lp = asyncio::get_running_loop().unwrap();
    ///     assert!(!lp.remove_signal_handler(libc::SIGUSR2));
    ///     lp.add_signal_handler(libc::SIGUSR2, || ()).unwrap();
    ///     assert!(lp.remove_signal_handler(libc::SIGUSR2));
    /// });
    /// ```
    pub fn remove_signal_handler(&self, signum: c_int) -> bool {
        let lp = self.inner();
        let removed = {
            let mut handlers = lp.signals().handlers.borrow_mut();
            handlers
                .iter()
                .position(|(s, _)| *s == signum)
                .map(|i| handlers.remove(i))
        };
        match removed {
            Some(h) => {
                unsubscribe(lp, signum);
                drop(h);
                true
            }
            None => false,
        }
    }
}
