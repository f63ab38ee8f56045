//! Await points: a [`Checkpoint`] registers in its task's cancel state
//! when it suspends, and returns a cancellation delivered to it when next
//! polled. See the [cancel module doc](super) for the model.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::delivery::{
    current_turn, materialize_plain, CancelTarget, Delivery, Inflight, ReqRef, Request,
};
use super::error::{CancelledError, TokenInner};
use super::scope::{in_root_scope, innermost_scope, scope_chain, Chain, ScopeRef};
use super::state::CancelFlag;
use crate::task::{current_task_obj, with_current_task, TaskRef};

/// A borrowed `Forward`, so that re-polling an await does not clone it.
pub(super) enum ForwardRef<'a> {
    Task(&'a TaskRef),
    Target(&'a Rc<dyn CancelTarget>),
}

impl ForwardRef<'_> {
    pub(super) fn cancel(&self, msg: Option<Arc<str>>) -> bool {
        match self {
            ForwardRef::Task(t) => t.cancel_inner(msg),
            ForwardRef::Target(t) => t.cancel(msg),
        }
    }

    /// Whether a refusal leaves the waking to the target (see
    /// [`CancelTarget`]).
    pub(super) fn wakes_itself(&self) -> bool {
        matches!(self, ForwardRef::Target(_))
    }
}

/// The task polling an await point.
///
/// # Panics
/// When polled outside a task.
fn polling_task() -> TaskRef {
    current_task_obj().unwrap_or_else(|| {
        panic!(
            "an asyncio await point was polled outside an asyncio task; \
             run it inside asyncio::run() or a task made by create_task()"
        )
    })
}

/// What a checkpoint should do after [`Checkpoint::suspend`].
pub(crate) enum Suspended {
    /// Registered; wait for the event (or a cancellation).
    Waiting,
    /// A pending request was taken: the task was rescheduled, and the next
    /// poll returns the token. For an await that forwarded it, keep waiting.
    TookPending,
}

/// How [`Checkpoint::suspend_yield`] suspended: what the next poll looks
/// at.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Yielded {
    /// Unregistered, in the task's own scope: a request of the turn is
    /// pending on the task.
    Root,
    /// Unregistered, inside a scope: a request of the turn is pending on
    /// the task or on the scope chain.
    Scoped,
    /// Registered: a request of the turn was delivered to the checkpoint.
    Registered,
}

/// The registration of one await point in its task's cancel books.
///
/// Protocol for a checkpoint's `poll`:
/// 1. [`Checkpoint::poll_cancelled`] first: a delivered cancellation beats a
///    ready result, as in asyncio.
/// 2. If the awaited event is complete, [`Checkpoint::complete`] and return.
/// 3. Otherwise [`Checkpoint::suspend`] and return `Pending`.
///
/// Dropping a checkpoint that holds an unreturned delivery re-arms it.
///
/// Two words: the task it is registered in (while suspended), its
/// in-flight entry's key there, and four bytes its owner may use (the
/// rest of the second word, padding otherwise): a sleep keeps its timer's
/// slot there, which keeps a sleeping task's future a word smaller.
#[derive(Default)]
pub(crate) struct Checkpoint {
    /// The task whose in-flight table holds this checkpoint's entry, while
    /// it is suspended.
    task: Option<TaskRef>,
    /// The entry's key in `task`'s table (meaningless while `task` is
    /// `None`).
    key: u32,
    /// The owner's four bytes: the checkpoint never reads them.
    pub(crate) spare: u32,
}

impl Checkpoint {
    pub(crate) const fn new() -> Checkpoint {
        Checkpoint {
            task: None,
            key: 0,
            spare: 0,
        }
    }

    /// The task and entry key it is registered under, if suspended.
    #[inline]
    fn reg(&self) -> Option<(&TaskRef, usize)> {
        self.task.as_ref().map(|t| (t, self.key as usize))
    }

    /// The id of the loop of the task it is registered with, if suspended.
    pub(crate) fn loop_id(&self) -> Option<u64> {
        self.task.as_ref().map(|t| t.0.loop_id())
    }

