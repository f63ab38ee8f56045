//! TCP on the loop: listeners, streams, errors, cancellation, descriptors.

mod io_common;

use std::cell::RefCell;
use std::io::ErrorKind;
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;

use asyncio::net::{TcpListener, TcpStream};
use io_common::{ms, run};

async fn read_exact(s: &TcpStream, n: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; n];
    let mut got = 0;
    while got < n {
        let k = s.read(&mut buf[got..]).await?;
        assert!(k > 0, "unexpected end of file after {got} bytes");
        got += k;
    }
    Ok(buf)
}

async fn pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let client = asyncio::create_task(TcpStream::connect(addr));
    let (server, peer) = l.accept().await.unwrap();
    let client = client.await.unwrap().unwrap();
    assert_eq!(peer, client.local_addr().unwrap());
    (client, server)
}

#[test]
fn echo_round_trip() {
    let _g = io_common::shared();
    run(async {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        assert_eq!(addr.ip().to_string(), "127.0.0.1");
        assert_ne!(addr.port(), 0);
        let server = asyncio::create_task(async move {
            let (conn, _) = l.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            loop {
                let n = conn.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                conn.write_all(&buf[..n]).await.unwrap();
            }
        });
        let c = TcpStream::connect(addr).await.unwrap();
        assert_eq!(c.peer_addr().unwrap(), addr);
        c.set_nodelay(true).unwrap();
        assert!(c.nodelay().unwrap());
        for msg in [&b"hello"[..], b"world", &[7u8; 3000]] {
            c.write_all(msg).await.unwrap();
            assert_eq!(read_exact(&c, msg.len()).await.unwrap(), msg);
        }
        c.shutdown(Shutdown::Write).unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(
            c.read(&mut buf).await.unwrap(),
            0,
            "end of file after the echo"
        );
        server.await.unwrap();
    });
}

#[test]
fn reads_return_what_has_arrived() {
    let _g = io_common::shared();
    run(async {
        let (c, s) = pair().await;
        c.write_all(b"abc").await.unwrap();
        let mut buf = [0u8; 100];
        let n = s.read(&mut buf).await.unwrap();
        // All three bytes were sent in one write; the read may take fewer
        // only if the kernel split them, never more.
        assert!((1..=3).contains(&n));
        let rest = read_exact(&s, 3 - n).await.unwrap();
        assert_eq!([&buf[..n], &rest[..]].concat(), b"abc");
        // A small buffer takes a part, the rest stays in the socket.
        c.write_all(b"0123456789").await.unwrap();
        asyncio::sleep(ms(20)).await.unwrap();
        let mut small = [0u8; 4];
        assert_eq!(s.read(&mut small).await.unwrap(), 4);
        assert_eq!(&small, b"0123");
        assert_eq!(read_exact(&s, 6).await.unwrap(), b"456789");
        // An empty buffer reads nothing, without waiting.
        assert_eq!(s.read(&mut []).await.unwrap(), 0);
    });
}

#[test]
fn end_of_file_when_the_peer_closes() {
    let _g = io_common::shared();
    run(async {
        let (c, s) = pair().await;
        c.write_all(b"last words").await.unwrap();
        drop(c);
        assert_eq!(read_exact(&s, 10).await.unwrap(), b"last words");
        let mut buf = [0u8; 8];
        assert_eq!(s.read(&mut buf).await.unwrap(), 0);
        assert_eq!(s.read(&mut buf).await.unwrap(), 0, "end of file stays");
    });
}

#[test]
fn connection_refused_names_the_address() {
    let _g = io_common::shared();
    run(async {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        drop(l); // nothing listens there any more
        let err = TcpStream::connect(addr).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
        let msg = err.to_string();
        assert!(msg.contains(&addr.to_string()), "{msg}");
        assert!(msg.starts_with("connect to"), "{msg}");
        assert!(!asyncio::io::cancelled(&err));
        // The OS error is kept as the source.
        let source = std::error::Error::source(err.get_ref().unwrap()).unwrap();
        let os = source.downcast_ref::<std::io::Error>().unwrap();
        assert!(os.raw_os_error().is_some());
    });
}

#[test]
fn bind_errors_name_the_address() {
    let _g = io_common::shared();
    run(async {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        // Two listeners cannot share a port (SO_REUSEADDR does not allow
        // it on Linux while the first listens).
        let err = TcpListener::bind(addr).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AddrInUse);
        assert!(err.to_string().contains(&addr.to_string()), "{err}");
        let err = TcpListener::bind("not an address").await.unwrap_err();
        assert!(err.to_string().contains("not an address"), "{err}");
    });
}

