//! Many connections at once: 5,000 clients held open together against one
//! server on 127.0.0.1, each proven alive by a round trip while all of them
//! are open.

mod io_common;

use std::time::Duration;

use asyncio::{StreamReader, StreamWriter};

const CLIENTS: usize = 5_000;
/// Connections opened together before waiting for them: below the
/// listening socket's backlog (1024, but capped by `net.core.somaxconn`,
/// 128 on older kernels), so the kernel never drops a connection attempt
/// (the client would retry only after a second, then two, ...).
const BATCH: usize = 100;

/// Raises the soft limit on open files to the hard limit if it is below
/// `needed`, and fails clearly if even the hard limit is below it.
fn raise_fd_limit(needed: libc::rlim_t) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `getrlimit` writes one `rlimit` through a valid pointer.
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) },
        0,
        "getrlimit(RLIMIT_NOFILE)"
    );
    if lim.rlim_cur >= needed {
        return;
    }
    assert!(
        lim.rlim_max >= needed,
        "this test holds {CLIENTS} connections open (both ends: {needed} file \
         descriptors), but the hard limit on open files is {} (`ulimit -Hn`); \
         raise it to run the test",
        lim.rlim_max
    );
    lim.rlim_cur = lim.rlim_max;
    // SAFETY: `setrlimit` reads one `rlimit` through a valid pointer.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    assert_eq!(
        rc,
        0,
        "raising the soft limit on open files to {}: {}",
        lim.rlim_max,
        std::io::Error::last_os_error()
    );
}

/// Greets each client, then echoes its lines until end of file.
async fn handler(mut r: StreamReader, w: StreamWriter) {
    w.write(b"hello\n");
    loop {
        match r.readline().await {
            Ok(line) if !line.is_empty() => w.write(&line),
            _ => break,
        }
    }
    w.close();
}

#[test]
fn five_thousand_connections_held_open_at_once() {
    let _g = io_common::shared();
    let margin = 200; // the test binary's own descriptors, the reactor, ...
    raise_fd_limit(2 * CLIENTS as libc::rlim_t + margin);
    let _dog = io_common::watchdog(Duration::from_secs(120));
    asyncio::run(async {
        let work = async {
            let server = asyncio::start_server(handler, "127.0.0.1", 0)
                .await
                .unwrap();
            let port = server.local_addrs()[0].port();
            let mut clients = Vec::with_capacity(CLIENTS);

            while clients.len() < CLIENTS {
                let batch: Vec<_> = (0..BATCH)
                    .map(|_| {
                        asyncio::create_task(async move {
                            let (mut r, w) = asyncio::open_connection("127.0.0.1", port).await?;
                            // The greeting: the server has taken this one.
                            assert_eq!(r.readline().await?, b"hello\n");
                            Ok::<_, std::io::Error>((r, w))
                        })
                    })
                    .collect();
                for t in batch {
                    clients.push(t.await.unwrap().expect("a connection"));
                }
            }
            assert_eq!(server.active_connections(), CLIENTS, "all open at once");
            // Every one of them is alive: a line each way, all in flight.
            for (i, (_, w)) in clients.iter().enumerate() {
                w.write(format!("{i}\n").as_bytes());
            }
            for (i, (r, _)) in clients.iter_mut().enumerate() {
                assert_eq!(r.readline().await.unwrap(), format!("{i}\n").as_bytes());
            }
            assert_eq!(server.active_connections(), CLIENTS);
            // Closing our ends closes theirs.
            for (_, w) in &clients {
                w.close();
            }
            drop(clients);
            server.close();
            server.wait_closed().await.unwrap();
            assert_eq!(server.active_connections(), 0);
        };
        asyncio::wait_for(work, Duration::from_secs(90))
            .await
            .expect("5,000 connections took more than 90 seconds");
    });
}