    /// Unregisters: the task and entry key it was registered under.
    #[inline]
    fn take_reg(&mut self) -> Option<(TaskRef, usize)> {
        self.task.take().map(|t| (t, self.key as usize))
    }

    #[inline]
    fn set_reg(&mut self, task: TaskRef, key: usize) {
        // A task's in-flight table holds one entry per suspended await
        // point of that task: far fewer than 2^32.
        self.key = key as u32;
        self.task = Some(task);
    }

    /// Whether this checkpoint has an in-flight entry in its task (it
    /// suspended, and has not returned since). An unregistered checkpoint
    /// has nothing delivered: [`Checkpoint::poll_cancelled`] is `Ready(None)`.
    #[inline]
    pub(crate) fn is_registered(&self) -> bool {
        self.task.is_some()
    }

    /// Whether a cancellation was delivered and not returned yet.
    pub(crate) fn is_delivered(&self) -> bool {
        self.holds_plain() || self.with_entry(|e| e.delivery().is_some()).unwrap_or(false)
    }

    /// Whether a plain delivery (see `deliver_plain`) waits here.
    #[inline]
    fn holds_plain(&self) -> bool {
        matches!(self.reg(), Some((task, key)) if task.cancel_state().plain_at(key))
    }

    /// Raises a plain delivery waiting here (see `deliver_plain`),
    /// unregistering: the one path that needs no [`Delivery`]. The token is
    /// a root token, as the general path's would be.
    #[inline(never)]
    fn raise_plain(&mut self) -> Option<CancelledError> {
        let (task, key) = self.take_reg()?;
        let state = task.cancel_state();
        state.flags().set(CancelFlag::Plain, false);
        let entry = state.inflight_mut().remove(key);
        drop(entry);
        Some(state.root_error(None))
    }

    /// Whether the delivery was forwarded to an awaited task that accepted it.
    pub(crate) fn is_forwarded(&self) -> bool {
        self.with_entry(|e| e.delivery().is_some_and(|d| d.forwarded))
            .unwrap_or(false)
    }

    fn with_entry<R>(&self, f: impl FnOnce(&Inflight) -> R) -> Option<R> {
        let (task, key) = self.reg()?;
        let inflight = task.cancel_state().inflight();
        inflight.get(key).map(f)
    }

    /// Wakes the await this checkpoint is suspended in, through the waker
    /// it registered, unless a cancellation was delivered to it (it is
    /// awake already). Returns whether it woke it; an unregistered
    /// checkpoint counts as woken (its first poll will see the event).
    #[inline]
    pub(crate) fn wake_undelivered(&self) -> bool {
        let Some((task, key)) = self.reg() else {
            return true;
        };
        let foreign = {
            let inflight = task.cancel_state().inflight();
            let Some(entry) = inflight.get(key) else {
                return true;
            };
            if entry.delivery().is_some() || task.cancel_state().plain_at(key) {
                return false;
            }
            entry.wake_or_clone(task)
        };
        if let Some(w) = foreign {
            w.wake();
        }
        true
    }

    /// Spends the extra turn a zero-timeout `wait_for` costs in asyncio, once:
    /// `true` means "reschedule and return `Pending`".
    pub(crate) fn relay_once(&mut self, cx: &Context<'_>) -> bool {
        let Some((task, key)) = self.reg() else {
            return false;
        };
        let mut inflight = task.cancel_state().inflight_mut();
        let Some(d) = inflight.get_mut(key).and_then(Inflight::delivery_mut) else {
            return false;
        };
        if !d.zero || d.relayed {
            return false;
        }
        d.relayed = true;
        if d.cut.is_some_and(|turn| turn < current_turn()) {
            // The private future was cancelled on an earlier turn: this is
            // the turn the caller resumes on.
            return false;
        }
        cx.waker().wake_by_ref();
        true
    }