#[test]
fn connect_accepts_a_host_port_string() {
    let _g = io_common::shared();
    run(async {
        let l = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let port = l.local_addr().unwrap().port();
        let c = TcpStream::connect(format!("127.0.0.1:{port}"))
            .await
            .unwrap();
        let (s, _) = l.accept().await.unwrap();
        // "localhost" is resolved on a worker thread; only its IPv4 address
        // listens here.
        let c2 = TcpStream::connect(("localhost", port)).await;
        if let Ok(c2) = c2 {
            assert_eq!(c2.peer_addr().unwrap().port(), port);
        }
        c.write_all(b"x").await.unwrap();
        assert_eq!(read_exact(&s, 1).await.unwrap(), b"x");
    });
}

#[test]
fn a_cancelled_read_loses_no_bytes() {
    let _g = io_common::shared();
    run(async {
        let (c, s) = pair().await;
        let s = Rc::new(s);
        let s2 = s.clone();
        let mut reader = asyncio::create_task(async move {
            let mut buf = [0u8; 16];
            // Handle the cancellation: keep only whether it was one.
            s2.read(&mut buf)
                .await
                .map(|n| buf[..n].to_vec())
                .map_err(|e| asyncio::io::cancelled(&e))
        });
        asyncio::sleep(ms(10)).await.unwrap(); // the reader waits in read()
                                               // The bytes arrive (a loopback write lands in the peer's buffer at
                                               // once), and the cancel comes before the reader runs again.
        c.write_all(b"keep me").await.unwrap();
        reader.cancel();
        assert_eq!((&mut reader).await.unwrap(), Err(true));
        assert!(!reader.cancelled(), "the task handled the cancellation");
        assert_eq!(read_exact(&s, 7).await.unwrap(), b"keep me");
    });
}

#[test]
fn a_read_that_propagates_the_cancellation_ends_the_task_cancelled() {
    let _g = io_common::shared();
    run(async {
        let (_c, s) = pair().await;
        let mut reader = asyncio::create_task(async move {
            let mut buf = [0u8; 16];
            s.read(&mut buf).await?;
            Ok::<_, std::io::Error>(())
        });
        asyncio::sleep(ms(10)).await.unwrap();
        reader.cancel_with("stop reading");
        assert!((&mut reader).await.is_err());
        assert!(reader.cancelled());
        assert_eq!(reader.cancel_message().as_deref(), Some("stop reading"));
    });
}

#[test]
fn a_timed_out_read_loses_no_bytes() {
    let _g = io_common::shared();
    run(async {
        let (c, s) = pair().await;
        let mut buf = [0u8; 16];
        let r = asyncio::wait_for(s.read(&mut buf), ms(30)).await;
        assert!(r.is_err(), "nothing to read: the read times out");
        c.write_all(b"late").await.unwrap();
        assert_eq!(read_exact(&s, 4).await.unwrap(), b"late");
    });
}

#[test]
fn a_cancelled_accept_takes_no_connection() {
    let _g = io_common::shared();
    run(async {
        let l = Rc::new(TcpListener::bind("127.0.0.1:0").await.unwrap());
        let addr = l.local_addr().unwrap();
        let l2 = l.clone();
        let mut acceptor = asyncio::create_task(async move {
            match l2.accept().await {
                Ok(_) => None,
                // Handled here; the token comes back out for the test.
                Err(e) => Some(asyncio::io::into_cancelled(e).map(|c| c.handled())),
            }
        });
        asyncio::sleep(ms(10)).await.unwrap();
        // A client connects (a blocking loopback connect completes at
        // once), and the acceptor is cancelled before it runs again.
        let c = std::net::TcpStream::connect(addr).unwrap();
        acceptor.cancel();
        let outcome = (&mut acceptor).await.unwrap();
        assert!(
            matches!(outcome, Some(Ok(_))),
            "accept returned the cancellation"
        );
        // The connection is still queued for the next accept.
        let (s, peer) = asyncio::wait_for(l.accept(), ms(2000))
            .await
            .expect("the connection was kept")
            .unwrap();
        assert_eq!(peer, c.local_addr().unwrap());
        std::io::Write::write_all(&mut &c, b"hi").unwrap();
        assert_eq!(read_exact(&s, 2).await.unwrap(), b"hi");
    });
}

#[test]
fn a_cancelled_connect_leaves_nothing_behind() {
    let _g = io_common::shared();
    run(async {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let mut t = asyncio::create_task(TcpStream::connect(addr));
        t.cancel();
        assert!((&mut t).await.is_err(), "cancelled before it started");
        let ok = TcpStream::connect(addr).await.unwrap();
        let (_s, peer) = l.accept().await.unwrap();
        assert_eq!(peer, ok.local_addr().unwrap());
    });
}

