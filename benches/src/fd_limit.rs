//! Raises the soft limit on open files for the echo workloads (two sockets
//! per connection); child processes and CPython inherit it.

/// Makes sure at least `need` files can be open at once, raising the soft
/// `RLIMIT_NOFILE` up to the hard limit if it is lower.
pub fn ensure(need: u64) -> Result<(), String> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable `rlimit`.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(format!(
            "getrlimit(RLIMIT_NOFILE): {}",
            std::io::Error::last_os_error()
        ));
    }
    let need_lim = need as libc::rlim_t;
    if lim.rlim_cur >= need_lim {
        return Ok(());
    }
    if lim.rlim_max < need_lim {
        return Err(format!(
            "{need} open files needed, the hard limit is {} (raise it with `ulimit -Hn`)",
            lim.rlim_max
        ));
    }
    lim.rlim_cur = lim.rlim_max;
    // SAFETY: `lim` is a valid `rlimit` whose soft limit does not exceed its hard one.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        return Err(format!(
            "setrlimit(RLIMIT_NOFILE): {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}