    /// Step 1 of the protocol: `Ready(Some(err))` if a cancellation was
    /// delivered (and not forwarded to an awaited task), `Pending` while a
    /// zero-timeout relay turn is spent, `Ready(None)` otherwise.
    #[inline]
    pub(crate) fn poll_cancelled(&mut self, cx: &Context<'_>) -> Poll<Option<CancelledError>> {
        let Some((task, key)) = self.reg() else {
            return Poll::Ready(None);
        };
        let state = task.cancel_state();
        if state.plain_at(key) {
            return Poll::Ready(self.raise_plain());
        }
        // One look at the entry: delivered and not forwarded.
        let raise = state
            .inflight()
            .get(key)
            .is_some_and(|e| e.delivery().is_some_and(|d| !d.forwarded));
        if !raise {
            return Poll::Ready(None);
        }
        self.poll_delivered(cx)
    }

    /// [`Checkpoint::poll_cancelled`] once a delivery is there: out of line.
    #[inline(never)]
    fn poll_delivered(&mut self, cx: &Context<'_>) -> Poll<Option<CancelledError>> {
        if self.relay_once(cx) {
            return Poll::Pending;
        }
        Poll::Ready(self.take_cancelled())
    }

    /// Returns the delivered cancellation, if any, unregistering.
    pub(crate) fn take_cancelled(&mut self) -> Option<CancelledError> {
        if self.holds_plain() {
            return self.raise_plain();
        }
        if !self.is_delivered() {
            return None;
        }
        let (_, delivery) = self.unregister()?;
        let d = delivery?;
        d.settle();
        Some(CancelledError::from_token(d.token))
    }

