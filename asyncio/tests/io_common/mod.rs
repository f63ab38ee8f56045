//! Helpers for the I/O tests: bounded runs on the real clock, and a lock
//! that keeps the file-descriptor counts of one test free of the others'.
#![allow(dead_code)]

use std::future::Future;
use std::sync::{mpsc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

/// Every test of a binary but the fd-counting ones holds this for reading.
static FDS: RwLock<()> = RwLock::new(());

pub fn shared() -> RwLockReadGuard<'static, ()> {
    FDS.read().unwrap_or_else(|e| e.into_inner())
}

pub fn exclusive() -> RwLockWriteGuard<'static, ()> {
    FDS.write().unwrap_or_else(|e| e.into_inner())
}

/// Open file descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Aborts the whole test binary if the test has not finished in `limit`:
/// the last guard against a hang (a timeout inside the loop is the first).
pub struct Watchdog(Option<mpsc::Sender<()>>);

pub fn watchdog(limit: Duration) -> Watchdog {
    let (tx, rx) = mpsc::channel::<()>();
    let name = std::thread::current().name().unwrap_or("?").to_string();
    std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
            eprintln!("test {name} hung for {limit:?}: aborting");
            std::process::abort();
        }
    });
    Watchdog(Some(tx))
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.0.take();
    }
}

/// Runs `fut` on a fresh real-clock loop, failing the test if it takes more
/// than 10 seconds (and aborting it after 20 if even the loop is stuck).
pub fn run<F>(fut: F) -> F::Output
where
    F: Future + 'static,
    F::Output: 'static,
{
    let _dog = watchdog(Duration::from_secs(20));
    asyncio::run(async move {
        asyncio::wait_for(fut, Duration::from_secs(10))
            .await
            .expect("the test timed out")
    })
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Closes `s` with `SO_LINGER` 0: the kernel sends a reset (RST) instead
/// of a normal close, and the peer reads `ConnectionReset`.
pub fn reset(s: std::net::TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket descriptor, and a pointer to a `linger` that
    // lives across the call, with its size.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "setsockopt(SO_LINGER)");
    drop(s);
}
