//! `run` and `Runner`: create a loop, run a main task, close the loop.

use std::fmt;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::time::Duration;

use super::{context, ExceptionHandler, Loop};
use crate::task::Outcome;

/// What the loop hands its exception handler: an error nobody retrieved
/// (a panic in a task whose handle was dropped, a failure during shutdown).
#[derive(Debug, Clone)]
pub struct ExceptionContext {
    /// What happened, e.g. `Task exception was never retrieved: ...`.
    pub message: String,
    /// The task concerned, if any.
    pub task_name: Option<String>,
}

impl fmt::Display for ExceptionContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.task_name {
            Some(name) => write!(f, "{} (task {name})", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Options for a [`Runner`].
pub struct RunnerBuilder {
    virtual_time: bool,
    deadlock_after: Option<Duration>,
    handler: Option<ExceptionHandler>,
}

impl Default for RunnerBuilder {
    fn default() -> Self {
        RunnerBuilder {
            virtual_time: false,
            deadlock_after: Some(Duration::from_secs(10)),
            handler: None,
        }
    }
}

impl RunnerBuilder {
    /// Runs the loop on a virtual clock: whenever nothing is ready, time
    /// jumps to the next timer. A 10-second timeout in a test then takes
    /// microseconds and gives the same answer on every run.
    pub fn virtual_time(mut self, on: bool) -> Self {
        self.virtual_time = on;
        self
    }

    /// On a virtual clock, how long (in real time) the loop may sit with no
    /// task ready, no timer armed, no I/O or worker thread in flight and no
    /// wake from another thread before it panics with a deadlock report
    /// naming the tasks still waiting. Default: 10 seconds; `None` waits for
    /// ever, as a real-clock loop always does (only another thread could
    /// still wake it). A test that deadlocks then fails instead of hanging.
    ///
    /// ```
    /// use std::time::Duration;
    /// let deadlocked = std::panic::catch_unwind(|| {
    ///     let mut runner = asyncio::Runner::builder()
    ///         .virtual_time(true)
    ///         .deadlock_after(Some(Duration::from_millis(10)))
    ///         .build();
    ///     runner.run(async {
    ///         let never = asyncio::Event::new();
    ///         never.wait().await.unwrap(); // nobody will set it
    ///     });
    /// });
    /// assert!(deadlocked.is_err());
    /// ```
    pub fn deadlock_after(mut self, limit: Option<Duration>) -> Self {
        self.deadlock_after = limit;
        self
    }

    /// Replaces the default exception handler (which prints to stderr).
    pub fn exception_handler(mut self, f: impl Fn(&ExceptionContext) + 'static) -> Self {
        self.handler = Some(Box::new(f));
        self
    }

    /// Creates the runner and its loop.
    pub fn build(self) -> Runner {
        Runner {
            lp: Loop::new(self.virtual_time, self.deadlock_after, self.handler),
            closed: false,
        }
    }
}

/// An event loop that can run several main tasks in turn, like
/// `asyncio.Runner`. Tasks left running by one [`Runner::run`] keep their
/// state for the next; [`Runner::close`] (or dropping the runner) cancels
/// them, lets them clean up, and closes the loop.
///
/// ```
/// use std::time::Duration;
/// let mut runner = asyncio::Runner::builder().virtual_time(true).build();
/// let a = runner.run(async { 1 });
/// let b = runner.run(async {
///     asyncio::sleep(Duration::from_secs(3600)).await.unwrap();
///     2
/// });
/// assert_eq!(a + b, 3);
/// runner.close();
/// ```
pub struct Runner {
    lp: Rc<Loop>,
    closed: bool,
}

impl Runner {
    /// A runner on the real clock with the default exception handler.
    pub fn new() -> Runner {
        RunnerBuilder::default().build()
    }

    /// Options: virtual time, exception handler.
    pub fn builder() -> RunnerBuilder {
        RunnerBuilder::default()
    }

    /// Runs `fut` as the main task until it completes and returns its
    /// output.
    ///
    /// # Ctrl-C
    /// While it runs, if SIGINT has its default disposition and the loop
    /// has no SIGINT handler of its own, the first SIGINT cancels the main
    /// task (as `asyncio.Runner.run` does) and a second one exits the
    /// process at once with status 130. The previous disposition is back
    /// when `run` returns. Unix only.
    ///
    /// # Panics
    /// - if a loop is already running on this thread (inside a task, await
    ///   the future instead, or `create_task` it);
    /// - if the runner was closed;
    /// - if the main task ends cancelled (after a Ctrl-C, the message says
    ///   `KeyboardInterrupt`);
    /// - with the main task's own panic, if it panicked.
    pub fn run<F: Future + 'static>(&mut self, fut: F) -> F::Output {
        match self.run_main(fut) {
            Ok(v) => v,
            Err(Interrupted) => {
                panic!("asyncio: KeyboardInterrupt: the main task was cancelled by SIGINT (Ctrl-C)")
            }
        }
    }

    /// [`Runner::run`], reporting a main task cancelled by Ctrl-C as
    /// `Err(Interrupted)`.
    fn run_main<F: Future + 'static>(&mut self, fut: F) -> Result<F::Output, Interrupted> {
        assert!(
            context::with_loop(|_| ()).is_none(),
            "asyncio::run() / Runner::run() cannot be called while an event loop is running \
             on this thread; inside a task, `.await` the future (or create_task() it) instead"
        );
        assert!(!self.closed, "Runner::run() called on a closed runner");
        let _enter = context::enter(self.lp.clone());
        let main = self.lp.spawn(fut);
        let main_ref = main.task_ref();
        // Ctrl-C cancels the main task (Unix). Miri cannot run `sigaction`,
        // so the crate's Miri subset runs without it.
        #[cfg(all(unix, not(miri)))]
        let interrupt = crate::signal::Interrupt::enter(&self.lp, &main_ref);
        self.lp.run_until(|| main_ref.done());
        #[cfg(all(unix, not(miri)))]
        let interrupted = interrupt.is_some_and(|i| i.finish());
        #[cfg(not(all(unix, not(miri))))]
        let interrupted = false;
        match main.take_outcome() {
            Outcome::Value(v) => Ok(v),
            Outcome::Cancelled(_) if interrupted => Err(Interrupted),
            Outcome::Cancelled(msg) => panic!(
                "asyncio: the main task was cancelled{}",
                msg.map(|m| format!(" ({m})")).unwrap_or_default()
            ),
            Outcome::Panicked(p) => panic::resume_unwind(p),
            Outcome::Taken | Outcome::Pending => unreachable!("main task finished"),
        }
    }

