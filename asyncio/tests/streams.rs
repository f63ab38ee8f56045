//! Streams: `open_connection`, `start_server`, `StreamReader`,
//! `StreamWriter`, `Server`.

mod io_common;

use std::cell::RefCell;
use std::io::ErrorKind;
use std::rc::Rc;
use std::time::Duration;

use asyncio::{IncompleteReadError, LimitOverrunError, Server, StreamReader, StreamWriter};
use io_common::{ms, run};

/// A server that echoes lines until end of file.
async fn echo_server() -> Server {
    asyncio::start_server(
        |mut reader: StreamReader, writer: StreamWriter| async move {
            loop {
                let line = match reader.readline().await {
                    Ok(l) if !l.is_empty() => l,
                    _ => break,
                };
                writer.write(&line);
                if writer.drain().await.is_err() {
                    break;
                }
            }
            writer.close();
        },
        "127.0.0.1",
        0,
    )
    .await
    .unwrap()
}

/// A server that sends `data` to each client, then closes.
async fn sending_server(data: &'static [u8]) -> Server {
    asyncio::start_server(
        move |_r, w: StreamWriter| async move {
            w.write(data);
            w.close();
        },
        "127.0.0.1",
        0,
    )
    .await
    .unwrap()
}

fn port(server: &Server) -> u16 {
    server.local_addrs()[0].port()
}

fn incomplete(err: &std::io::Error) -> &IncompleteReadError {
    err.get_ref()
        .and_then(|e| e.downcast_ref::<IncompleteReadError>())
        .expect("an IncompleteReadError")
}

#[test]
fn echo_through_a_server() {
    let _g = io_common::shared();
    run(async {
        let server = echo_server().await;
        assert!(server.is_serving());
        assert_eq!(server.local_addrs()[0].ip().to_string(), "127.0.0.1");
        let (mut r, w) = asyncio::open_connection("127.0.0.1", port(&server))
            .await
            .unwrap();
        assert_eq!(w.peer_addr(), Some(server.local_addrs()[0]));
        for line in ["hello\n", "world\n"] {
            w.write(line.as_bytes());
            w.drain().await.unwrap();
            assert_eq!(r.readline().await.unwrap(), line.as_bytes());
        }
        w.writelines([&b"a\n"[..], b"b\n"]);
        assert_eq!(r.readline().await.unwrap(), b"a\n");
        assert_eq!(r.readline().await.unwrap(), b"b\n");
        w.write_eof();
        assert_eq!(
            r.readline().await.unwrap(),
            b"",
            "the server closed after our EOF"
        );
        assert!(r.at_eof());
        server.close();
        server.wait_closed().await.unwrap();
    });
}

#[test]
fn many_clients_at_once() {
    let _g = io_common::shared();
    run(async {
        let server = echo_server().await;
        let port = port(&server);
        let mut clients = Vec::new();
        for i in 0..20 {
            clients.push(asyncio::create_task(async move {
                let (mut r, w) = asyncio::open_connection("127.0.0.1", port).await.unwrap();
                let line = format!("client {i}\n");
                w.write(line.as_bytes());
                assert_eq!(r.readline().await.unwrap(), line.as_bytes());
                w.close();
                w.wait_closed().await.unwrap();
            }));
        }
        for c in clients {
            c.await.unwrap();
        }
        server.close();
        server.wait_closed().await.unwrap();
        assert_eq!(server.active_connections(), 0);
    });
}

#[test]
fn read_readexactly_readuntil_and_at_eof() {
    let _g = io_common::shared();
    run(async {
        let server = sending_server(b"abcdefgh--ijk\nlmnop").await;
        let (mut r, _w) = asyncio::open_connection("127.0.0.1", port(&server))
            .await
            .unwrap();
        assert_eq!(r.readexactly(3).await.unwrap(), b"abc");
        assert_eq!(r.readuntil(b"--").await.unwrap(), b"defgh--");
        assert_eq!(r.read(0).await.unwrap(), b"");
        assert_eq!(r.readline().await.unwrap(), b"ijk\n");
        let mut rest = Vec::new();
        loop {
            let chunk = r.read(2).await.unwrap();
            if chunk.is_empty() {
                break;
            }
            assert!(chunk.len() <= 2);
            rest.extend(chunk);
        }
        assert_eq!(rest, b"lmnop");
        assert!(r.at_eof());
        assert_eq!(r.readline().await.unwrap(), b"");
        assert_eq!(r.read_to_end().await.unwrap(), b"");
    });
}

