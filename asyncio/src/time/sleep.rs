//! `sleep` and `sleep_until`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::cancel::checkpoint::{Checkpoint, Yielded};
use crate::cancel::error::CancelledError;
use crate::runtime::clock::nanos;
use crate::runtime::context;
use crate::runtime::timers::{TimerAction, TimerKey};

/// Suspends the current task for `delay` (`asyncio.sleep`).
///
/// `sleep(Duration::ZERO)` yields to the loop for exactly one turn, like
/// asyncio's `sleep(0)`. The timer is armed when the sleep is first
/// awaited.
///
/// ```
/// use std::time::Duration;
/// asyncio::Runner::builder().virtual_time(true).build().run(async {
///     let lp = asyncio::get_running_loop().unwrap();
///     let t0 = lp.time();
///     asyncio::sleep(Duration::from_secs(3)).await.unwrap();
///     assert_eq!(lp.time() - t0, Duration::from_secs(3));
/// });
/// ```
///
/// # Cancellation
/// Returns `Err(CancelledError)` and disarms the timer. A cancellation that
/// arrives in the turn the timer fired, before the task resumes, still wins.
///
/// # Panics
/// When awaited outside a task of a running loop, or polled again, once
/// armed, outside the loop its timer is armed on (that loop was closed, or
/// the sleep moved into a task of another loop).
#[inline]
pub fn sleep(delay: Duration) -> Sleep {
    Sleep {
        state: State::Delay(nanos(delay)),
        cp: Checkpoint::new(),
    }
}

/// Suspends the current task until the loop's clock reaches `deadline`
/// (see [`EventLoop::time`](crate::EventLoop::time)). A deadline already
/// past (or now) yields exactly one turn, like `sleep(Duration::ZERO)`.
///
/// # Cancellation
/// As [`sleep`].
///
/// # Panics
/// As [`sleep`].
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        state: State::Until(deadline),
        cp: Checkpoint::new(),
    }
}

/// Where a sleep is: its target until first polled, then its timer. Two
/// words and no tag of its own: the deadline's nanosecond field has values
/// to spare, which name the other variants, each a word at most.
enum State {
    /// The delay, in nanoseconds (saturating).
    Delay(i64),
    Until(Instant),
    /// A bare yield, suspended for a turn as its checkpoint says.
    Yielded(Yielded),
    /// Its timer, armed on the loop of the task its checkpoint is
    /// registered with (a sleep is suspended while its timer is armed):
    /// the key's sequence here, its slot in the checkpoint's spare bytes
    /// (see [`Sleep::armed`]). A sleep is four words: a sleeping task's
    /// block stays in a smaller malloc size class.
    Armed(u64),
    Done,
}

/// The future returned by [`sleep`], [`sleep_until`] and
/// [`checkpoint`](fn@crate::checkpoint).
pub struct Sleep {
    state: State,
    cp: Checkpoint,
}

impl Sleep {
    /// Disarms the timer, if one is armed. In line: most sleeps end with
    /// their timer fired (or never armed: a bare yield).
    #[inline]
    fn disarm(&mut self) {
        if matches!(self.state, State::Armed(..)) {
            self.disarm_armed();
        }
    }

    fn disarm_armed(&mut self) {
        let on = self.cp.loop_id();
        self.disarm_on(on);
    }

    /// Disarms the timer, armed on loop `on` (read while the checkpoint
    /// was registered).
    fn disarm_on(&mut self, on: Option<u64>) {
        if let State::Armed(seq) = std::mem::replace(&mut self.state, State::Done) {
            let key = self.key(seq);
            if let Some(id) = on {
                context::with_loop_by_id(id, |lp| lp.disarm(key));
            }
        }
    }

    /// Records the timer just armed.
    fn armed(&mut self, key: TimerKey) {
        let (slot, seq) = key.into_parts();
        self.cp.spare = slot;
        self.state = State::Armed(seq);
    }

    /// The armed timer's key, from its sequence and the slot kept in the
    /// checkpoint's spare bytes.
    fn key(&self, seq: u64) -> TimerKey {
        TimerKey::from_parts(self.cp.spare, seq)
    }
}

