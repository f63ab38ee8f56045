//! Cancel requests and their delivery: a [`Request`], the in-flight entry
//! of a suspended checkpoint ([`Inflight`]) and the [`Delivery`] it holds
//! once a request reaches it, and [`deliver`], which takes a request to
//! every checkpoint inside its scope. See the [cancel module doc](super)
//! for the model.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Waker;

use super::checkpoint::ForwardRef;
use super::error::{Token, TokenInner};
use super::scope::{inside, ScopeNode, ScopeRef};
use super::state::CancelFlag;
use crate::task::TaskRef;
use crate::util::small::OneOrMany;

/// One cancel request, shared by the checkpoints it was delivered to.
pub(super) struct Request {
    pub(super) scope: ScopeRef,
    pub(super) msg: Option<Arc<str>>,
    /// Some checkpoint returned a token for it.
    pub(super) returned: Cell<bool>,
    /// Checkpoints holding it in an unreturned delivery.
    pub(super) holders: Cell<u32>,
    /// Made while the task was running or already woken: asyncio records
    /// such a request as `_must_cancel`, which `uncancel()` reaching zero
    /// withdraws (3.13) as long as the task has not resumed.
    pub(super) soft: bool,
}

/// A request as a delivery holds it: shared when one cancel reached
/// several checkpoints at once, owned when it reached one (the common
/// case: no allocation of its own). A request's holders are fixed when it
/// is made, so an owned one never needs sharing later.
pub(super) enum ReqRef {
    Shared(Rc<Request>),
    Sole(Request),
}

impl std::ops::Deref for ReqRef {
    type Target = Request;

    fn deref(&self) -> &Request {
        match self {
            ReqRef::Shared(r) => r,
            ReqRef::Sole(r) => r,
        }
    }
}

pub(super) struct Delivery {
    pub(super) token: Token,
    pub(super) requests: OneOrMany<ReqRef>,
    /// The cancel was forwarded to an awaited task that accepted it: the
    /// checkpoint keeps waiting for that task instead of raising.
    pub(super) forwarded: bool,
    /// A request came from a zero-timeout `wait_for`. asyncio waits on a
    /// private future there: the checkpoint resumes one turn later than a
    /// direct wake, and later requests make it raise instead of forwarding
    /// again.
    pub(super) zero: bool,
    /// The extra turn of `zero` has been spent.
    pub(super) relayed: bool,
    /// The loop turn in which a further request cancelled asyncio's private
    /// future directly (see
    /// [`Checkpoint::relay_once`](super::checkpoint::Checkpoint::relay_once)).
    pub(super) cut: Option<u64>,
}

/// Something other than a task that an await point can forward a
/// cancellation to (gather's outer future): it cancels what it waits for and
/// says whether anything accepted, as asyncio's `Future.cancel()` does.
///
/// A target that refuses is done or about to be (asyncio's task then keeps
/// waiting for it and raises when it completes): it wakes the await point
/// itself when it completes, so a refusal does not wake it.
pub(crate) trait CancelTarget {
    /// Forwards a cancel request; `false` if nothing accepted it.
    fn cancel(&self, msg: Option<Arc<str>>) -> bool;
}

/// Where an in-flight checkpoint forwards a cancellation instead of raising
/// it at once: the task it awaits, or another [`CancelTarget`]. An entry
/// with nothing rare about it holds an awaited task in its [`Link`]; a
/// [`Rare`] box holds either kind.
#[derive(Clone)]
enum Forward {
    Task(TaskRef),
    Target(Rc<dyn CancelTarget>),
}

impl Forward {
    fn as_ref(&self) -> ForwardRef<'_> {
        match self {
            Forward::Task(t) => ForwardRef::Task(t),
            Forward::Target(t) => ForwardRef::Target(t),
        }
    }
}

impl Delivery {
    /// The checkpoint is done with this delivery and it is not re-armed:
    /// it raised it, or the awaited task it was forwarded to swallowed it.
    pub(super) fn settle(&self) {
        for r in self.requests.iter() {
            r.returned.set(true);
            r.holders.set(r.holders.get() - 1);
        }
    }
}