#[test]
fn end_of_file_in_the_middle_of_readexactly() {
    let _g = io_common::shared();
    run(async {
        let server = sending_server(b"12345").await;
        let (mut r, _w) = asyncio::open_connection("127.0.0.1", port(&server))
            .await
            .unwrap();
        assert_eq!(r.readexactly(2).await.unwrap(), b"12");
        let err = r.readexactly(10).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnexpectedEof);
        let inc = incomplete(&err);
        assert_eq!(inc.partial, b"345");
        assert_eq!(inc.expected, Some(10));
        assert_eq!(
            inc.to_string(),
            "3 bytes read on a total of 10 expected bytes"
        );
        assert!(r.at_eof(), "the partial bytes were taken");
    });
}

#[test]
fn end_of_file_before_the_separator() {
    let _g = io_common::shared();
    run(async {
        let server = sending_server(b"no separator here").await;
        let (mut r, _w) = asyncio::open_connection("127.0.0.1", port(&server))
            .await
            .unwrap();
        let err = r.readuntil(b"\r\n").await.unwrap_err();
        let inc = incomplete(&err);
        assert_eq!(inc.partial, b"no separator here");
        assert_eq!(inc.expected, None);
        // readline returns what is left instead.
        let server = sending_server(b"last line").await;
        let (mut r, _w) = asyncio::open_connection("127.0.0.1", port(&server))
            .await
            .unwrap();
        assert_eq!(r.readline().await.unwrap(), b"last line");
        assert_eq!(r.readline().await.unwrap(), b"");
    });
}

#[test]
fn a_line_over_the_limit() {
    let _g = io_common::shared();
    run(async {
        let server = sending_server(b"0123456789abcdef\nshort\n").await;
        let (mut r, _w) = asyncio::open_connection("127.0.0.1", port(&server))
            .await
            .unwrap();
        r.set_limit(8);
        assert_eq!(r.limit(), 8);
        let err = r.readline().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidData);
        assert!(err.get_ref().unwrap().is::<LimitOverrunError>());
        // As in asyncio, the long line was dropped.
        assert_eq!(r.readline().await.unwrap(), b"short\n");
    });
}

#[test]
fn a_cancelled_readexactly_loses_no_bytes() {
    let _g = io_common::shared();
    run(async {
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let go_rx = Rc::new(RefCell::new(Some(go_rx)));
        let server = asyncio::start_server(
            move |_r, w: StreamWriter| {
                let go = go_rx.borrow_mut().take().unwrap();
                async move {
                    w.write(b"abc");
                    w.drain().await.unwrap();
                    asyncio::to_thread(move || go.recv().unwrap())
                        .await
                        .unwrap();
                    w.write(b"def");
                    w.close();
                    w.wait_closed().await.unwrap();
                }
            },
            "127.0.0.1",
            0,
        )
        .await
        .unwrap();
        let (mut r, _w) = asyncio::open_connection("127.0.0.1", port(&server))
            .await
            .unwrap();
        // Only half the bytes come: the read times out (it is cancelled).
        let timed_out = asyncio::wait_for(r.readexactly(6), ms(50)).await;
        assert!(timed_out.is_err());
        go_tx.send(()).unwrap();
        // The three bytes it had received are still there.
        assert_eq!(r.readexactly(6).await.unwrap(), b"abcdef");
    });
}

