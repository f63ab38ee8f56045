//! The four programs of the project's seed document, in Rust.
//!
//! ```text
//! cargo run --release --example seed          # all four, in order
//! cargo run --release --example seed -- 3     # just program 3
//! ```
//!
//! Each prints exactly the lines CPython prints for the same program, in
//! the same order, and takes the same time: about 3 s, 6 s, 1 s and 15 s.

use std::cell::RefCell;
use std::time::Duration;

use asyncio::{CancelledError, TimeoutError};

thread_local! {
    /// `Some` while a test captures the output instead of printing it.
    static CAPTURE: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
}

/// `print(...)`: to stdout, or into the test's capture.
macro_rules! print_line {
    ($($arg:tt)*) => {{
        let line = format!($($arg)*);
        CAPTURE.with(|c| match c.borrow_mut().as_mut() {
            Some(lines) => lines.push(line),
            None => println!("{line}"),
        });
    }};
}

fn seconds(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// `async def delay(delay_seconds, task_number=0)`.
async fn delay(delay_seconds: u64, task_number: u64) -> Result<u64, CancelledError> {
    print_line!("sleeping for {delay_seconds} second(s)- {task_number}");
    asyncio::sleep(seconds(delay_seconds)).await?;
    print_line!("finished sleeping for {delay_seconds} second(s)- {task_number}");
    Ok(delay_seconds)
}

/// Creating tasks: three sleepers run concurrently, 3 s in all.
async fn create_tasks() -> Result<(), CancelledError> {
    let task_1 = asyncio::create_task(delay(3, 1));
    let task_2 = asyncio::create_task(delay(3, 2));
    let task_3 = asyncio::create_task(delay(3, 3));
    task_1.flatten().await?;
    task_2.flatten().await?;
    task_3.flatten().await?;
    Ok(())
}

/// Cancelling a task while polling `done()` every second.
async fn cancel_while_polling() -> Result<(), CancelledError> {
    let long_task = asyncio::create_task(delay(10, 0));
    let mut seconds_elapsed = 0;
    while !long_task.done() {
        print_line!("Task not finished, checking again in a second.");
        asyncio::sleep(seconds(1)).await?;
        seconds_elapsed += 1;
        if seconds_elapsed == 5 {
            long_task.cancel();
        }
    }
    if let Err(_cancelled) = long_task.await {
        print_line!("Our task was cancelled");
    }
    Ok(())
}

/// `wait_for` with a timeout: the task is cancelled when it expires.
async fn wait_for_timeout() -> Result<(), CancelledError> {
    let mut delay_task = asyncio::create_task(delay(2, 0));
    match asyncio::wait_for(&mut delay_task, seconds(1)).await {
        Ok(result) => print_line!("{}", result??),
        Err(TimeoutError) => {
            print_line!("Got a timeout!");
            print_line!(
                "Was the task cancelled? {}",
                python_bool(delay_task.cancelled())
            );
        }
    }
    Ok(())
}

/// `wait_for(shield(task), 5)`: the timeout fires, the task runs on.
async fn shielded_wait_for() -> Result<(), CancelledError> {
    let mut task = asyncio::create_task(delay(15, 0));
    match asyncio::wait_for(asyncio::shield(&mut task), seconds(5)).await {
        Ok(result) => print_line!("{}", result??),
        Err(TimeoutError) => {
            print_line!("Task took longer than five seconds, it will finish soon!");
            let result = task.await??;
            print_line!("{result}");
        }
    }
    Ok(())
}

fn python_bool(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

/// Runs seed program `n` (1–4) on a fresh loop.
fn run_program(n: u32, runner: &mut asyncio::Runner) {
    let result = match n {
        1 => runner.run(create_tasks()),
        2 => runner.run(cancel_while_polling()),
        3 => runner.run(wait_for_timeout()),
        4 => runner.run(shielded_wait_for()),
        _ => panic!("there are four seed programs: 1, 2, 3 and 4"),
    };
    result.expect("the main task is never cancelled here");
}

/// Runs program `n` on virtual time, capturing its lines (for the test).
#[allow(dead_code)] // used by tests/seed.rs, which includes this file
pub fn capture_program(n: u32) -> (Vec<String>, Duration) {
    CAPTURE.with(|c| *c.borrow_mut() = Some(Vec::new()));
    let mut runner = asyncio::Runner::builder().virtual_time(true).build();
    let elapsed = runner.run(async move {
        let lp = asyncio::get_running_loop().unwrap();
        let t0 = lp.time();
        match n {
            1 => create_tasks().await,
            2 => cancel_while_polling().await,
            3 => wait_for_timeout().await,
            _ => shielded_wait_for().await,
        }
        .unwrap();
        lp.time() - t0
    });
    runner.close();
    let lines = CAPTURE.with(|c| c.borrow_mut().take().unwrap());
    (lines, elapsed)
}

fn main() {
    let programs: Vec<u32> = match std::env::args().nth(1) {
        Some(arg) => vec![arg
            .parse()
            .unwrap_or_else(|_| panic!("usage: seed [1|2|3|4], got {arg:?}"))],
        None => vec![1, 2, 3, 4],
    };
    for n in programs {
        let mut runner = asyncio::Runner::new();
        run_program(n, &mut runner);
        runner.close();
    }
}
