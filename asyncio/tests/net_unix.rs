//! Unix stream sockets on the loop.
#![cfg(unix)]

mod io_common;

use std::path::PathBuf;

use asyncio::net::{UnixListener, UnixStream};
use io_common::{ms, run};

/// A socket path in a directory of its own, removed with everything in it
/// when the test ends (passing or not): the tests leave nothing behind in
/// the temp dir.
struct SockDir(PathBuf);

impl SockDir {
    fn new(test: &str) -> SockDir {
        let dir =
            std::env::temp_dir().join(format!("asyncio-net-unix-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        SockDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for SockDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn read_all(s: &UnixStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf).await.unwrap() {
            0 => return out,
            n => out.extend_from_slice(&buf[..n]),
        }
    }
}

#[test]
fn echo_over_a_socket_in_a_temp_dir() {
    let _g = io_common::shared();
    let dir = SockDir::new("echo");
    let path = dir.path("echo.sock");
    let p = path.clone();
    run(async move {
        let listener = UnixListener::bind(&p).unwrap();
        assert_eq!(
            listener.local_addr().unwrap().as_pathname(),
            Some(p.as_path())
        );
        let server = asyncio::create_task(async move {
            for _ in 0..2 {
                let (conn, _) = listener.accept().await.unwrap();
                let data = read_all(&conn).await;
                conn.write_all(&data).await.unwrap();
            }
        });
        for msg in [&b"hello"[..], &vec![7u8; 300_000][..]] {
            let c = UnixStream::connect(&p).await.unwrap();
            let c = std::rc::Rc::new(c);
            let w = c.clone();
            let owned = msg.to_vec();
            let writer = asyncio::create_task(async move {
                w.write_all(&owned).await.unwrap();
                w.shutdown(std::net::Shutdown::Write).unwrap();
            });
            assert_eq!(read_all(&c).await, msg);
            writer.await.unwrap();
        }
        server.await.unwrap();
    });
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn connect_to_a_missing_socket_names_the_path() {
    let _g = io_common::shared();
    let dir = SockDir::new("missing");
    let path = dir.path("missing.sock");
    let p = path.clone();
    run(async move {
        let err = UnixStream::connect(&p).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
        assert!(err.to_string().contains("missing.sock"), "{err}");
    });
}

#[test]
fn a_cancelled_accept_takes_no_connection() {
    let _g = io_common::shared();
    let dir = SockDir::new("cancel");
    let path = dir.path("cancel.sock");
    let p = path.clone();
    run(async move {
        let listener = UnixListener::bind(&p).unwrap();
        let r = asyncio::wait_for(listener.accept(), ms(20)).await;
        assert!(r.is_err(), "timed out");
        let c = UnixStream::connect(&p).await.unwrap();
        let (s, _) = listener.accept().await.unwrap();
        c.write_all(b"x").await.unwrap();
        drop(c);
        assert_eq!(read_all(&s).await, b"x");
    });
    std::fs::remove_file(&path).unwrap();
}