/// The rare parts of an in-flight entry, boxed together to keep every
/// entry three words: a delivered cancellation; a foreign waker (a future
/// polled under a combinator's own waker — most checkpoints are polled by
/// their task directly, and the task's own waker needs no clone, no atomic
/// count); a forward target other than a task (gather's outer future),
/// or the awaited task of an entry that has any of the others.
#[derive(Default)]
struct Rare {
    delivery: Option<Delivery>,
    waker: Option<Waker>,
    target: Option<Forward>,
}

/// An in-flight entry's awaited task, or its [`Rare`] parts (which then
/// hold the awaited task, if there is one). One field rather than two: the
/// tag's spare values give the entry a niche, so that the task's table of
/// entries, which holds its first entry in place, is no larger than the
/// entry (a word less in every task header).
enum Link {
    None,
    Task(TaskRef),
    Rare(Box<Rare>),
}

/// The number of the loop turn running now (0 outside a loop).
pub(super) fn current_turn() -> u64 {
    crate::runtime::context::with_loop(|lp| lp.turn()).unwrap_or(0)
}

/// A checkpoint of this task that is suspended right now.
pub(crate) struct Inflight {
    pub(super) scope: ScopeRef,
    /// The awaited task a cancellation is forwarded to, or the entry's
    /// [`Rare`] parts.
    link: Link,
}

impl Inflight {
    /// Always in line, as
    /// [`Checkpoint::register`](super::checkpoint::Checkpoint::register),
    /// whose fast path it is.
    #[inline(always)]
    pub(super) fn new(
        task: &TaskRef,
        waker: &Waker,
        scope: ScopeRef,
        forward: Option<&ForwardRef<'_>>,
    ) -> Inflight {
        let own = task.0.is_own_waker(waker);
        let link = match forward {
            None if own => Link::None,
            Some(ForwardRef::Task(t)) if own => Link::Task((*t).clone()),
            _ => Link::Rare(Box::new(Rare {
                delivery: None,
                waker: (!own).then(|| waker.clone()),
                target: forward.map(|f| match f {
                    ForwardRef::Task(t) => Forward::Task((*t).clone()),
                    ForwardRef::Target(t) => Forward::Target(Rc::clone(t)),
                }),
            })),
        };
        Inflight { scope, link }
    }

    fn rare(&self) -> Option<&Rare> {
        match &self.link {
            Link::Rare(r) => Some(r),
            _ => None,
        }
    }

    /// The entry's rare parts, boxed first if need be (an awaited task
    /// moves into the box).
    fn rare_mut(&mut self) -> &mut Rare {
        if !matches!(self.link, Link::Rare(_)) {
            let target = match std::mem::replace(&mut self.link, Link::None) {
                Link::Task(t) => Some(Forward::Task(t)),
                _ => None,
            };
            self.link = Link::Rare(Box::new(Rare {
                target,
                ..Rare::default()
            }));
        }
        match &mut self.link {
            Link::Rare(r) => r,
            _ => unreachable!("boxed above"),
        }
    }

    /// Records `waker` (nothing for the task's own).
    fn set_waker(&mut self, task: &TaskRef, waker: &Waker) {
        if task.0.is_own_waker(waker) {
            if let Link::Rare(rare) = &mut self.link {
                rare.waker = None;
                self.drop_empty_rare();
            }
        } else {
            self.rare_mut().waker = Some(waker.clone());
        }
    }

    /// Records `waker` if it differs from the one recorded.
    #[inline]
    pub(super) fn refresh_waker(&mut self, task: &TaskRef, waker: &Waker) {
        let same = match self.rare().and_then(|r| r.waker.as_ref()) {
            None => task.0.is_own_waker(waker),
            Some(w) => w.will_wake(waker),
        };
        if !same {
            self.set_waker(task, waker);
        }
    }

    /// A clone of a foreign waker; `None` for the task's own (wake it in
    /// place).
    fn foreign(&self) -> Option<Waker> {
        self.rare()?.waker.clone()
    }

    /// Wakes the task's own waker in place (it only queues the task); a
    /// foreign waker is cloned to be woken by the caller, outside any
    /// borrow, as it may run arbitrary code.
    pub(super) fn wake_or_clone(&self, task: &TaskRef) -> Option<Waker> {
        let foreign = self.foreign();
        if foreign.is_none() {
            task.0.waker().wake_by_ref();
        }
        foreign
    }

    /// Where a cancellation is forwarded, if anywhere.
    fn forward(&self) -> Option<Forward> {
        match &self.link {
            Link::None => None,
            Link::Task(t) => Some(Forward::Task(t.clone())),
            Link::Rare(r) => r.target.clone(),
        }
    }

