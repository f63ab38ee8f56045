//! Helpers shared by the integration tests: an event log, the loop's clock,
//! durations.
#![allow(dead_code)]

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// An ordered record of events, shared between tasks.
pub type Log = Rc<RefCell<Vec<String>>>;

pub fn log() -> Log {
    Rc::new(RefCell::new(Vec::new()))
}

pub fn push(log: &Log, event: impl Into<String>) {
    log.borrow_mut().push(event.into());
}

/// Takes every event recorded so far, leaving the log empty.
pub fn take(log: &Log) -> Vec<String> {
    std::mem::take(&mut *log.borrow_mut())
}

/// The running loop's clock.
pub fn now() -> Instant {
    asyncio::get_running_loop().expect("a running loop").time()
}

/// Virtual time elapsed since a start point.
pub struct Clock(Instant);

impl Clock {
    pub fn start() -> Clock {
        Clock(now())
    }

    pub fn at(&self) -> Instant {
        self.0
    }

    pub fn elapsed(&self) -> Duration {
        now() - self.0
    }
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A runner on virtual time.
pub fn vrunner() -> asyncio::Runner {
    asyncio::Runner::builder().virtual_time(true).build()
}

/// A runner on virtual time whose exception handler records every report
/// as `"<message> (task <name>)"`.
pub fn vrunner_with_reports() -> (asyncio::Runner, Log) {
    let reports = log();
    let r = reports.clone();
    let runner = asyncio::Runner::builder()
        .virtual_time(true)
        .exception_handler(move |ctx| r.borrow_mut().push(ctx.to_string()))
        .build();
    (runner, reports)
}

/// Pushes `event` to the log when dropped.
pub struct DropGuard(pub Log, pub &'static str);

impl Drop for DropGuard {
    fn drop(&mut self) {
        push(&self.0, self.1);
    }
}

/// The text of a panic payload.
pub fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic>".to_string()
    }
}

/// A task asleep for 2 s that logs `sleeper cancelled` or `sleeper woke`:
/// a witness of where a cancellation lands in a turn.
pub fn sleeper(log: &Log) -> asyncio::Task<()> {
    let log = log.clone();
    asyncio::create_task(async move {
        let r = asyncio::sleep(secs(2)).await;
        push(
            &log,
            if r.is_err() {
                "sleeper cancelled"
            } else {
                "sleeper woke"
            },
        );
    })
}

/// Cancels `a` then `b`, or `b` then `a`.
pub fn cancel_in_order(a_first: bool, a: &asyncio::TaskRef, b: &asyncio::TaskRef) {
    let (first, second) = if a_first { (a, b) } else { (b, a) };
    first.cancel();
    second.cancel();
}
