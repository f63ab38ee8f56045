//! The streams on Unix sockets: `open_unix_connection`,
//! `start_unix_server`, and the socket file's life.
#![cfg(unix)]

mod io_common;

use std::io::ErrorKind;
use std::path::PathBuf;

use asyncio::{StreamReader, StreamWriter};
use io_common::{ms, run};

fn sock_path(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("asyncio-su-{name}-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

async fn echo(mut r: StreamReader, w: StreamWriter) {
    loop {
        match r.readline().await {
            Ok(line) if !line.is_empty() => w.write(&line),
            _ => break,
        }
        if w.drain().await.is_err() {
            break;
        }
    }
    w.close();
}

#[test]
fn echo_over_a_unix_server() {
    let _g = io_common::shared();
    run(async {
        let path = sock_path("echo");
        let server = asyncio::start_unix_server(echo, &path).await.unwrap();
        assert_eq!(server.path(), Some(path.as_path()));
        assert!(server.local_addrs().is_empty());
        let mut clients = Vec::new();
        for i in 0..5 {
            let p = path.clone();
            clients.push(asyncio::create_task(async move {
                let (mut r, w) = asyncio::open_unix_connection(&p).await.unwrap();
                assert_eq!(w.peer_addr(), None, "not a TCP connection");
                let line = format!("client {i}\n");
                w.write(line.as_bytes());
                assert_eq!(r.readline().await.unwrap(), line.as_bytes());
                w.write_eof(); // a Unix socket half-closes
                assert_eq!(r.read_to_end().await.unwrap(), b"");
            }));
        }
        for c in clients {
            c.await.unwrap();
        }
        server.close();
        server.wait_closed().await.unwrap();
        assert!(!path.exists(), "closing removed the socket file");
    });
}

#[test]
fn a_stale_socket_file_is_replaced() {
    let _g = io_common::shared();
    run(async {
        let path = sock_path("stale");
        // A socket file left behind by a process that is gone.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let server = asyncio::start_unix_server(echo, &path).await.unwrap();
        let (mut r, w) = asyncio::open_unix_connection(&path).await.unwrap();
        w.write(b"fresh\n");
        assert_eq!(r.readline().await.unwrap(), b"fresh\n");
        server.close();
        assert!(!path.exists());
    });
}

#[test]
fn a_file_that_is_not_a_socket_is_left_alone() {
    let _g = io_common::shared();
    run(async {
        let path = sock_path("regular");
        std::fs::write(&path, b"precious").unwrap();
        let err = asyncio::start_unix_server(echo, &path).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists);
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"precious");
        std::fs::remove_file(&path).unwrap();
    });
}

#[test]
fn close_keeps_a_socket_file_that_replaced_ours() {
    let _g = io_common::shared();
    run(async {
        let path = sock_path("replaced");
        let server = asyncio::start_unix_server(echo, &path).await.unwrap();
        // Someone else removed our file and bound their own socket there.
        std::fs::remove_file(&path).unwrap();
        let theirs = std::os::unix::net::UnixListener::bind(&path).unwrap();
        server.close();
        assert!(path.exists(), "their socket file is still there");
        drop(theirs);
        std::fs::remove_file(&path).unwrap();
    });
}

#[test]
fn open_unix_connection_to_a_missing_socket_names_the_path() {
    let _g = io_common::shared();
    run(async {
        let path = sock_path("missing");
        let err = asyncio::open_unix_connection(&path).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
    });
}

#[test]
fn a_unix_server_closed_while_clients_are_connected() {
    let _g = io_common::shared();
    run(async {
        let path = sock_path("closing");
        let server = asyncio::start_unix_server(echo, &path).await.unwrap();
        let (mut r, w) = asyncio::open_unix_connection(&path).await.unwrap();
        w.write(b"before\n");
        assert_eq!(r.readline().await.unwrap(), b"before\n");
        server.close();
        // No new connections...
        assert!(asyncio::open_unix_connection(&path).await.is_err());
        // ...the one open goes on, and wait_closed waits for it.
        w.write(b"after\n");
        assert_eq!(r.readline().await.unwrap(), b"after\n");
        assert!(asyncio::wait_for(server.wait_closed(), ms(30))
            .await
            .is_err());
        w.close();
        server.wait_closed().await.unwrap();
        assert_eq!(server.active_connections(), 0);
    });
}

#[test]
fn no_descriptor_is_left_open_after_the_loop_closes() {
    let _g = io_common::exclusive();
    let before = io_common::open_fds();
    let path = sock_path("fds");
    let p = path.clone();
    run(async move {
        let server = asyncio::start_unix_server(echo, &p).await.unwrap();
        // Left open on purpose when the loop closes: a connection with a
        // handler waiting in readline, a writer with bytes buffered for a
        // peer that reads nothing, and a child's three pipes.
        let (_r, w) = asyncio::open_unix_connection(&p).await.unwrap();
        w.write(b"no newline yet");
        let (_r2, w2) = asyncio::open_unix_connection(&p).await.unwrap();
        w2.write(&vec![b'x'; 4 << 20]);
        let mut child = asyncio::create_subprocess_exec("cat", [] as [&str; 0])
            .await
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        stdin.write(&vec![b'y'; 1 << 20]); // more than the pipe holds
        asyncio::sleep(ms(20)).await.unwrap();
        drop(stdin); // its buffer is still being sent: the transport lives on
        child.kill().unwrap();
        child.wait().await.unwrap();
        drop(server); // the handle; the server itself serves on
    });
    assert_eq!(io_common::open_fds(), before, "descriptors leaked");
    assert!(!path.exists(), "the server's socket file went with it");
}