    /// The whole protocol for an await whose event is `ready` or not:
    /// `Ready(Err)` if a cancellation was delivered (it beats a ready
    /// event), `Ready(Ok)` if the event is ready (unregistered), `Pending`
    /// otherwise (registered, as [`Checkpoint::suspend`] with no awaited
    /// task): [`Checkpoint::poll_fn`] around the event's state.
    #[inline]
    pub(crate) fn poll_event(
        &mut self,
        cx: &mut Context<'_>,
        ready: bool,
    ) -> Poll<Result<(), CancelledError>> {
        self.poll_fn(cx, |_| {
            if ready {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }

    /// The whole protocol for an await around a poll function `f` (an I/O
    /// operation): `Ready(Err)` if a cancellation was delivered (and not
    /// forwarded), without calling `f`; otherwise `f`'s `Ready` value
    /// (unregistered, as [`Checkpoint::complete`]), or `Pending`
    /// (registered, as [`Checkpoint::suspend`] with no awaited task). The
    /// same as [`Checkpoint::poll_cancelled`], `f`, then `complete` or
    /// `suspend`, but a poll with nothing delivered looks at the books once
    /// before `f` and once after.
    #[inline]
    pub(crate) fn poll_fn<T>(
        &mut self,
        cx: &mut Context<'_>,
        f: impl FnOnce(&mut Context<'_>) -> Poll<T>,
    ) -> Poll<Result<T, CancelledError>> {
        if let Some((task, key)) = self.reg() {
            let state = task.cancel_state();
            let delivered = state.plain_at(key)
                || state
                    .inflight()
                    .get(key)
                    .is_some_and(|e| e.delivery().is_some());
            if delivered {
                return self.poll_fn_delivered(cx, f);
            }
        }
        match f(cx) {
            Poll::Ready(v) => {
                if let Some((task, key)) = self.take_reg() {
                    let entry = task.cancel_state().inflight_mut().remove(key);
                    // Settled and dropped outside the borrow (a foreign
                    // waker may run code).
                    if let Some(d) = entry.and_then(Inflight::into_delivery) {
                        d.settle();
                    }
                }
                Poll::Ready(Ok(v))
            }
            Poll::Pending => {
                self.suspend(cx, None);
                Poll::Pending
            }
        }
    }

    /// [`Checkpoint::poll_fn`] once a cancellation was delivered: the
    /// protocol step by step. Out of line, so that the common cases stay
    /// small.
    #[inline(never)]
    fn poll_fn_delivered<T>(
        &mut self,
        cx: &mut Context<'_>,
        f: impl FnOnce(&mut Context<'_>) -> Poll<T>,
    ) -> Poll<Result<T, CancelledError>> {
        if let Some(err) = std::task::ready!(self.poll_cancelled(cx)) {
            return Poll::Ready(Err(err));
        }
        match f(cx) {
            Poll::Ready(v) => {
                self.complete();
                Poll::Ready(Ok(v))
            }
            Poll::Pending => {
                self.suspend(cx, None);
                Poll::Pending
            }
        }
    }

    /// The awaited event completed: unregister. A delivery still held (an
    /// awaited task swallowed the forwarded cancel and returned a value) is
    /// handled: it is not re-armed.
    #[inline]
    pub(crate) fn complete(&mut self) {
        if self.task.is_some() {
            self.complete_registered();
        }
    }

    fn complete_registered(&mut self) {
        if let Some((_, Some(d))) = self.unregister() {
            d.settle();
        }
    }

    /// Registers (or refreshes) this checkpoint as suspended in the current
    /// task's innermost scope, taking any request pending on that scope or
    /// an enclosing one. `forward` is the task being awaited, if any.
    ///
    /// # Panics
    /// When polled outside a task.
    pub(crate) fn suspend(&mut self, cx: &Context<'_>, forward: Option<&TaskRef>) -> Suspended {
        self.suspend_forwarding(cx, forward.map(ForwardRef::Task))
    }

    /// Suspends for exactly one turn and queues the task again (a bare
    /// yield: `sleep(0)`, [`checkpoint`](fn@crate::checkpoint)). Polled
    /// with its task's own waker (not a combinator's), the task is queued
    /// directly, with the loop already at hand: no call through the waker
    /// and no second look-up of the loop.
    ///
    /// A task sitting in the ready queue needs no wake to see a
    /// cancellation, so with nothing pending on the task or on the scopes
    /// the yield lies in (and no zero-timeout scope among them) nothing is
    /// registered: a request arriving during the turn finds no checkpoint
    /// in flight in its scope and stays pending there (on the task itself:
    /// asyncio's `_must_cancel` of a scheduled task), and
    /// [`Checkpoint::take_pending_after_yield`] takes it on the next poll,
    /// as a checkpoint suspending there would have. What can be observed
    /// is the same as with a registration (one token for every request of
    /// the turn; a root request withdrawn by `uncancel()` reaching zero
    /// first); a `wait_for` around a yield saves an in-flight entry per
    /// call. Anywhere else this is [`Checkpoint::suspend`].
    #[inline]
    pub(crate) fn suspend_yield(&mut self, cx: &Context<'_>) -> Yielded {
        if self.task.is_none() && in_root_scope() {
            let waker = cx.waker();
            let queued = crate::runtime::context::with_loop(|lp| {
                lp.current.with(|task| {
                    if task.cancel_state().root_pending() {
                        return false;
                    }
                    if task.0.is_own_waker(waker) {
                        task.0.wake_on(lp);
                    } else {
                        waker.wake_by_ref();
                    }
                    true
                })
            });
            if queued == Some(Some(true)) {
                return Yielded::Root;
            }
        }
        let how = self.suspend_yield_in_scope(cx);
        cx.waker().wake_by_ref();
        how
    }

    /// [`Checkpoint::suspend_yield`] past its common case: inside a scope,
    /// or with a request pending.
    #[inline(never)]
    fn suspend_yield_in_scope(&mut self, cx: &Context<'_>) -> Yielded {
        if self.task.is_none()
            && !in_root_scope()
            && scope_chain() == Chain::Quiet
            && with_current_task(|t| !t.cancel_state().root_pending()) == Some(true)
        {
            return Yielded::Scoped;
        }
        self.suspend_in_scope(polling_task(), cx, None);
        Yielded::Registered
    }

    /// The poll after [`Checkpoint::suspend_yield`] returned `how`: the
    /// cancellation that arrived during the turn, if the yield registered
    /// nothing (a registered one is [`Checkpoint::poll_cancelled`]'s).
    #[inline]
    pub(crate) fn take_pending_after_yield(
        &mut self,
        how: Yielded,
        cx: &Context<'_>,
    ) -> Option<CancelledError> {
        if self.task.is_some() {
            return None;
        }
        match how {
            Yielded::Root => with_current_task(|task| {
                let state = task.cancel_state();
                let msg = state.take_pending()?;
                Some(state.root_error(msg))
            })
            .flatten(),
            Yielded::Scoped => self.take_pending_in_scope(cx),
            Yielded::Registered => None,
        }
    }

    /// [`Checkpoint::take_pending_after_yield`] inside a scope: whatever
    /// is pending on the task or on the scope chain is taken as by a
    /// checkpoint suspending here, and raised at once (the yield's turn is
    /// over). A yield is polled again under the scopes it suspended in,
    /// none of them a zero-timeout one; a `Sleep` moved under such a scope
    /// between its two polls would raise here without the relay turn that
    /// scope's requests take elsewhere.
    #[inline(never)]
    fn take_pending_in_scope(&mut self, cx: &Context<'_>) -> Option<CancelledError> {
        if scope_chain() != Chain::Pending
            && with_current_task(|t| !t.cancel_state().root_pending()) == Some(true)
        {
            return None;
        }
        let task = polling_task();
        let scope = innermost_scope();
        let key = self.register(task, scope.clone(), cx, None);
        self.take_pending(key, scope, None, None);
        self.take_cancelled()
    }

    /// [`Checkpoint::suspend`] for an await that forwards cancellations to a
    /// [`CancelTarget`] (gather's outer future) instead of a task.
    pub(crate) fn suspend_to(
        &mut self,
        cx: &Context<'_>,
        target: &Rc<dyn CancelTarget>,
    ) -> Suspended {
        self.suspend_forwarding(cx, Some(ForwardRef::Target(target)))
    }

    fn suspend_forwarding(
        &mut self,
        cx: &Context<'_>,
        forward: Option<ForwardRef<'_>>,
    ) -> Suspended {
        let task = polling_task();
        if self.task.is_none() {
            let state = task.cancel_state();
            if in_root_scope() && !state.root_pending() {
                // The common case: a first suspension in the task's own
                // scope, with nothing pending: register, and wait.
                self.register(task, None, cx, forward.as_ref());
                return Suspended::Waiting;
            }
        }
        self.suspend_in_scope(task, cx, forward)
    }

    /// Adds this checkpoint's in-flight entry to `task`, suspended in
    /// `scope`; the handle moves into the registration (no second count).
    /// Always in line: it is the first suspension's fast path (plain
    /// `#[inline]` left it out of line, 1% more instructions on pingpong).
    #[inline(always)]
    fn register(
        &mut self,
        task: TaskRef,
        scope: ScopeRef,
        cx: &Context<'_>,
        forward: Option<&ForwardRef<'_>>,
    ) -> usize {
        let entry = Inflight::new(&task, cx.waker(), scope, forward);
        let key = task.cancel_state().inflight_mut().insert(entry);
        self.set_reg(task, key);
        key
    }

    /// [`Checkpoint::suspend_forwarding`] past its common case: a
    /// suspension again, in an inner scope, or with a request pending. Out
    /// of line, so that the common case stays small.
    #[inline(never)]
    fn suspend_in_scope(
        &mut self,
        task: TaskRef,
        cx: &Context<'_>,
        forward: Option<ForwardRef<'_>>,
    ) -> Suspended {
        if let Some((owner, _)) = self.reg() {
            if !owner.ptr_eq(&task) {
                // The future moved to another task: start afresh there.
                self.release();
            }
        }
        let scope = innermost_scope();
        let key = match self.reg() {
            Some((_, key)) => {
                let mut inflight = task.cancel_state().inflight_mut();
                let entry = inflight.get_mut(key).expect("registered checkpoint");
                entry.scope = scope.clone();
                entry.refresh_waker(&task, cx.waker());
                if entry.delivery().is_some() || task.cancel_state().plain_at(key) {
                    return Suspended::Waiting;
                }
                key
            }
            None => self.register(task, scope.clone(), cx, forward.as_ref()),
        };
        let (task, _) = self.reg().expect("registered above");
        if scope.is_none() && !task.cancel_state().root_pending() {
            // The common case: suspended in the task's own scope, with
            // nothing pending.
            return Suspended::Waiting;
        }
        self.take_pending(key, scope, forward, Some(cx))
    }

    /// Takes what is pending on `scope` and every enclosing one into a
    /// delivery for this checkpoint's entry (`key`), forwarding it to the
    /// awaited target, if any; `waker`: the context to reschedule the task
    /// by (`None`: the caller raises the delivery at once).
    fn take_pending(
        &mut self,
        key: usize,
        scope: ScopeRef,
        forward: Option<ForwardRef<'_>>,
        waker: Option<&Context<'_>>,
    ) -> Suspended {
        let (task, _) = self.reg().expect("registered by the caller");
        let state = task.cancel_state();
        // Take what is pending on this scope and every enclosing one.
        let mut taken: Vec<ReqRef> = Vec::new();
        let mut cur = scope.clone();
        while let Some(node) = cur {
            if node.take_pending() {
                taken.push(ReqRef::Sole(Request {
                    scope: Some(node.clone()),
                    msg: None,
                    returned: Cell::new(false),
                    holders: Cell::new(1),
                    soft: false,
                }));
            }
            cur = node.parent();
        }
        if let Some(msg) = state.take_pending() {
            taken.push(ReqRef::Sole(Request {
                scope: None,
                msg,
                returned: Cell::new(false),
                holders: Cell::new(1),
                soft: false,
            }));
        }
        if taken.is_empty() {
            return Suspended::Waiting;
        }
        let msg = taken.iter().find_map(|r| r.msg.clone());
        let token = TokenInner::new(msg.clone());
        for r in &taken {
            state.list_for(&r.scope, &token);
        }
        state.list_any(&token);
        let is_zero = |r: &ReqRef| r.scope.as_ref().is_some_and(|n| n.is_zero());
        let zero = taken.iter().any(is_zero);
        // A zero-timeout wait_for that also takes another pending request
        // (the task had cancelled itself): asyncio cancels the awaited
        // future, then the task's pending cancel cancels the private future
        // it waits on, so it raises on the next turn, with no relay turn.
        let direct = zero && taken.iter().any(|r| !is_zero(r));
        let wakes_itself = forward.as_ref().is_some_and(ForwardRef::wakes_itself);
        let accepted = forward.is_some_and(|f| f.cancel(msg)) && !direct;
        if let Some(entry) = state.inflight_mut().get_mut(key) {
            entry.set_delivery(Delivery {
                token,
                requests: taken.into(),
                forwarded: accepted,
                zero,
                relayed: false,
                cut: direct.then(current_turn),
            });
        }
        if !accepted && (!wakes_itself || direct) {
            if let Some(cx) = waker {
                cx.waker().wake_by_ref();
            }
        }
        Suspended::TookPending
    }

    /// Unregisters; an unreturned delivery re-arms its requests.
    fn release(&mut self) {
        let Some((task, Some(d))) = self.unregister() else {
            return;
        };
        let state = task.cancel_state();
        for r in d.requests.iter() {
            let left = r.holders.get() - 1;
            r.holders.set(left);
            if left == 0 && !r.returned.get() {
                state.set_pending(&r.scope, r.msg.clone());
            }
        }
    }

    /// Dropped while still registered (a losing `select!` branch, a future
    /// dropped mid-wait): re-arms an unreturned delivery.
    #[cold]
    fn drop_registered(&mut self) {
        if !std::thread::panicking() {
            self.release();
        } else if let Some((task, key)) = self.take_reg() {
            if let Some(mut inflight) = task.cancel_state().try_inflight_mut() {
                inflight.remove(key);
                if key == 0 {
                    task.cancel_state().flags().set(CancelFlag::Plain, false);
                }
            }
        }
    }

    /// Removes this checkpoint's in-flight entry: its task and delivery.
    fn unregister(&mut self) -> Option<(TaskRef, Option<Delivery>)> {
        let (task, key) = self.take_reg()?;
        if key == 0 {
            materialize_plain(&task);
        }
        let entry = task.cancel_state().inflight_mut().remove(key);
        Some((task, entry.and_then(Inflight::into_delivery)))
    }
}

impl Drop for Checkpoint {
    #[inline]
    fn drop(&mut self) {
        // Most checkpoints have returned (unregistered) when they drop.
        if self.task.is_some() {
            self.drop_registered();
        }
    }
}