#[test]
fn a_cancelled_readline_loses_no_bytes() {
    let _g = io_common::shared();
    run(async {
        let server = asyncio::start_server(
            |_r, w: StreamWriter| async move {
                w.write(b"partial ");
                asyncio::sleep(ms(100)).await.unwrap();
                w.write(b"line\n");
                w.close();
            },
            "127.0.0.1",
            0,
        )
        .await
        .unwrap();
        let (mut r, _w) = asyncio::open_connection("127.0.0.1", port(&server))
            .await
            .unwrap();
        let mut task = asyncio::create_task(async move {
            let line = r.readline().await.map_err(|e| asyncio::io::cancelled(&e));
            (r, line)
        });
        asyncio::sleep(ms(30)).await.unwrap();
        task.cancel();
        let (mut r, line) = (&mut task).await.unwrap();
        assert_eq!(line, Err(true));
        assert_eq!(r.readline().await.unwrap(), b"partial line\n");
    });
}

#[test]
fn drain_waits_for_the_peer_to_read() {
    let _g = io_common::shared();
    run(async {
        let got = Rc::new(RefCell::new(0usize));
        let g = got.clone();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let release_rx = Rc::new(RefCell::new(Some(release_rx)));
        let server = asyncio::start_server(
            move |mut r: StreamReader, _w| {
                let g = g.clone();
                let release = release_rx.borrow_mut().take().unwrap();
                async move {
                    // Read nothing until released: the client's writes pile up.
                    asyncio::to_thread(move || release.recv().unwrap())
                        .await
                        .unwrap();
                    let all = r.read_to_end().await.unwrap();
                    *g.borrow_mut() = all.len();
                }
            },
            "127.0.0.1",
            0,
        )
        .await
        .unwrap();
        let (_r, w) = asyncio::open_connection("127.0.0.1", port(&server))
            .await
            .unwrap();
        let total = 8 << 20;
        w.write(&vec![b'x'; total]);
        assert!(w.buffer_size() > 64 * 1024, "most of it is buffered");
        let drained = asyncio::wait_for(w.drain(), ms(50)).await;
        assert!(drained.is_err(), "drain waits while the peer reads nothing");
        release_tx.send(()).unwrap();
        asyncio::wait_for(w.drain(), Duration::from_secs(5))
            .await
            .unwrap()
            .unwrap();
        assert!(w.buffer_size() <= 16 * 1024);
        w.close();
        w.wait_closed().await.unwrap();
        server.close();
        server.wait_closed().await.unwrap();
        assert_eq!(*got.borrow(), total, "every buffered byte was sent");
    });
}

#[test]
fn buffered_bytes_are_sent_after_the_halves_are_dropped() {
    let _g = io_common::shared();
    run(async {
        let got = Rc::new(RefCell::new(Vec::new()));
        let g = got.clone();
        let server = asyncio::start_server(
            move |mut r: StreamReader, _w| {
                let g = g.clone();
                async move {
                    asyncio::sleep(ms(20)).await.unwrap();
                    *g.borrow_mut() = r.read_to_end().await.unwrap();
                }
            },
            "127.0.0.1",
            0,
        )
        .await
        .unwrap();
        let (r, w) = asyncio::open_connection("127.0.0.1", port(&server))
            .await
            .unwrap();
        let data: Vec<u8> = (0..4 << 20).map(|i| (i % 253) as u8).collect();
        w.write(&data);
        drop((r, w)); // nobody drains, nobody closes
        while server.active_connections() == 0 {
            asyncio::sleep(ms(1)).await.unwrap(); // the server accepts it
        }
        server.close();
        server.wait_closed().await.unwrap();
        assert_eq!(got.borrow().len(), data.len());
        assert!(*got.borrow() == data);
    });
}