#[test]
fn a_megabyte_each_way_through_full_buffers() {
    let _g = io_common::shared();
    run(async {
        let (c, s) = pair().await;
        let data: Rc<Vec<u8>> = Rc::new((0..1 << 20).map(|i| (i % 251) as u8).collect());
        let s = Rc::new(s);
        // The server echoes everything back, with a reader and a writer task.
        let echo = {
            let s = s.clone();
            asyncio::create_task(async move {
                let mut buf = vec![0u8; 7000];
                loop {
                    let n = s.read(&mut buf).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    s.write_all(&buf[..n]).await.unwrap();
                }
                s.shutdown(Shutdown::Write).unwrap();
            })
        };
        let c = Rc::new(c);
        let writer = {
            let (c, data) = (c.clone(), data.clone());
            asyncio::create_task(async move {
                for chunk in data.chunks(100_000) {
                    c.write_all(chunk).await.unwrap();
                }
                c.shutdown(Shutdown::Write).unwrap();
            })
        };
        let mut got = Vec::new();
        let mut buf = vec![0u8; 65536];
        loop {
            let n = c.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        writer.await.unwrap();
        echo.await.unwrap();
        assert_eq!(got.len(), data.len());
        assert!(got == *data);
    });
}

#[test]
fn busy_tasks_do_not_starve_io() {
    let _g = io_common::shared();
    run(async {
        let (c, s) = pair().await;
        // A task that is always ready: the loop never idles while it runs,
        // so I/O must be polled on busy turns too.
        let stop = Rc::new(std::cell::Cell::new(false));
        let spins = Rc::new(std::cell::Cell::new(0u64));
        let spinner = {
            let (stop, spins) = (stop.clone(), spins.clone());
            asyncio::create_task(async move {
                while !stop.get() {
                    asyncio::checkpoint().await.unwrap();
                    spins.set(spins.get() + 1);
                }
            })
        };
        let writer = asyncio::create_task(async move {
            for i in 0..10u8 {
                asyncio::sleep(ms(2)).await.unwrap();
                c.write_all(&[i]).await.unwrap();
            }
        });
        for i in 0..10u8 {
            assert_eq!(read_exact(&s, 1).await.unwrap(), [i]);
        }
        stop.set(true);
        spinner.await.unwrap();
        writer.await.unwrap();
        assert!(spins.get() > 10, "the spinner ran all along");
    });
}

#[test]
fn several_clients_at_once() {
    let _g = io_common::shared();
    run(async {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let served = Rc::new(RefCell::new(Vec::new()));
        let server = {
            let served = served.clone();
            asyncio::create_task(async move {
                let mut handlers = Vec::new();
                for _ in 0..10 {
                    let (conn, _) = l.accept().await.unwrap();
                    let served = served.clone();
                    handlers.push(asyncio::create_task(async move {
                        let id = read_exact(&conn, 1).await.unwrap()[0];
                        conn.write_all(&[id, id]).await.unwrap();
                        served.borrow_mut().push(id);
                    }));
                }
                for h in handlers {
                    h.await.unwrap();
                }
            })
        };
        let mut clients = Vec::new();
        for id in 0..10u8 {
            clients.push(asyncio::create_task(async move {
                let c = TcpStream::connect(addr).await.unwrap();
                c.write_all(&[id]).await.unwrap();
                assert_eq!(read_exact(&c, 2).await.unwrap(), [id, id]);
            }));
        }
        for c in clients {
            c.await.unwrap();
        }
        server.await.unwrap();
        let mut ids = served.borrow().clone();
        ids.sort();
        assert_eq!(ids, (0..10).collect::<Vec<u8>>());
    });
}

#[test]
fn a_thread_wakes_a_loop_that_waits_for_io() {
    let _g = io_common::shared();
    run(async {
        // The loop has a reactor (a socket is registered) and nothing else
        // to do: the worker's wake must get it out of epoll.
        let _l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let t0 = std::time::Instant::now();
        let v = asyncio::to_thread(|| {
            std::thread::sleep(ms(30));
            5
        })
        .await
        .unwrap();
        assert_eq!(v, 5);
        assert!(t0.elapsed() < ms(5000));
    });
}

#[test]
fn io_on_a_virtual_clock() {
    let _g = io_common::shared();
    let _dog = io_common::watchdog(std::time::Duration::from_secs(20));
    let mut runner = asyncio::Runner::builder().virtual_time(true).build();
    runner.run(async {
        let (c, s) = pair().await;
        // No timer: the virtual loop blocks for I/O.
        c.write_all(b"v").await.unwrap();
        assert_eq!(read_exact(&s, 1).await.unwrap(), b"v");
        // With a timer and nothing to read, time jumps to the timer.
        let lp = asyncio::get_running_loop().unwrap();
        let t0 = lp.time();
        asyncio::sleep(std::time::Duration::from_secs(3600))
            .await
            .unwrap();
        assert_eq!(lp.time() - t0, std::time::Duration::from_secs(3600));
    });
}

#[test]
fn sockets_outside_a_loop_fail_clearly() {
    // Registering needs a running loop; without one the await point panics
    // (as every await point of the crate does outside a task), so only the
    // error path of a plain registration is checked here.
    let err =
        std::panic::catch_unwind(|| futures::executor::block_on(TcpListener::bind("127.0.0.1:0")));
    match err {
        Ok(Err(e)) => assert!(e.to_string().contains("no running event loop"), "{e}"),
        Ok(Ok(_)) => panic!("bound without a loop"),
        Err(_) => {} // panicked with the crate's "needs a running loop" message
    }
}

#[test]
fn no_descriptor_is_left_open_after_the_loop_closes() {
    let _g = io_common::exclusive();
    let before = io_common::open_fds();
    let addr: SocketAddr = run(async {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (c, s) = {
            let c = asyncio::create_task(TcpStream::connect(addr));
            let (s, _) = l.accept().await.unwrap();
            (c.await.unwrap().unwrap(), s)
        };
        c.write_all(b"x").await.unwrap();
        assert_eq!(read_exact(&s, 1).await.unwrap(), b"x");
        // Left open on purpose: a task still waiting in read when the loop
        // closes, and sockets owned by it.
        let _pending = asyncio::create_task(async move {
            let mut buf = [0u8; 1];
            let _ = s.read(&mut buf).await;
            drop(c);
        });
        let _ = asyncio::to_thread(|| ()).await;
        addr
    });
    assert_eq!(io_common::open_fds(), before, "descriptors leaked");
    // And a loop with no I/O opens none at all, on either clock.
    run(async {
        let inside = io_common::open_fds();
        asyncio::sleep(ms(5)).await.unwrap();
        assert_eq!(io_common::open_fds(), inside);
    });
    assert_eq!(io_common::open_fds(), before);
    let _ = addr;
}

#[test]
fn closing_the_loop_waits_for_a_cleanup_that_awaits_io() {
    let _g = io_common::shared();
    // The peer is a plain thread: it answers the goodbye while the loop
    // closes.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut conn, _) = listener.accept().unwrap();
        conn.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let mut buf = [0u8; 3];
        conn.read_exact(&mut buf).unwrap();
        std::thread::sleep(ms(30));
        conn.write_all(b"ack").unwrap();
        buf
    });
    let said = Rc::new(RefCell::new(Vec::new()));
    let s = said.clone();
    run(async move {
        let c = TcpStream::connect(addr).await.unwrap();
        let _client = asyncio::create_task(async move {
            let mut buf = [0u8; 3];
            if let Err(e) = c.read(&mut buf).await {
                assert!(asyncio::io::cancelled(&e));
                drop(e); // handled: say goodbye and wait for the answer
                c.write_all(b"bye").await.unwrap();
                let ack = read_exact(&c, 3).await.unwrap();
                s.borrow_mut().extend(ack);
            }
        });
        asyncio::sleep(ms(5)).await.unwrap();
    });
    assert_eq!(&peer.join().unwrap(), b"bye");
    assert_eq!(*said.borrow(), b"ack", "the cleanup's read completed");
}