    /// Unboxes rare parts left with nothing rare in them.
    fn drop_empty_rare(&mut self) {
        let Link::Rare(r) = &mut self.link else {
            return;
        };
        if r.delivery.is_some() || r.waker.is_some() {
            return;
        }
        self.link = match r.target.take() {
            None => Link::None,
            Some(Forward::Task(t)) => Link::Task(t),
            Some(target) => {
                r.target = Some(target);
                return;
            }
        };
    }

    /// Whether the entry is as plain as entries come: no awaited task,
    /// nothing rare.
    fn is_bare(&self) -> bool {
        matches!(self.link, Link::None)
    }

    pub(super) fn delivery(&self) -> Option<&Delivery> {
        self.rare()?.delivery.as_ref()
    }

    pub(super) fn delivery_mut(&mut self) -> Option<&mut Delivery> {
        match &mut self.link {
            Link::Rare(r) => r.delivery.as_mut(),
            _ => None,
        }
    }

    pub(super) fn set_delivery(&mut self, d: Delivery) {
        self.rare_mut().delivery = Some(d);
    }

    fn clear_delivery(&mut self) {
        if let Link::Rare(rare) = &mut self.link {
            rare.delivery = None;
            self.drop_empty_rare();
        }
    }

    #[inline(always)]
    pub(super) fn into_delivery(self) -> Option<Delivery> {
        // Each arm by name: `Link::None` then drops nothing in line, where
        // a catch-all arm called the link's drop glue.
        match self.link {
            Link::None => None,
            Link::Task(t) => {
                drop(t);
                None
            }
            Link::Rare(r) => r.delivery,
        }
    }

    fn has_forward(&self) -> bool {
        match &self.link {
            Link::None => false,
            Link::Task(_) => true,
            Link::Rare(r) => r.target.is_some(),
        }
    }
}

/// Delivers a cancel request aimed at `scope` of `task` (see the [cancel
/// module doc](super)). Does not touch the request count: callers count
/// their own requests.
pub(crate) fn deliver(task: &TaskRef, scope: Option<&Rc<ScopeNode>>, msg: Option<Arc<str>>) {
    let state = task.cancel_state();
    let scope: ScopeRef = scope.cloned();
    if state.flags().get(CancelFlag::Delivering) {
        // A forwarding cycle came back to us: the first pass already
        // reached every checkpoint.
        return;
    }
    let soft = task.is_awake();
    if scope.is_none() && msg.is_none() && !soft && deliver_plain(task) {
        return;
    }
    materialize_plain(task);
    let mut new_token: Option<Token> = None;
    // `None`: the task's own waker, woken in place (no count taken).
    let mut to_wake: OneOrMany<Option<Waker>> = OneOrMany::None;
    let mut to_forward: OneOrMany<(usize, Forward)> = OneOrMany::None;
    // The task's queued step moves to the back (see the zero-timeout
    // case below).
    let mut requeue = false;
    {
        let mut inflight = state.inflight_mut();
        let holders = inflight
            .iter_mut()
            .filter(|(_, e)| inside(&e.scope, &scope))
            .count();
        if holders == 0 {
            drop(inflight);
            state.set_pending(&scope, msg);
            return;
        }
        let request = || Request {
            scope: scope.clone(),
            msg: msg.clone(),
            returned: Cell::new(false),
            holders: Cell::new(holders as u32),
            soft,
        };
        let shared = (holders > 1).then(|| Rc::new(request()));
        let req = || match &shared {
            Some(r) => ReqRef::Shared(r.clone()),
            None => ReqRef::Sole(request()),
        };
        for (key, entry) in inflight.iter_mut() {
            if !inside(&entry.scope, &scope) {
                continue;
            }
            let mut forward = entry.has_forward();
            match entry.delivery_mut() {
                Some(d) => {
                    d.requests.push(req());
                    state.list_for(&scope, &d.token);
                    if d.zero {
                        // asyncio's zero-timeout wait_for waits on a private
                        // future: a further request cancels that future
                        // and reaches nothing else (what was awaited was
                        // cancelled once already).
                        d.forwarded = false;
                        forward = false;
                        if !d.relayed && d.cut.is_none() {
                            // The first such request, before the future's
                            // release: the caller resumes on the next turn,
                            // woken here. If it is queued already (the
                            // awaited work finished and the release is on
                            // its way), its step moves behind this request.
                            d.cut = Some(current_turn());
                            requeue = true;
                        }
                    }
                }
                None => {
                    let token = new_token
                        .get_or_insert_with(|| TokenInner::new(msg.clone()))
                        .clone();
                    entry.set_delivery(Delivery {
                        token,
                        requests: OneOrMany::One(req()),
                        forwarded: false,
                        zero: false,
                        relayed: false,
                        cut: None,
                    });
                }
            }
            match entry.forward().filter(|_| forward) {
                Some(target) => to_forward.push((key, target)),
                None => to_wake.push(entry.foreign()),
            }
        }
    }
    if let Some(token) = &new_token {
        state.list_for(&scope, token);
        state.list_any(token);
    }
    state.flags().set(CancelFlag::Delivering, true);
    to_forward.drain_each(|(key, target)| {
        let target = target.as_ref();
        let accepted = target.cancel(msg.clone());
        let mut inflight = state.inflight_mut();
        if let Some(entry) = inflight.get_mut(key) {
            if let Some(d) = entry.delivery_mut() {
                d.forwarded = accepted;
            }
            if !accepted && !target.wakes_itself() {
                to_wake.push(entry.foreign());
            }
        }
    });
    state.flags().set(CancelFlag::Delivering, false);
    if requeue && task.0.is_queued() {
        if let Some(lp) = task.0.owning_loop() {
            lp.requeue(task.0.key());
        }
    }
    to_wake.drain_each(|w| match w {
        None => task.0.waker().wake_by_ref(),
        Some(w) => w.wake(),
    });
}