#[test]
fn a_server_closed_while_clients_are_connected() {
    let _g = io_common::shared();
    run(async {
        let server = echo_server().await;
        let port = port(&server);
        let (mut r, w) = asyncio::open_connection("127.0.0.1", port).await.unwrap();
        w.write(b"before\n");
        assert_eq!(r.readline().await.unwrap(), b"before\n");
        assert_eq!(server.active_connections(), 1);
        server.close();
        assert!(!server.is_serving());
        // New connections are refused...
        let err = asyncio::open_connection("127.0.0.1", port)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
        // ...the existing one goes on...
        w.write(b"after\n");
        assert_eq!(r.readline().await.unwrap(), b"after\n");
        // ...and wait_closed waits for it.
        let waiting = asyncio::wait_for(server.wait_closed(), ms(30)).await;
        assert!(waiting.is_err(), "a connection is still open");
        w.close();
        asyncio::wait_for(server.wait_closed(), Duration::from_secs(5))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(server.active_connections(), 0);
    });
}

#[test]
fn close_clients_closes_the_connections() {
    let _g = io_common::shared();
    run(async {
        let server = echo_server().await;
        let (mut r, w) = asyncio::open_connection("127.0.0.1", port(&server))
            .await
            .unwrap();
        w.write(b"x\n");
        assert_eq!(r.readline().await.unwrap(), b"x\n");
        server.close();
        server.close_clients();
        assert_eq!(r.read(10).await.unwrap(), b"", "the server side closed");
        asyncio::wait_for(server.wait_closed(), Duration::from_secs(5))
            .await
            .unwrap()
            .unwrap();
    });
}

#[test]
fn serve_forever_until_cancelled() {
    let _g = io_common::shared();
    run(async {
        let server = Rc::new(echo_server().await);
        let s = server.clone();
        let mut serving = asyncio::create_task(async move { s.serve_forever().await });
        let (mut r, w) = asyncio::open_connection("127.0.0.1", port(&server))
            .await
            .unwrap();
        w.write(b"hi\n");
        assert_eq!(r.readline().await.unwrap(), b"hi\n");
        w.close();
        asyncio::sleep(ms(10)).await.unwrap();
        serving.cancel();
        assert!((&mut serving).await.is_err());
        assert!(serving.cancelled());
        assert!(!server.is_serving());
        // And closing from elsewhere ends serve_forever normally.
        let server = echo_server().await;
        let server = Rc::new(server);
        let s = server.clone();
        let serving = asyncio::create_task(async move { s.serve_forever().await });
        asyncio::sleep(ms(10)).await.unwrap();
        server.close();
        assert!(serving.await.unwrap().is_ok());
    });
}

#[test]
fn writer_close_gives_the_peer_end_of_file() {
    let _g = io_common::shared();
    run(async {
        let server = echo_server().await;
        let (mut r, w) = asyncio::open_connection("127.0.0.1", port(&server))
            .await
            .unwrap();
        assert!(w.can_write_eof());
        w.write(b"bye\n");
        w.close();
        assert!(w.is_closing());
        w.wait_closed().await.unwrap();
        // Our side is closed: reading now gives end of file.
        assert_eq!(r.read(10).await.unwrap(), b"");
        // Writing and draining a closed writer: ignored, then an error.
        w.write(b"ignored");
        let err = w.drain().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionReset);
    });
}

#[test]
fn writing_to_a_peer_that_went_away_fails() {
    let _g = io_common::shared();
    run(async {
        let server = asyncio::start_server(
            |_r, w: StreamWriter| async move { w.abort() },
            "127.0.0.1",
            0,
        )
        .await
        .unwrap();
        let (mut r, w) = asyncio::open_connection("127.0.0.1", port(&server))
            .await
            .unwrap();
        assert_eq!(r.read(10).await.unwrap(), b"");
        // The peer is gone: writes fail within a few rounds (the first may
        // still be accepted by the kernel).
        let mut failed = None;
        for _ in 0..100 {
            w.write(&[0u8; 1024]);
            if let Err(e) = w.drain().await {
                failed = Some(e);
                break;
            }
            asyncio::sleep(ms(5)).await.unwrap();
        }
        let e = failed.expect("writing to a closed peer fails");
        assert!(
            matches!(e.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset),
            "{e}"
        );
        assert!(w.wait_closed().await.is_err(), "closed by the error");
    });
}

