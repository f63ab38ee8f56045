//! Signals on the loop: handlers, their removal, and Ctrl-C in `run`.
#![cfg(unix)]

mod io_common;

use std::cell::Cell;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::time::Duration;

use io_common::{ms, run};

fn raise(sig: i32) {
    // SAFETY: sends a signal to this process; each test that does has a
    // handler installed for it (or checks the default is harmless).
    unsafe { libc::kill(libc::getpid(), sig) };
}

#[test]
fn a_handler_runs_on_the_loop_thread() {
    run(async {
        let lp = asyncio::get_running_loop().unwrap();
        let got = Rc::new(Cell::new(0));
        let g = got.clone();
        let me = std::thread::current().id();
        lp.add_signal_handler(libc::SIGUSR1, move || {
            assert_eq!(std::thread::current().id(), me);
            g.set(g.get() + 1);
        })
        .unwrap();
        raise(libc::SIGUSR1);
        asyncio::timeout(Duration::from_secs(5), async {
            while got.get() == 0 {
                asyncio::sleep(ms(1)).await?;
            }
            Ok::<_, asyncio::CancelledError>(())
        })
        .await
        .expect("the handler ran")
        .unwrap();
        assert!(lp.remove_signal_handler(libc::SIGUSR1));
    });
}

#[test]
fn a_removed_handler_no_longer_runs() {
    run(async {
        let lp = asyncio::get_running_loop().unwrap();
        let first = Rc::new(Cell::new(0));
        let second = Rc::new(Cell::new(0));
        let f = first.clone();
        lp.add_signal_handler(libc::SIGUSR2, move || f.set(f.get() + 1))
            .unwrap();
        let s = second.clone();
        assert!(lp.remove_signal_handler(libc::SIGUSR2));
        assert!(!lp.remove_signal_handler(libc::SIGUSR2));
        lp.add_signal_handler(libc::SIGUSR2, move || s.set(s.get() + 1))
            .unwrap();
        raise(libc::SIGUSR2);
        asyncio::wait_for(
            async {
                while second.get() == 0 {
                    asyncio::sleep(ms(1)).await.unwrap();
                }
            },
            Duration::from_secs(5),
        )
        .await
        .expect("the new handler ran");
        assert_eq!(first.get(), 0);
        assert!(lp.remove_signal_handler(libc::SIGUSR2));
    });
}

#[test]
fn uncatchable_signals_are_refused() {
    run(async {
        let lp = asyncio::get_running_loop().unwrap();
        let err = lp.add_signal_handler(libc::SIGKILL, || ()).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        assert!(lp.add_signal_handler(0, || ()).is_err());
    });
}

/// The child half of the Ctrl-C tests: does nothing unless the parent test
/// started this binary with `ASYNCIO_SIGINT_CHILD` set.
#[test]
fn sigint_child() {
    let Ok(mode) = std::env::var("ASYNCIO_SIGINT_CHILD") else {
        return;
    };
    // A shell that started the tests as a background job left SIGINT
    // ignored (POSIX does that for asynchronous commands), and `run`
    // rightly leaves an ignored SIGINT alone, as asyncio does. Each mode
    // states the disposition it is about.
    let disposition = if mode == "ignored" {
        libc::SIG_IGN
    } else {
        libc::SIG_DFL
    };
    // SAFETY: sets SIGINT's disposition before this process installs any
    // handler of its own.
    unsafe { libc::signal(libc::SIGINT, disposition) };
    let patience = if mode == "ignored" {
        Duration::from_millis(300)
    } else {
        Duration::from_secs(20)
    };
    let mut runner = asyncio::Runner::new();
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        runner.run(async move {
            println!("ready");
            match asyncio::sleep(patience).await {
                Ok(()) => Ok("timed out"),
                Err(cancelled) => {
                    println!("cancelled");
                    if mode == "swallow" {
                        Ok("swallowed")
                    } else {
                        Err(cancelled) // ends cancelled
                    }
                }
            }
        })
    }));
    match out {
        Ok(v) => println!("run returned {}", v.unwrap()),
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            println!("run panicked: {msg}");
        }
    }
}

fn sigint_child_output(mode: &str) -> String {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "sigint_child", "--nocapture", "--test-threads=1"])
        .env("ASYNCIO_SIGINT_CHILD", mode)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let _dog = io_common::watchdog(Duration::from_secs(20));
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut text = String::new();
    loop {
        let mut line = String::new();
        assert!(out.read_line(&mut line).unwrap() > 0, "child ended: {text}");
        text.push_str(&line);
        if line.trim_end().ends_with("ready") {
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(50));
    // SAFETY: signals our own child process.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    std::io::Read::read_to_string(&mut out, &mut text).unwrap();
    assert!(child.wait().unwrap().success(), "child failed: {text}");
    text
}

#[test]
fn sigint_cancels_the_main_task_of_runner_run() {
    let text = sigint_child_output("propagate");
    assert!(text.contains("cancelled"), "{text}");
    assert!(
        text.contains("run panicked: asyncio: KeyboardInterrupt"),
        "{text}"
    );
}

#[test]
fn a_main_task_that_handles_sigint_returns_normally() {
    let text = sigint_child_output("swallow");
    assert!(text.contains("cancelled"), "{text}");
    assert!(text.contains("run returned swallowed"), "{text}");
}

#[test]
fn an_ignored_sigint_is_left_alone() {
    let text = sigint_child_output("ignored");
    assert!(!text.contains("cancelled"), "{text}");
    assert!(text.contains("run returned timed out"), "{text}");
}