impl Future for Sleep {
    type Output = Result<(), CancelledError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        // A bare yield in its task's own scope (`sleep(0)`, `checkpoint()`,
        // the busiest await there is) registers nothing, so nothing can
        // have been delivered to it: a small path in line, the rest out of
        // line.
        if !this.cp.is_registered() {
            match this.state {
                State::Delay(0) => return this.start_yield(cx),
                State::Yielded(how) => return this.finish_yield(how, cx),
                _ => {}
            }
        }
        this.poll_general(cx)
    }
}

impl Sleep {
    /// Suspends for one turn: the caller's task is queued again at once.
    #[inline]
    fn start_yield(&mut self, cx: &Context<'_>) -> Poll<Result<(), CancelledError>> {
        self.state = State::Yielded(self.cp.suspend_yield(cx));
        Poll::Pending
    }

    /// The turn after [`Sleep::start_yield`]. A yield that registered
    /// nothing can be ended only by a request pending on the task (or, in
    /// a scope, on its scope chain); one that registered unregisters (its
    /// delivery was polled before this).
    #[inline(always)]
    fn finish_yield(&mut self, how: Yielded, cx: &Context<'_>) -> Poll<Result<(), CancelledError>> {
        self.state = State::Done;
        if let Some(err) = self.cp.take_pending_after_yield(how, cx) {
            return Poll::Ready(Err(err));
        }
        self.cp.complete();
        Poll::Ready(Ok(()))
    }

    /// Every other poll: a timer to arm or check, a registered yield, a
    /// delivered cancellation.
    #[inline(never)]
    fn poll_general(&mut self, cx: &Context<'_>) -> Poll<Result<(), CancelledError>> {
        // The loop of an armed timer, read before a cancellation
        // unregisters the checkpoint.
        let armed_on = match self.state {
            State::Armed(_) => self.cp.loop_id(),
            _ => None,
        };
        if let Some(err) = std::task::ready!(self.cp.poll_cancelled(cx)) {
            self.disarm_on(armed_on);
            return Poll::Ready(Err(err));
        }
        match &self.state {
            State::Delay(_) | State::Until(_) => {
                // asyncio's sleep(delay <= 0) is one bare yield (and
                // sleep(0) needs neither the loop nor a clock read).
                if matches!(self.state, State::Delay(0)) {
                    return self.start_yield(cx);
                }
                let lp = context::expect_loop("asyncio::sleep()");
                let clock = lp.clock();
                let at = match self.state {
                    State::Delay(d) => clock.now_ns().saturating_add(d),
                    State::Until(t) => {
                        let at = clock.ns(t);
                        if at <= clock.now_ns() {
                            return self.start_yield(cx);
                        }
                        at
                    }
                    _ => unreachable!("matched above"),
                };
                let key = lp.arm_ns(at, TimerAction::wake(&lp, cx.waker()));
                self.armed(key);
                self.cp.suspend(cx, None);
                Poll::Pending
            }
            State::Yielded(how) => self.finish_yield(*how, cx),
            State::Armed(seq) => {
                let key = self.key(*seq);
                let fired = context::with_loop(|lp| {
                    (Some(lp.id) == armed_on).then(|| {
                        let fired = !lp.timers.borrow().contains(key);
                        if !fired {
                            lp.timers.borrow_mut().update_waker(key, lp, cx.waker());
                        }
                        fired
                    })
                });
                let Some(Some(fired)) = fired else {
                    panic!(
                        "asyncio::sleep() polled outside the event loop its timer is armed on \
                         (its loop was closed, or the sleep moved to a task of another loop)"
                    );
                };
                if fired {
                    self.state = State::Done;
                    self.cp.complete();
                    return Poll::Ready(Ok(()));
                }
                self.cp.suspend(cx, None);
                Poll::Pending
            }
            State::Done => panic!("asyncio::sleep() polled after it completed"),
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.disarm();
    }
}

#[cfg(all(test, target_pointer_width = "64"))]
mod tests {
    use super::Sleep;

    /// A million sleeping tasks hold a million sleeps: 32 bytes, with the
    /// armed timer's slot in the checkpoint's spare bytes and its loop
    /// found through the checkpoint's task. (With the task's 88-byte head
    /// and its own state around it, a plain sleeping task's block is 136
    /// bytes: a 144-byte malloc chunk.)
    #[test]
    fn a_sleep_stays_at_32_bytes() {
        assert_eq!(std::mem::size_of::<Sleep>(), 32);
    }
}