#[test]
fn open_connection_refused() {
    let _g = io_common::shared();
    run(async {
        let server = echo_server().await;
        let port = port(&server);
        server.close();
        server.wait_closed().await.unwrap();
        let err = asyncio::open_connection("127.0.0.1", port)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
        assert!(
            err.to_string().contains(&format!("127.0.0.1:{port}")),
            "{err}"
        );
    });
}

#[test]
fn handlers_left_running_are_cancelled_when_the_loop_closes() {
    let _g = io_common::exclusive();
    let before = io_common::open_fds();
    let cleaned = Rc::new(RefCell::new(false));
    let c = cleaned.clone();
    run(async move {
        let server = asyncio::start_server(
            move |mut r: StreamReader, _w| {
                let c = c.clone();
                async move {
                    if let Err(e) = r.readline().await {
                        assert!(asyncio::io::cancelled(&e));
                        *c.borrow_mut() = true;
                    }
                }
            },
            "127.0.0.1",
            0,
        )
        .await
        .unwrap();
        let (_r, w) = asyncio::open_connection("127.0.0.1", port(&server))
            .await
            .unwrap();
        w.write(b"no newline yet");
        asyncio::sleep(ms(20)).await.unwrap();
        // Return with the server serving and the handler waiting.
    });
    assert!(*cleaned.borrow(), "the handler saw its cancellation");
    assert_eq!(io_common::open_fds(), before, "descriptors leaked");
}

#[test]
fn a_peer_reset_reaches_the_reader_and_the_writer() {
    let _g = io_common::shared();
    run(async {
        let seen = Rc::new(RefCell::new(Vec::new()));
        let done = Rc::new(asyncio::Event::new());
        let (s, d) = (seen.clone(), done.clone());
        let server = asyncio::start_server(
            move |mut r: StreamReader, w: StreamWriter| {
                let (s, d) = (s.clone(), d.clone());
                async move {
                    let line = r.readline().await.unwrap();
                    w.write(&line);
                    w.drain().await.unwrap();
                    let first = r.readline().await.unwrap_err().kind();
                    // The read error closed the connection: later reads and
                    // the writer report it.
                    let again = r.read(10).await.unwrap_err().kind();
                    let drain = w.drain().await.unwrap_err().kind();
                    let closed = w.wait_closed().await.unwrap_err().kind();
                    s.borrow_mut().extend([first, again, drain, closed]);
                    d.set();
                }
            },
            "127.0.0.1",
            0,
        )
        .await
        .unwrap();
        let c = std::net::TcpStream::connect(server.local_addrs()[0]).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        std::io::Write::write_all(&mut &c, b"hello\n").unwrap();
        // Wait (off the loop) for the echo, then reset the connection.
        let c = asyncio::to_thread(move || {
            let mut buf = [0u8; 6];
            std::io::Read::read_exact(&mut &c, &mut buf).unwrap();
            c
        })
        .await
        .unwrap();
        io_common::reset(c);
        done.wait().await.unwrap();
        assert_eq!(*seen.borrow(), [ErrorKind::ConnectionReset; 4]);
    });
}

#[test]
fn a_burst_beyond_one_accept_batch_is_all_served() {
    let _g = io_common::shared();
    run(async {
        let server = echo_server().await;
        let addr = server.local_addrs()[0];
        // Let the server look once and find no connection waiting.
        asyncio::sleep(ms(10)).await.unwrap();
        // More connections than one readiness event accepts (100), all
        // queued before the loop runs again: after the first batch no new
        // event comes, so the server must go on by itself.
        let clients: Vec<_> = (0..120)
            .map(|_| std::net::TcpStream::connect(addr).unwrap())
            .collect();
        // Block the loop's thread (on purpose) while the kernel finishes the
        // handshakes, so all of them are queued at the next poll.
        std::thread::sleep(ms(50));
        while server.active_connections() < clients.len() {
            asyncio::sleep(ms(1)).await.unwrap();
        }
        assert_eq!(server.active_connections(), 120);
        drop(clients);
        server.close();
        server.wait_closed().await.unwrap();
    });
}
