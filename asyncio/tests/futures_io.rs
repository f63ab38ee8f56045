//! The `futures-io` traits on the streams and the sockets: the adapters of
//! the `futures` crate work, back-pressure holds, and every waiting poll is
//! a checkpoint (a cancelled read loses no byte).

mod io_common;

use std::cell::RefCell;
use std::io::ErrorKind;
use std::rc::Rc;
use std::time::Duration;

use asyncio::net::{TcpListener, TcpStream};
use asyncio::{Server, StreamReader, StreamWriter};

use futures::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use io_common::{ms, run};

/// A server that echoes lines until end of file, written with the
/// `futures-io` extension traits.
async fn echo_server() -> Server {
    asyncio::start_server(
        |reader: StreamReader, mut writer: StreamWriter| async move {
            let mut lines = reader.lines();
            while let Some(Ok(line)) = futures::StreamExt::next(&mut lines).await {
                let echoed = format!("{line}\n");
                if writer.write_all(echoed.as_bytes()).await.is_err() {
                    break;
                }
            }
            let _ = AsyncWriteExt::close(&mut writer).await;
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

async fn tcp_pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = asyncio::create_task(TcpStream::connect(l.local_addr().unwrap()));
    let (server, _) = l.accept().await.unwrap();
    (client.await.unwrap().unwrap(), server)
}

#[test]
fn streams_through_the_extension_traits() {
    let _g = io_common::shared();
    run(async {
        let server = echo_server().await;
        let (mut r, mut w) = asyncio::open_connection("127.0.0.1", port(&server))
            .await
            .unwrap();
        w.write_all(b"one\ntwo\nthree\n").await.unwrap();
        w.flush().await.unwrap();
        assert_eq!(w.buffer_size(), 0, "flush waits for an empty buffer");
        let mut line = String::new();
        r.read_line(&mut line).await.unwrap();
        assert_eq!(line, "one\n");
        let mut two = [0u8; 4];
        r.read_exact(&mut two).await.unwrap();
        assert_eq!(&two, b"two\n");
        // The reader's own methods share the buffer with the traits.
        assert_eq!(r.readline().await.unwrap(), b"three\n");
        w.write_eof();
        let mut rest = Vec::new();
        AsyncReadExt::read_to_end(&mut r, &mut rest).await.unwrap();
        assert!(rest.is_empty(), "the server closed after our end of file");
        server.close();
        server.wait_closed().await.unwrap();
    });
}

#[test]
fn a_cancelled_futures_io_read_loses_no_bytes() {
    let _g = io_common::shared();
    run(async {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let client = asyncio::create_task(asyncio::open_connection("127.0.0.1", port));
        let (peer, _) = l.accept().await.unwrap();
        let (mut r, _w) = client.await.unwrap().unwrap();
        let mut reader = asyncio::create_task(async move {
            let mut buf = [0u8; 16];
            let got = AsyncReadExt::read(&mut r, &mut buf)
                .await
                .map(|n| buf[..n].to_vec())
                .map_err(|e| asyncio::io::cancelled(&e));
            (r, got)
        });
        asyncio::sleep(ms(10)).await.unwrap(); // the reader waits in poll_read
                                               // The bytes arrive (a loopback write lands in the peer's buffer at
                                               // once), and the cancel comes before the reader runs again: the
                                               // cancellation wins, and nothing is consumed.
        peer.write_all(b"keep me").await.unwrap();
        reader.cancel();
        let (mut r, got) = (&mut reader).await.unwrap();
        assert_eq!(got, Err(true));
        assert!(!reader.cancelled(), "the task handled the cancellation");
        drop(peer);
        let mut got = String::new();
        r.read_to_string(&mut got).await.unwrap();
        assert_eq!(got, "keep me");
    });
}

#[test]
fn a_futures_io_read_is_a_checkpoint_for_wait_for() {
    let _g = io_common::shared();
    run(async {
        let (c, mut s) = tcp_pair().await;
        let mut buf = [0u8; 8];
        // Were poll_read not a checkpoint, wait_for could not interrupt it
        // and this would wait for bytes that never come.
        let r = asyncio::wait_for(AsyncReadExt::read(&mut s, &mut buf), ms(30)).await;
        assert!(r.is_err(), "the read timed out");
        c.write_all(b"late").await.unwrap();
        let mut late = [0u8; 4];
        s.read_exact(&mut late).await.unwrap();
        assert_eq!(&late, b"late");
    });
}

#[test]
fn poll_write_applies_back_pressure_at_the_high_water_mark() {
    let _g = io_common::shared();
    run(async {
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let release_rx = Rc::new(RefCell::new(Some(release_rx)));
        let got = Rc::new(RefCell::new(Vec::new()));
        let g = got.clone();
        let server = asyncio::start_server(
            move |mut r: StreamReader, _w| {
                let release = release_rx.borrow_mut().take().unwrap();
                let g = g.clone();
                async move {
                    asyncio::to_thread(move || release.recv().unwrap())
                        .await
                        .unwrap();
                    *g.borrow_mut() = r.read_to_end().await.unwrap();
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
        let mut w = w;
        let data: Rc<Vec<u8>> = Rc::new((0..8 << 20).map(|i| (i % 251) as u8).collect());
        let d = data.clone();
        let mut writer = asyncio::create_task(async move {
            w.write_all(&d).await.unwrap();
            AsyncWriteExt::close(&mut w).await.unwrap();
        });
        // The peer reads nothing: the writer blocks (with the buffer at the
        // high-water mark, not with the 8 MiB in it: see the next test).
        asyncio::sleep(ms(50)).await.unwrap();
        assert!(!writer.done(), "write_all waits for the peer");
        release_tx.send(()).unwrap();
        asyncio::wait_for(&mut writer, Duration::from_secs(5))
            .await
            .expect("the writer finished")
            .unwrap();
        server.close();
        asyncio::wait_for(server.wait_closed(), Duration::from_secs(5))
            .await
            .unwrap()
            .unwrap();
        assert!(*got.borrow() == *data, "every byte arrived, in order");
    });
}

#[test]
fn the_buffer_never_grows_past_the_high_water_mark() {
    let _g = io_common::shared();
    run(async {
        // Over a Unix socket this time, to a handler that never reads.
        let path = unix_path("high-water");
        let server = asyncio::start_unix_server(
            |r, w| async move {
                let _keep_open = (r, w);
                let _ = asyncio::sleep(Duration::from_secs(3600)).await;
            },
            &path,
        )
        .await
        .unwrap();
        let (_r, mut w) = asyncio::open_unix_connection(&path).await.unwrap();
        let chunk = vec![7u8; 10_000];
        let mut sent = 0usize;
        // Until a write blocks (back-pressure) and times out.
        while let Ok(n) = asyncio::wait_for(AsyncWriteExt::write(&mut w, &chunk), ms(30)).await {
            sent += n.unwrap();
            assert!(w.buffer_size() <= 64 * 1024, "{}", w.buffer_size());
        }
        assert!(sent > 64 * 1024, "the kernel took some before we blocked");
        let buffered = w.buffer_size();
        assert!(buffered > 0 && buffered <= 64 * 1024, "{buffered}");
        w.abort();
        server.close();
        server.abort_clients();
    });
}

fn unix_path(name: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("asyncio-fio-{name}-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

#[test]
fn close_through_the_trait_closes_the_connection() {
    let _g = io_common::shared();
    run(async {
        let server = echo_server().await;
        let (mut r, mut w) = asyncio::open_connection("127.0.0.1", port(&server))
            .await
            .unwrap();
        w.write_all(b"last\n").await.unwrap();
        AsyncWriteExt::close(&mut w).await.unwrap();
        assert!(w.is_closing());
        // Closed: the buffer was sent first, and our reader reads end of file.
        assert_eq!(r.read(10).await.unwrap(), b"");
        let err = w.write_all(b"more").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BrokenPipe);
    });
}

#[test]
fn tcp_streams_copy_through_the_traits() {
    let _g = io_common::shared();
    run(async {
        let (mut c, mut s) = tcp_pair().await;
        let data: Vec<u8> = (0..1 << 20).map(|i| (i % 253) as u8).collect();
        let d = data.clone();
        let sender = asyncio::create_task(async move {
            let mut src = &d[..];
            futures::io::copy(&mut src, &mut c).await.unwrap();
            AsyncWriteExt::close(&mut c).await.unwrap(); // shuts the write side
            c
        });
        let mut got = Vec::new();
        AsyncReadExt::read_to_end(&mut s, &mut got).await.unwrap();
        assert!(got == data);
        // Only the write side was shut down: the other direction works.
        let c = sender.await.unwrap();
        s.write_all(b"back").await.unwrap();
        let mut back = [0u8; 4];
        let mut c = c;
        c.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"back");
    });
}

#[test]
fn a_cancelled_tcp_stream_read_loses_no_bytes() {
    let _g = io_common::shared();
    run(async {
        let (c, mut s) = tcp_pair().await;
        let mut reader = asyncio::create_task(async move {
            let mut buf = [0u8; 16];
            let got = AsyncReadExt::read(&mut s, &mut buf)
                .await
                .map(|n| buf[..n].to_vec())
                .map_err(|e| asyncio::io::cancelled(&e));
            (s, got)
        });
        asyncio::sleep(ms(10)).await.unwrap(); // the reader waits in poll_read
        c.write_all(b"keep me").await.unwrap(); // lands in the peer's buffer
        reader.cancel();
        let (mut s, got) = (&mut reader).await.unwrap();
        assert_eq!(got, Err(true));
        let mut got = [0u8; 7];
        s.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"keep me");
    });
}

#[test]
fn a_handler_blocked_in_a_futures_io_read_sees_the_loop_close() {
    let _g = io_common::shared();
    let saw = Rc::new(RefCell::new(None));
    let s = saw.clone();
    run(async move {
        let server = asyncio::start_server(
            move |mut r: StreamReader, _w| {
                let s = s.clone();
                async move {
                    let mut buf = [0u8; 8];
                    let e = AsyncReadExt::read(&mut r, &mut buf).await.unwrap_err();
                    *s.borrow_mut() = Some(asyncio::io::cancelled(&e));
                }
            },
            "127.0.0.1",
            0,
        )
        .await
        .unwrap();
        let (_r, _w) = asyncio::open_connection("127.0.0.1", port(&server))
            .await
            .unwrap();
        asyncio::sleep(ms(20)).await.unwrap();
        // Return with the handler waiting: the loop's close cancels it.
    });
    assert_eq!(
        *saw.borrow(),
        Some(true),
        "the read returned the cancellation"
    );
}