    /// Cancels every task still pending (in creation order), runs the loop
    /// until they have finished their cleanup, and closes the loop. Panics
    /// of those tasks are reported to the exception handler. Idempotent.
    ///
    /// A task that cannot finish — it waits on something no task, timer or
    /// other thread will ever complete, e.g. a foreign future that is not a
    /// checkpoint and so never sees the cancellation — does not hang the
    /// close: once the loop is idle, it is reported ("Task was destroyed but
    /// it is pending!") and its future is dropped.
    pub fn close(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        let _enter = context::enter(self.lp.clone());
        let pending = self.lp.all_tasks();
        for t in &pending {
            t.cancel();
        }
        let lp = self.lp.clone();
        let result = panic::catch_unwind(AssertUnwindSafe(|| {
            lp.run_until_or_idle(|| pending.iter().all(|t| t.done()));
        }));
        for t in &pending {
            if let Some(msg) = t.take_unretrieved_panic() {
                self.lp.report(
                    format!("unhandled panic during asyncio.run() shutdown: {msg}"),
                    Some(t),
                );
            }
        }
        for t in self.lp.all_tasks() {
            self.lp.report(
                "Task was destroyed but it is pending!".to_string(),
                Some(&t),
            );
        }
        self.lp.shutdown();
        if let Err(p) = result {
            panic::resume_unwind(p);
        }
    }
}

impl Default for Runner {
    fn default() -> Self {
        Runner::new()
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.closed = true;
            let _enter = context::enter(self.lp.clone());
            self.lp.shutdown();
        } else {
            self.close();
        }
    }
}

/// Runs `fut` on a new event loop until it completes, then cancels every
/// task still pending, lets them clean up, closes the loop and returns the
/// output — `asyncio.run`.
///
/// ```
/// use std::time::Duration;
/// let out = asyncio::run(async {
///     let task = asyncio::create_task(async { 6 * 7 });
///     task.await.unwrap()
/// });
/// assert_eq!(out, 42);
/// ```
///
/// # Ctrl-C
/// As in [`Runner::run`], the first SIGINT cancels the main task and a
/// second one exits the process at once (status 130). If the main task
/// ends cancelled after a Ctrl-C, `run` closes the loop (the other tasks
/// clean up), prints `KeyboardInterrupt` to stderr and exits the process
/// with status 130 — where Python raises `KeyboardInterrupt` out of
/// `asyncio.run`. A main task that handles its cancellation returns
/// normally.
///
/// # Panics
/// As [`Runner::run`]: inside a running loop, when the main task ends
/// cancelled, or with the main task's panic.
pub fn run<F: Future + 'static>(fut: F) -> F::Output {
    let mut runner = Runner::new();
    let out = panic::catch_unwind(AssertUnwindSafe(|| runner.run_main(fut)));
    runner.close();
    match out {
        Ok(Ok(v)) => v,
        Ok(Err(Interrupted)) => {
            eprintln!("KeyboardInterrupt");
            std::process::exit(130)
        }
        Err(p) => panic::resume_unwind(p),
    }
}

/// The main task was cancelled by Ctrl-C (Python's `KeyboardInterrupt`).
struct Interrupted;
