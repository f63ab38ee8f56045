//! The few OS calls that neither std nor mio wraps, each behind a safe
//! function: the crate's foreign calls outside signal handling (which has
//! its own module, `signal.rs`, as what a signal handler may do is its
//! whole subject).
//!
//! None of these calls but `clock_gettime` reads or writes memory of ours,
//! and that one writes a local `timespec` (Miri runs it as a shim); the
//! tests that use the others run real sockets and processes.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Sets the backlog of a socket already listening: calling `listen` again
/// changes only the backlog (mio listens with 128).
pub(crate) fn listen(fd: BorrowedFd<'_>, backlog: i32) -> io::Result<()> {
    // SAFETY: `listen` takes a descriptor, which `fd` borrows open for the
    // call, and an integer; it touches no memory of ours.
    if unsafe { libc::listen(fd.as_raw_fd(), backlog) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `CLOCK_MONOTONIC` in nanoseconds: the clock `Instant::now()` reads on
/// Linux, without its conversions (the loop reads it every turn that has a
/// timer armed).
#[cfg(any(target_os = "linux", target_os = "android"))]
#[inline]
pub(crate) fn monotonic_ns() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `clock_gettime` writes one `timespec` through the pointer,
    // which points at a live, writable one of ours; it cannot fail for
    // `CLOCK_MONOTONIC` with a valid pointer.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    debug_assert_eq!(rc, 0, "clock_gettime(CLOCK_MONOTONIC) failed");
    // Seconds since boot: far from overflowing i64 nanoseconds (292 years).
    // `time_t` and `c_long` are 32 bits on 32-bit targets.
    #[allow(clippy::unnecessary_cast)]
    let ns = ts.tv_sec as i64 * 1_000_000_000 + ts.tv_nsec as i64;
    ns
}

/// Sends `signum` to process `pid`.
///
/// The caller makes sure `pid` still names the process it means: a child
/// not reaped yet cannot have its pid reused.
pub(crate) fn kill(pid: u32, signum: i32) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "pid out of range"))?;
    // SAFETY: `kill` takes two integers and touches no memory of ours.
    if unsafe { libc::kill(pid, signum) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A pidfd for process `pid` (readable once the process exits), or `None`
/// where the kernel has no `pidfd_open` (before Linux 5.3) or refuses one.
#[cfg(target_os = "linux")]
pub(crate) fn pidfd_open(pid: u32) -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let pid = libc::pid_t::try_from(pid).ok()?;
    // SAFETY: `pidfd_open` takes a pid and flags and returns a new
    // descriptor or -1; it touches no memory of ours.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let fd = i32::try_from(fd).ok().filter(|&fd| fd >= 0)?;
    // SAFETY: `fd` was just returned by the kernel, open and owned by no
    // one else.
    Some(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_reports_the_os_error_of_a_socket_that_is_not_one() {
        let file = std::fs::File::open("/dev/null").unwrap();
        let fd = std::os::fd::AsFd::as_fd(&file);
        let err = listen(fd, 16).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOTSOCK));
    }

    #[test]
    fn kill_with_signal_zero_probes_a_process() {
        kill(std::process::id(), 0).unwrap();
        let err = kill(u32::MAX, 0).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn pidfd_open_refuses_a_pid_no_process_has() {
        // Above any `pid_max` the kernel allows, and out of `pid_t`'s range.
        assert!(pidfd_open(i32::MAX as u32).is_none());
        assert!(pidfd_open(u32::MAX).is_none());
        // A kernel with pidfds (5.3 on) gives a fresh descriptor for a live
        // process; the subprocess tests cover both kinds of kernel.
        if let Some(fd) = pidfd_open(std::process::id()) {
            assert!(fd.as_raw_fd() > 2);
        }
    }
}
