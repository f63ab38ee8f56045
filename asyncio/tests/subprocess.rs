//! Subprocesses on the loop.
#![cfg(unix)]

mod io_common;

use std::time::Duration;

use io_common::{ms, run};

#[test]
fn echo() {
    let _g = io_common::shared();
    run(async {
        let mut p = asyncio::create_subprocess_exec("echo", ["hello", "world"])
            .await
            .unwrap();
        assert!(p.pid() > 0);
        let out = p.stdout.take().unwrap().read_to_end().await.unwrap();
        assert_eq!(out, b"hello world\n");
        assert_eq!(p.wait().await.unwrap(), 0);
        assert_eq!(p.returncode(), Some(0));
    });
}

#[test]
fn cat_round_trips_stdin() {
    let _g = io_common::shared();
    run(async {
        let mut p = asyncio::create_subprocess_exec("cat", [] as [&str; 0])
            .await
            .unwrap();
        let data: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        let stdin = p.stdin.take().unwrap();
        let d = data.clone();
        let writer = asyncio::create_task(async move {
            for chunk in d.chunks(10_000) {
                stdin.write(chunk);
                stdin.drain().await.unwrap(); // back-pressure from the pipe
            }
            stdin.close(); // once the buffer is sent: cat reads end of file
            stdin.wait_closed().await.unwrap();
        });
        let out = p.stdout.take().unwrap().read_to_end().await.unwrap();
        writer.await.unwrap();
        assert_eq!(out, data);
        assert_eq!(p.wait().await.unwrap(), 0);
    });
}

#[test]
fn shell_exit_codes() {
    let _g = io_common::shared();
    run(async {
        for code in [0, 1, 42] {
            let mut p = asyncio::create_subprocess_shell(&format!("exit {code}"))
                .await
                .unwrap();
            assert_eq!(p.wait().await.unwrap(), code);
        }
        let mut p = asyncio::create_subprocess_shell("kill -TERM $$")
            .await
            .unwrap();
        assert_eq!(p.wait().await.unwrap(), -libc::SIGTERM);
    });
}

#[test]
fn kill_a_sleep() {
    let _g = io_common::shared();
    run(async {
        let mut p = asyncio::create_subprocess_exec("sleep", ["10"])
            .await
            .unwrap();
        assert_eq!(p.returncode(), None);
        let t0 = std::time::Instant::now();
        p.kill().unwrap();
        assert_eq!(p.wait().await.unwrap(), -libc::SIGKILL);
        assert!(t0.elapsed() < Duration::from_secs(5));
        // Signalling a reaped child does nothing.
        p.terminate().unwrap();
        p.send_signal(libc::SIGUSR1).unwrap();
    });
}

#[test]
fn communicate_feeds_stdin_and_collects_both_streams() {
    let _g = io_common::shared();
    run(async {
        let mut p = asyncio::create_subprocess_shell("cat; echo done >&2; exit 5")
            .await
            .unwrap();
        let input = vec![b'z'; 100_000];
        let (out, err) = p.communicate(Some(&input)).await.unwrap();
        assert_eq!(out, input);
        assert_eq!(err, b"done\n");
        assert_eq!(p.returncode(), Some(5));
        assert!(p.stdin.is_none() && p.stdout.is_none() && p.stderr.is_none());
    });
}

#[test]
fn stderr_is_piped_separately() {
    let _g = io_common::shared();
    run(async {
        let mut p = asyncio::create_subprocess_shell("echo out; echo err >&2")
            .await
            .unwrap();
        let err = p.stderr.take().unwrap().read_to_end().await.unwrap();
        let out = p.stdout.take().unwrap().read_to_end().await.unwrap();
        assert_eq!(
            (out.as_slice(), err.as_slice()),
            (&b"out\n"[..], &b"err\n"[..])
        );
        p.wait().await.unwrap();
    });
}

#[test]
fn a_cancelled_wait_leaves_the_child_running() {
    let _g = io_common::shared();
    run(async {
        let mut p = asyncio::create_subprocess_exec("sleep", ["10"])
            .await
            .unwrap();
        let r = asyncio::wait_for(p.wait(), ms(50)).await;
        assert!(r.is_err(), "the wait timed out");
        assert_eq!(p.returncode(), None, "still running");
        p.terminate().unwrap();
        let code = asyncio::wait_for(p.wait(), Duration::from_secs(5))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(code, -libc::SIGTERM);
    });
}

#[test]
fn spawn_errors_name_the_command() {
    let _g = io_common::shared();
    run(async {
        let err = asyncio::create_subprocess_exec("/nonexistent/prog", ["x"])
            .await
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
        assert!(err.to_string().contains("/nonexistent/prog x"), "{err}");
    });
}

#[test]
fn the_pipes_are_stream_readers_and_writers() {
    let _g = io_common::shared();
    run(async {
        let mut p = asyncio::create_subprocess_exec("cat", [] as [&str; 0])
            .await
            .unwrap();
        let stdin = p.stdin.take().unwrap();
        let mut stdout = p.stdout.take().unwrap();
        assert_eq!(stdin.peer_addr(), None);
        stdin.writelines([&b"one\n"[..], b"two\n"]);
        assert_eq!(stdout.readline().await.unwrap(), b"one\n");
        assert_eq!(stdout.readline().await.unwrap(), b"two\n");
        // A pipe has no half-close: write_eof closes it.
        assert!(stdin.can_write_eof());
        stdin.write(b"last");
        stdin.write_eof();
        assert_eq!(stdout.read_to_end().await.unwrap(), b"last");
        assert!(stdout.at_eof());
        stdin.wait_closed().await.unwrap();
        assert_eq!(p.wait().await.unwrap(), 0);
    });
}

#[test]
fn the_pipes_implement_futures_io() {
    use futures::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
    let _g = io_common::shared();
    run(async {
        let mut p = asyncio::create_subprocess_exec("tr", ["a-z", "A-Z"])
            .await
            .unwrap();
        let mut stdin = p.stdin.take().unwrap();
        let mut stdout = p.stdout.take().unwrap();
        let data = "abc\n".repeat(50_000); // more than a pipe holds
        let writer = asyncio::create_task(async move {
            stdin.write_all(data.as_bytes()).await.unwrap();
            AsyncWriteExt::close(&mut stdin).await.unwrap(); // the inherent close() does not wait
        });
        let mut first = String::new();
        stdout.read_line(&mut first).await.unwrap();
        assert_eq!(first, "ABC\n");
        let mut rest = String::new();
        stdout.read_to_string(&mut rest).await.unwrap();
        assert_eq!(rest.len(), 4 * 49_999);
        assert!(rest.lines().all(|l| l == "ABC"));
        writer.await.unwrap();
        assert_eq!(p.wait().await.unwrap(), 0);
    });
}

#[test]
fn communicate_with_a_child_that_does_not_read_its_input() {
    let _g = io_common::shared();
    run(async {
        let mut p = asyncio::create_subprocess_shell("exec 0<&-; echo ignored")
            .await
            .unwrap();
        let input = vec![b'x'; 1 << 20];
        let (out, _) = p.communicate(Some(&input)).await.unwrap();
        assert_eq!(out, b"ignored\n");
        assert_eq!(p.returncode(), Some(0));
    });
}
