//! The seed's four programs print CPython's lines, in CPython's order, at
//! CPython's (virtual) times.

#[allow(dead_code)]
#[path = "../examples/seed.rs"]
mod seed;

use std::time::Duration;

fn check(n: u32, expected: &[&str], secs: u64) {
    let (lines, elapsed) = seed::capture_program(n);
    assert_eq!(lines, expected, "program {n}");
    assert_eq!(elapsed, Duration::from_secs(secs), "program {n}");
}

#[test]
fn program_1_create_tasks() {
    check(
        1,
        &[
            "sleeping for 3 second(s)- 1",
            "sleeping for 3 second(s)- 2",
            "sleeping for 3 second(s)- 3",
            "finished sleeping for 3 second(s)- 1",
            "finished sleeping for 3 second(s)- 2",
            "finished sleeping for 3 second(s)- 3",
        ],
        3,
    );
}

#[test]
fn program_2_cancel_while_polling() {
    check(
        2,
        &[
            "Task not finished, checking again in a second.",
            "sleeping for 10 second(s)- 0",
            "Task not finished, checking again in a second.",
            "Task not finished, checking again in a second.",
            "Task not finished, checking again in a second.",
            "Task not finished, checking again in a second.",
            "Task not finished, checking again in a second.",
            "Our task was cancelled",
        ],
        6,
    );
}

#[test]
fn program_3_wait_for_timeout() {
    check(
        3,
        &[
            "sleeping for 2 second(s)- 0",
            "Got a timeout!",
            "Was the task cancelled? True",
        ],
        1,
    );
}

#[test]
fn program_4_shield() {
    check(
        4,
        &[
            "sleeping for 15 second(s)- 0",
            "Task took longer than five seconds, it will finish soon!",
            "finished sleeping for 15 second(s)- 0",
            "15",
        ],
        15,
    );
}
