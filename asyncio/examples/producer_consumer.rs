//! Producers and consumers on asyncio queues.
//!
//! Part 1 is the example of Python's `asyncio.Queue` documentation: workers
//! take sleep durations from a queue, `join()` waits until every item is
//! done, then the workers are cancelled. Part 2 is a bounded pipeline: the
//! producer waits while the queue is full, and `shutdown()` ends it.
//!
//! ```sh
//! cargo run --example producer_consumer
//! ```

use std::rc::Rc;
use std::time::Duration;

use asyncio::{create_task, get_running_loop, sleep, CancelledError, GetError, Queue};

/// A small deterministic generator (xorshift), standing in for `random`.
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

async fn worker(name: String, queue: Rc<Queue<Duration>>) -> Result<(), CancelledError> {
    loop {
        // Get a "work item" out of the queue.
        let sleep_for = match queue.get().await {
            Ok(d) => d,
            Err(GetError::Cancelled(cancelled)) => return Err(cancelled),
            Err(GetError::ShutDown(_)) => return Ok(()),
        };
        // Sleep for the "sleep_for" seconds.
        sleep(sleep_for).await?;
        // Notify the queue that the "work item" has been processed.
        queue.task_done().expect("one task_done per item");
        println!(
            "{name} has slept for {:.2} seconds",
            sleep_for.as_secs_f64()
        );
    }
}

async fn workers_and_join() {
    let lp = get_running_loop().expect("inside asyncio::main");
    // Create a queue that we will use to store our "workload".
    let queue = Rc::new(Queue::new(0));
    // Generate random timings and put them into the queue.
    let mut seed = 0x2545_f491;
    let mut total_sleep_time = Duration::ZERO;
    for _ in 0..20 {
        let sleep_for = Duration::from_millis(10 + next(&mut seed) % 190);
        total_sleep_time += sleep_for;
        queue.put_nowait(sleep_for).expect("unbounded");
    }
    // Create three worker tasks to process the queue concurrently.
    let tasks: Vec<_> = (0..3)
        .map(|i| create_task(worker(format!("worker-{i}"), queue.clone())))
        .collect();
    // Wait until the queue is fully processed.
    let started_at = lp.time();
    queue.join().await.expect("main is not cancelled");
    let total_slept_for = lp.time() - started_at;
    // Cancel our worker tasks, and wait until they are cancelled.
    for task in &tasks {
        task.cancel();
    }
    for task in tasks {
        assert!(task.await.is_err(), "a worker ended cancelled");
    }
    println!("====");
    println!(
        "3 workers slept in parallel for {:.2} seconds",
        total_slept_for.as_secs_f64()
    );
    println!(
        "total expected sleep time: {:.2} seconds",
        total_sleep_time.as_secs_f64()
    );
}

async fn bounded_pipeline() {
    // At most two items wait in the queue: the producer is held back.
    let queue = Rc::new(Queue::new(2));
    let q = queue.clone();
    let consumer = create_task(async move {
        let mut received = Vec::new();
        loop {
            match q.get().await {
                Ok(item) => {
                    sleep(Duration::from_millis(5)).await?; // a slow consumer
                    received.push(item);
                }
                // Shut down and drained: the pipeline is over.
                Err(GetError::ShutDown(_)) => return Ok(received),
                Err(GetError::Cancelled(cancelled)) => return Err(cancelled),
            }
        }
    });
    for item in 0..10 {
        if let Err(e) = queue.put(item).await {
            panic!("put failed: {e}");
        }
        println!("produced {item} (queue holds {})", queue.qsize());
    }
    queue.shutdown(false); // gets drain what is left, then fail
    let received = consumer
        .await
        .expect("not cancelled")
        .expect("not cancelled");
    println!("consumed {received:?}");
}

#[asyncio::main]
async fn main() {
    workers_and_join().await;
    println!();
    bounded_pipeline().await;
}