/// The common cancel, delivered without an allocation: a message-less
/// request on the root scope of a suspended task whose one in-flight
/// checkpoint (key 0) waits in the root scope, through the task's own
/// waker, for no awaited task, with nothing delivered yet. It is recorded
/// as [`CancelFlag::Plain`] and the
/// task is woken; the checkpoint raises it with a root token when next
/// polled ([`Checkpoint::raise_plain`](super::checkpoint::Checkpoint::raise_plain)),
/// and any other look at the entry first makes it the [`Delivery`] the
/// general path would have made ([`materialize_plain`]). Until the error
/// is raised its token could not be live, so the books need it no
/// earlier. Returns whether the request was taken this way.
fn deliver_plain(task: &TaskRef) -> bool {
    let state = task.cancel_state();
    if state.flags().get(CancelFlag::Plain) {
        return false;
    }
    {
        let inflight = state.inflight();
        let Some(only) = inflight.sole() else {
            return false;
        };
        let plain = only.scope.is_none() && only.is_bare();
        if !plain {
            return false;
        }
    }
    state.flags().set(CancelFlag::Plain, true);
    task.0.waker().wake_by_ref();
    true
}

/// Gives a plain delivery (see [`deliver_plain`]) the [`Delivery`] the
/// general path would have made, before anything else looks at it.
pub(super) fn materialize_plain(task: &TaskRef) {
    let state = task.cancel_state();
    if !state.flags().get(CancelFlag::Plain) {
        return;
    }
    state.flags().set(CancelFlag::Plain, false);
    let token = TokenInner::new(None);
    state.list_root(&token);
    state.list_any(&token);
    if let Some(entry) = state.inflight_mut().get_mut(0) {
        entry.set_delivery(Delivery {
            token,
            requests: OneOrMany::One(ReqRef::Sole(Request {
                scope: None,
                msg: None,
                returned: Cell::new(false),
                holders: Cell::new(1),
                soft: false,
            })),
            forwarded: false,
            zero: false,
            relayed: false,
            cut: None,
        });
    }
}

/// `uncancel()` brought the count to zero: withdraw the requests that
/// asyncio would still hold as `_must_cancel` (see `Request::soft`).
pub(crate) fn withdraw_soft(task: &TaskRef) {
    let state = task.cancel_state();
    let mut inflight = state.inflight_mut();
    for (_, entry) in inflight.iter_mut() {
        let Some(d) = entry.delivery_mut() else {
            continue;
        };
        if d.forwarded {
            continue;
        }
        d.requests.retain(|r| {
            if r.soft {
                r.holders.set(r.holders.get() - 1);
            }
            !r.soft
        });
        if d.requests.is_empty() {
            entry.clear_delivery();
        }
    }
}