#[test]
fn a_peer_reset_reads_as_connection_reset() {
    let _g = io_common::shared();
    run(async {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, peer) = l.accept().await.unwrap();
        std::io::Write::write_all(&mut &c, b"hi").unwrap();
        assert_eq!(read_exact(&s, 2).await.unwrap(), b"hi");
        io_common::reset(c);
        let mut buf = [0u8; 8];
        let err = s.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
        assert!(!asyncio::io::cancelled(&err));
        assert!(err.to_string().contains(&peer.to_string()), "{err}");
        // Writing to it fails too (the reset was reported once by the read).
        let err = s.write_all(&[0u8; 1024]).await.unwrap_err();
        assert!(
            matches!(
                err.kind(),
                ErrorKind::BrokenPipe | ErrorKind::ConnectionReset
            ),
            "{err}"
        );
    });
}

#[test]
fn a_short_read_then_end_of_file_is_seen() {
    // The data and the FIN arrive before the first read: the read is short,
    // and the next one must see the end of file at once (the poller gives
    // no second edge for it).
    let _g = io_common::shared();
    run(async {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().await.unwrap();
        std::io::Write::write_all(&mut &c, b"last words").unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        asyncio::sleep(ms(50)).await.unwrap();
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"last words");
        let eof = asyncio::wait_for(s.read(&mut buf), std::time::Duration::from_secs(5))
            .await
            .expect("the end of file is seen without another event");
        assert_eq!(eof.unwrap(), 0);
    });
}
