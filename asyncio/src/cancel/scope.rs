//! Cancel scopes, delivery and checkpoints — the rules of DESIGN.md §3.
//!
//! # The model
//!
//! A task runs one future, but that future may poll several branches
//! (`join!`, `select!`, `FuturesUnordered`), so a cancellation is aimed at a
//! *scope*: the task itself is the root scope, and every `timeout` /
//! `wait_for` opens an inner [`ScopeNode`] while it polls its future. The
//! innermost scope being polled is a property of the running step, kept in
//! a thread-local (`INNERMOST`); a scope's parent is whatever was innermost
//! when it was last polled.
//!
//! Every await point of the crate is a *checkpoint* ([`Checkpoint`]). When it
//! suspends it registers an [`Inflight`] entry in its task: the scope it
//! suspended in, its latest waker, and — once a cancellation reaches it — a
//! [`Delivery`].
//!
//! A cancel request on scope `S` ([`deliver`]):
//! - goes to every in-flight checkpoint inside `S` (all of them share one new
//!   token; a checkpoint that already holds an unreturned token adds the
//!   request to that token instead), and wakes each through its own waker —
//!   or, for an await of another task, forwards the cancel to that task;
//! - if no checkpoint inside `S` is in flight, stays *pending* on `S` and is
//!   taken by the next checkpoint that suspends inside `S`, which yields once
//!   and raises on the next turn.
//!
//! A checkpoint dropped before returning its token (the losing branch of a
//! `select!`) re-arms each of its requests that no other checkpoint returned.
//!
//! # Books kept for the liveness rules
//!
//! Each scope keeps the tokens that carry one of its requests (`tokens`); the
//! task keeps every token delivered or raised in it (`all_tokens`). A task
//! ends cancelled if one of those is still live when its future completes; a
//! timeout converts to `TimeoutError` if a token carrying its own request is
//! live and carries no request of an enclosing scope. Books are pruned of
//! tokens nobody else references.
//!
//! All of this state is touched only on the loop's thread.

use std::cell::{Cell, OnceCell, RefCell};
use std::rc::Rc;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Waker};

use super::error::{CancelledError, Token, TokenInner};
use crate::task::cell::Extras;
use crate::task::{current_task_obj, TaskRef};
use crate::util::small::{cloned, InlineSlab, OneOrMany};

/// An inner cancel scope (a timeout or `wait_for` while it runs).
pub(crate) struct ScopeNode {
    parent: RefCell<Option<Rc<ScopeNode>>>,
    pending: Cell<bool>,
    tokens: Book,
    /// `wait_for` with a zero timeout: its request is forwarded to an
    /// awaited task once; later requests are not (asyncio waits on a
    /// private future there).
    zero: Cell<bool>,
    /// The scope's own request is out (a timeout past its deadline).
    expiring: Cell<bool>,
}

impl ScopeNode {
    pub(crate) fn new() -> Rc<ScopeNode> {
        Rc::new(ScopeNode {
            parent: RefCell::new(None),
            pending: Cell::new(false),
            tokens: Book::default(),
            zero: Cell::new(false),
            expiring: Cell::new(false),
        })
    }

    pub(crate) fn set_expiring(&self, on: bool) {
        self.expiring.set(on);
    }

    pub(crate) fn set_zero(&self) {
        self.zero.set(true);
    }

    pub(crate) fn set_pending(&self, on: bool) {
        self.pending.set(on);
    }

    fn parent(&self) -> Option<Rc<ScopeNode>> {
        self.parent.borrow().clone()
    }

    /// Makes an unshared scope as good as new, for reuse by another
    /// timeout (see `time/timeout.rs`).
    pub(crate) fn reset(self: &Rc<Self>) {
        debug_assert!(Rc::strong_count(self) == 1 && Rc::weak_count(self) == 0);
        self.parent.borrow_mut().take();
        self.pending.set(false);
        self.tokens.with(|list| *list = OneOrMany::None);
        self.zero.set(false);
        self.expiring.set(false);
    }

    /// Whether nothing but its owner holds the scope: no in-flight
    /// checkpoint, request, inner scope or guard refers to it.
    pub(crate) fn unshared(self: &Rc<Self>) -> bool {
        Rc::strong_count(self) == 1 && Rc::weak_count(self) == 0
    }
}

/// Which scope a request is aimed at: `None` is the task (root) scope.
type ScopeRef = Option<Rc<ScopeNode>>;

fn same_scope(a: &ScopeRef, b: &ScopeRef) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => Rc::ptr_eq(a, b),
        _ => false,
    }
}

/// Whether a checkpoint suspended in `inner` lies inside `target`.
fn inside(inner: &ScopeRef, target: &ScopeRef) -> bool {
    let Some(target) = target else { return true };
    let mut cur = inner.clone();
    while let Some(node) = cur {
        if Rc::ptr_eq(&node, target) {
            return true;
        }
        cur = node.parent();
    }
    false
}

/// One cancel request, shared by the checkpoints it was delivered to.
struct Request {
    scope: ScopeRef,
    msg: Option<Arc<str>>,
    /// Some checkpoint returned a token for it.
    returned: Cell<bool>,
    /// Checkpoints holding it in an unreturned delivery.
    holders: Cell<u32>,
    /// Made while the task was running or already woken: asyncio records
    /// such a request as `_must_cancel`, which `uncancel()` reaching zero
    /// withdraws (3.13) as long as the task has not resumed.
    soft: bool,
}

/// A request as a delivery holds it: shared when one cancel reached
/// several checkpoints at once, owned when it reached one (the common
/// case: no allocation of its own). A request's holders are fixed when it
/// is made, so an owned one never needs sharing later.
enum ReqRef {
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

struct Delivery {
    token: Token,
    requests: OneOrMany<ReqRef>,
    /// The cancel was forwarded to an awaited task that accepted it: the
    /// checkpoint keeps waiting for that task instead of raising.
    forwarded: bool,
    /// A request came from a zero-timeout `wait_for`. asyncio waits on a
    /// private future there: the checkpoint resumes one turn later than a
    /// direct wake, and later requests make it raise instead of forwarding
    /// again.
    zero: bool,
    /// The extra turn of `zero` has been spent.
    relayed: bool,
    /// The loop turn in which a further request cancelled asyncio's private
    /// future directly (see [`Checkpoint::relay_once`]).
    cut: Option<u64>,
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
/// stores the two apart (a target is rare: see [`Rare`]); this is the
/// owned value a delivery takes out of the entry to cancel it.
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
    fn settle(&self) {
        for r in self.requests.iter() {
            r.returned.set(true);
            r.holders.set(r.holders.get() - 1);
        }
    }
}

/// The rare parts of an in-flight entry, boxed together to keep every
/// entry three words (so that a task's first entry, held in place in its
/// header, costs four): a delivered cancellation; a foreign waker (a
/// future polled under a combinator's own waker — most checkpoints are
/// polled by their task directly, and the task's own waker needs no clone,
/// no atomic count); a forward target other than a task (gather's outer
/// future).
#[derive(Default)]
struct Rare {
    delivery: Option<Delivery>,
    waker: Option<Waker>,
    target: Option<Rc<dyn CancelTarget>>,
}

impl Rare {
    fn is_empty(&self) -> bool {
        self.delivery.is_none() && self.waker.is_none() && self.target.is_none()
    }
}

/// The number of the loop turn running now (0 outside a loop).
fn current_turn() -> u64 {
    crate::runtime::context::with_loop(|lp| lp.turn()).unwrap_or(0)
}

/// A checkpoint of this task that is suspended right now.
pub(crate) struct Inflight {
    scope: ScopeRef,
    /// The awaited task a cancellation is forwarded to, if any (another
    /// kind of target is in `rare`).
    forward: Option<TaskRef>,
    /// A delivery, a foreign waker, a target other than a task: see
    /// [`Rare`].
    rare: Option<Box<Rare>>,
}

impl Inflight {
    /// Always in line, as [`Checkpoint::register`], whose fast path it is.
    #[inline(always)]
    fn new(
        task: &TaskRef,
        waker: &Waker,
        scope: ScopeRef,
        forward: Option<&ForwardRef<'_>>,
    ) -> Inflight {
        let (forward, target) = match forward {
            Some(ForwardRef::Task(t)) => (Some((*t).clone()), None),
            Some(ForwardRef::Target(t)) => (None, Some(Rc::clone(t))),
            None => (None, None),
        };
        let own = waker.will_wake(&task.0.waker());
        let rare = (!own || target.is_some()).then(|| {
            Box::new(Rare {
                delivery: None,
                waker: (!own).then(|| waker.clone()),
                target,
            })
        });
        Inflight {
            scope,
            forward,
            rare,
        }
    }

    fn rare_mut(&mut self) -> &mut Rare {
        self.rare.get_or_insert_with(Box::default)
    }

    /// Records `waker` (nothing for the task's own).
    fn set_waker(&mut self, task: &TaskRef, waker: &Waker) {
        if waker.will_wake(&task.0.waker()) {
            if let Some(rare) = &mut self.rare {
                rare.waker = None;
                self.drop_empty_rare();
            }
        } else {
            self.rare_mut().waker = Some(waker.clone());
        }
    }

    /// Records `waker` if it differs from the one recorded.
    #[inline]
    fn refresh_waker(&mut self, task: &TaskRef, waker: &Waker) {
        let same = match self.rare.as_ref().and_then(|r| r.waker.as_ref()) {
            None => waker.will_wake(&task.0.waker()),
            Some(w) => w.will_wake(waker),
        };
        if !same {
            self.set_waker(task, waker);
        }
    }

    /// A clone of a foreign waker; `None` for the task's own (wake it in
    /// place).
    fn foreign(&self) -> Option<Waker> {
        self.rare.as_ref()?.waker.clone()
    }

    /// Wakes the task's own waker in place (it only queues the task); a
    /// foreign waker is cloned to be woken by the caller, outside any
    /// borrow, as it may run arbitrary code.
    fn wake_or_clone(&self, task: &TaskRef) -> Option<Waker> {
        let foreign = self.foreign();
        if foreign.is_none() {
            task.0.waker().wake_by_ref();
        }
        foreign
    }

    /// Where a cancellation is forwarded, if anywhere.
    fn forward(&self) -> Option<Forward> {
        match (&self.forward, &self.rare) {
            (Some(t), _) => Some(Forward::Task(t.clone())),
            (None, Some(r)) => r.target.clone().map(Forward::Target),
            (None, None) => None,
        }
    }

    fn drop_empty_rare(&mut self) {
        if self.rare.as_ref().is_some_and(|r| r.is_empty()) {
            self.rare = None;
        }
    }

    fn delivery(&self) -> Option<&Delivery> {
        self.rare.as_ref()?.delivery.as_ref()
    }

    fn delivery_mut(&mut self) -> Option<&mut Delivery> {
        self.rare.as_mut()?.delivery.as_mut()
    }

    fn set_delivery(&mut self, d: Delivery) {
        self.rare_mut().delivery = Some(d);
    }

    fn clear_delivery(&mut self) {
        if let Some(rare) = &mut self.rare {
            rare.delivery = None;
            self.drop_empty_rare();
        }
    }

    #[inline(always)]
    fn into_delivery(self) -> Option<Delivery> {
        self.rare?.delivery
    }

    fn has_forward(&self) -> bool {
        self.forward.is_some() || self.rare.as_ref().is_some_and(|r| r.target.is_some())
    }
}

/// What a task keeps once it has been cancelled at least once.
#[derive(Default)]
struct RootBooks {
    /// Tokens carrying a request aimed at the task itself.
    root_tokens: Book,
    /// Every token delivered or raised in the task.
    all_tokens: Book,
    /// The message of the pending root request.
    pending_msg: Cell<Option<Arc<str>>>,
    /// The last message-less root token made, kept for reuse: a task that
    /// awaits many cancelled tasks one after another (and handles each
    /// error) needs one token, not one per error. See [`CancelState::root_error`].
    spare: Cell<Option<Token>>,
}

impl RootBooks {
    /// Forgets every token at task end: no checkpoint will run in the task
    /// again, so nothing reads its books. The weak references would
    /// otherwise keep each dead token's memory until the task is freed (a
    /// cancelled task's token, dropped as the task ends, is freed there
    /// and then, and its memory reused by the next one).
    fn release(&self) {
        drop(self.root_tokens.0.take());
        drop(self.all_tokens.0.take());
        drop(self.spare.take());
    }
}

/// What most tasks never need, in one box allocated on first use: the
/// books of a task that was cancelled, and the task's [`Extras`] (name, what
/// its ending carries). One box rather than one each: a word less in every
/// task header. [`Header`](crate::task::cell::Header) reaches its extras
/// through [`CancelState::extras`].
#[derive(Default)]
struct Cold {
    books: RootBooks,
    extras: Extras,
}

/// The cancellation half of a task header.
pub(crate) struct CancelState {
    /// `cancelling()`: requests made and not taken back.
    count: Cell<u32>,
    /// A request on the root scope that no checkpoint has taken yet
    /// (asyncio's `_must_cancel`); its message is in `books`.
    pending: Cell<bool>,
    inflight: RefCell<InlineSlab<Inflight>>,
    /// The task's first root token, kept here rather than in the books
    /// (see [`CancelState::list_root`]): a task cancelled once, the common
    /// case, allocates no books.
    first_root: Cell<Option<Token>>,
    /// `first_root.is_some()`, readable without taking the token out: the
    /// question every task completion asks.
    rooted: Cell<bool>,
    /// The task's cancel books (allocated at its first cancellation) and
    /// its [`Extras`]: one box for all that most tasks never need.
    cold: OnceCell<Box<Cold>>,
    /// Re-entrancy guard for forwarding cycles (a awaits b awaits a).
    delivering: Cell<bool>,
    /// A plain request was delivered to the in-flight entry at key 0 and
    /// has no [`Delivery`] of its own yet (see [`deliver_plain`]).
    plain: Cell<bool>,
}

/// A list of tokens kept for the liveness rules. It holds them weakly: a
/// token nobody holds any more (no `CancelledError`, no in-flight delivery)
/// can never be live again and is pruned.
///
/// A `Cell` taken out for each use, not a `RefCell`: one word less in each
/// book (a cancelled task has two, each scope one). No use runs user code
/// while the list is out.
#[derive(Default)]
struct Book(Cell<OneOrMany<Weak<TokenInner>>>);

impl Book {
    fn with<R>(&self, f: impl FnOnce(&mut OneOrMany<Weak<TokenInner>>) -> R) -> R {
        let mut list = self.0.take();
        let r = f(&mut list);
        // Nothing here runs user code: nothing can reach back into the book.
        if list.put_back(&self.0).is_some() {
            unreachable!("a cancel book was edited from inside its own edit");
        }
        r
    }

    fn push(&self, token: &Token) {
        self.with(|list| {
            if list
                .last()
                .is_some_and(|t| std::ptr::eq(t.as_ptr(), Arc::as_ptr(token)))
            {
                return;
            }
            // Prune at powers of two: amortised O(1) per push.
            let n = list.len();
            if n >= 8 && n.is_power_of_two() {
                list.retain(|t| t.strong_count() > 0);
            }
            list.push(Arc::downgrade(token));
        })
    }

    fn has(&self, token: &Token) -> bool {
        self.with(|list| {
            list.iter()
                .any(|t| std::ptr::eq(t.as_ptr(), Arc::as_ptr(token)))
        })
    }

    fn live(&self) -> Vec<Token> {
        self.with(|list| {
            list.iter()
                .filter_map(Weak::upgrade)
                .filter(|t| t.is_live())
                .collect()
        })
    }

    /// The first live token, without collecting the others.
    fn first_live(&self) -> Option<Token> {
        self.with(|list| list.iter().filter_map(Weak::upgrade).find(|t| t.is_live()))
    }
}

impl CancelState {
    pub(crate) fn new() -> CancelState {
        CancelState {
            count: Cell::new(0),
            pending: Cell::new(false),
            inflight: RefCell::new(InlineSlab::new()),
            first_root: Cell::new(None),
            rooted: Cell::new(false),
            cold: OnceCell::new(),
            delivering: Cell::new(false),
            plain: Cell::new(false),
        }
    }

    pub(crate) fn cancelling(&self) -> u32 {
        self.count.get()
    }

    pub(crate) fn add_request(&self) {
        self.count.set(self.count.get() + 1);
    }

    /// Takes one request back; reaching zero also drops a root request that
    /// was not delivered yet (Python 3.13).
    pub(crate) fn uncancel(&self) -> u32 {
        let n = self.count.get().saturating_sub(1);
        self.count.set(n);
        if n == 0 {
            self.take_pending();
        }
        n
    }

    fn cold(&self) -> &Cold {
        self.cold.get_or_init(Box::default)
    }

    /// Whether a plain delivery (see [`deliver_plain`]) waits at the
    /// in-flight entry `key`.
    #[inline]
    fn plain_at(&self, key: usize) -> bool {
        key == 0 && self.plain.get()
    }

    fn books(&self) -> &RootBooks {
        &self.cold().books
    }

    /// The books, if the task was ever cancelled.
    fn books_if_any(&self) -> Option<&RootBooks> {
        self.cold.get().map(|c| &c.books)
    }

    /// The task's extras, allocated on first use.
    pub(crate) fn extras(&self) -> &Extras {
        &self.cold().extras
    }

    /// The task's extras, if they were ever allocated.
    pub(crate) fn extras_if_any(&self) -> Option<&Extras> {
        self.cold.get().map(|c| &c.extras)
    }

    /// Takes the pending root request, if any, with its message.
    fn take_pending(&self) -> Option<Option<Arc<str>>> {
        if !self.pending.replace(false) {
            return None;
        }
        Some(self.books_if_any().and_then(|b| b.pending_msg.take()))
    }

    /// Whether a root request is waiting for a checkpoint.
    pub(crate) fn root_pending(&self) -> bool {
        self.pending.get()
    }

    /// The message of the pending root request, if any.
    pub(crate) fn pending_message(&self) -> Option<Arc<str>> {
        if !self.pending.get() {
            return None;
        }
        cloned(&self.books_if_any()?.pending_msg)
    }

    /// The message of a live token of this task, if any is live: the task's
    /// future completed while still being cancelled.
    #[inline]
    pub(crate) fn live_cancellation(&self) -> Option<Option<Arc<str>>> {
        if !self.rooted.get() && self.cold.get().is_none() {
            return None;
        }
        self.live_cancellation_listed()
    }

    /// [`CancelState::live_cancellation`] for a task with tokens listed.
    fn live_cancellation_listed(&self) -> Option<Option<Arc<str>>> {
        let first =
            self.with_first_root(|t| t.filter(|t| t.is_live()).map(|t| t.message().cloned()));
        if first.is_some() {
            return first;
        }
        self.books_if_any()?
            .all_tokens
            .first_live()
            .map(|t| t.message().cloned())
    }

    /// Runs `f` on the task's first root token, if it has one.
    #[inline]
    fn with_first_root<R>(&self, f: impl FnOnce(Option<&Token>) -> R) -> R {
        if !self.rooted.get() {
            return f(None);
        }
        let first = self.first_root.take();
        let r = f(first.as_ref());
        self.first_root.set(first);
        r
    }

    fn set_first_root(&self, token: Token) {
        self.first_root.set(Some(token));
        self.rooted.set(true);
    }

    /// Whether `token` is the task's first root token.
    fn is_first_root(&self, token: &Token) -> bool {
        self.with_first_root(|f| f.is_some_and(|f| Arc::ptr_eq(f, token)))
    }

    /// Whether `token` carries a request on the task's root scope.
    fn is_root(&self, token: &Token) -> bool {
        self.is_first_root(token)
            || self
                .books_if_any()
                .is_some_and(|b| b.root_tokens.has(token))
    }

    /// Lists `token` as carrying a request on the task's root scope. The
    /// first such token is kept in line, and counts as listed among all the
    /// task's tokens too (every root token is); the books hold the rest.
    fn list_root(&self, token: &Token) {
        if !self.rooted.get() {
            self.set_first_root(token.clone());
        } else if !self.is_first_root(token) {
            self.books().root_tokens.push(token);
        }
    }

    /// Lists `token` among every token delivered or raised in the task.
    fn list_any(&self, token: &Token) {
        if !self.is_first_root(token) {
            self.books().all_tokens.push(token);
        }
    }

    /// Lists `token` as carrying a request on `scope`.
    fn list_for(&self, scope: &ScopeRef, token: &Token) {
        match scope {
            None => self.list_root(token),
            Some(node) => node.tokens.push(token),
        }
    }

    /// Every token of this task that is still live: the cancellations in
    /// flight in it (a task group tells by them whether its body's error
    /// carries one).
    pub(crate) fn live_tokens(&self) -> Vec<Token> {
        let mut live = self
            .books_if_any()
            .map(|b| b.all_tokens.live())
            .unwrap_or_default();
        if let Some(first) = self.with_first_root(|t| t.filter(|t| t.is_live()).cloned()) {
            if !live.iter().any(|t| Arc::ptr_eq(t, &first)) {
                live.push(first);
            }
        }
        live
    }

    /// A `CancelledError` for a fresh token counted against the root scope
    /// (a cancelled awaited task, or a `CancelledError` raised by hand).
    ///
    /// A task's first root token is kept in line, without books: most
    /// tasks that get one raise it and end (a cancelled task). From the
    /// second on, a message-less token nobody but the spare slot holds any
    /// more (no error, no task group snapshot: `strong_count == 1`) is
    /// reused: it is indistinguishable from a fresh one, and it is in the
    /// books already (the slot's count keeps it from being pruned). A task
    /// awaiting cancelled tasks one after another makes two tokens, not one
    /// per error.
    pub(crate) fn root_error(&self, msg: Option<Arc<str>>) -> CancelledError {
        if !self.rooted.get() {
            let err = CancelledError::fresh(msg);
            self.set_first_root(err.token().clone());
            return err;
        }
        let books = self.books();
        let reusable = msg.is_none();
        if reusable {
            let spare = books.spare.take();
            let reused = spare
                .as_ref()
                .filter(|t| Arc::strong_count(t) == 1)
                .cloned();
            books.spare.set(spare);
            if let Some(token) = reused {
                debug_assert!(!token.is_live());
                return CancelledError::from_token(token);
            }
        }
        let err = CancelledError::fresh(msg);
        books.root_tokens.push(err.token());
        books.all_tokens.push(err.token());
        if reusable {
            books.spare.set(Some(err.token().clone()));
        }
        err
    }

    /// A `CancelledError` raised by hand: it stands for the innermost
    /// expiring scope's request if there is one (asyncio converts any
    /// `CancelledError` leaving an expiring timeout), else for the task.
    pub(crate) fn raised_error(&self, msg: Option<Arc<str>>) -> CancelledError {
        let mut cur = innermost_scope();
        while let Some(node) = cur {
            if node.expiring.get() {
                let err = CancelledError::fresh(msg);
                node.tokens.push(err.token());
                self.list_any(err.token());
                return err;
            }
            cur = node.parent();
        }
        self.root_error(msg)
    }

    fn set_pending(&self, scope: &ScopeRef, msg: Option<Arc<str>>) {
        match scope {
            None => {
                if !self.pending.replace(true) && msg.is_some() {
                    self.books().pending_msg.set(msg);
                }
            }
            Some(node) => node.pending.set(true),
        }
    }

    /// Releases everything at task completion. In line: most tasks end
    /// with nothing in flight and nothing pending.
    #[inline]
    pub(crate) fn clear(&self) {
        self.plain.set(false);
        if !self.inflight.borrow().is_empty() {
            self.clear_inflight();
        }
        if self.pending.get() {
            self.take_pending();
        }
        if self.rooted.replace(false) {
            drop(self.first_root.take());
        }
        if let Some(cold) = self.cold.get() {
            cold.books.release();
        }
    }

    fn clear_inflight(&self) {
        let entries = self.inflight.borrow_mut().drain();
        drop(entries);
    }
}

/// Delivers a cancel request aimed at `scope` of `task` (see the module doc).
/// Does not touch the request count: callers count their own requests.
pub(crate) fn deliver(task: &TaskRef, scope: Option<&Rc<ScopeNode>>, msg: Option<Arc<str>>) {
    let state = task.cancel_state();
    let scope: ScopeRef = scope.cloned();
    if state.delivering.get() {
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
    {
        let mut inflight = state.inflight.borrow_mut();
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
            let awaited_done = entry.forward.as_ref().is_some_and(TaskRef::done);
            match entry.delivery_mut() {
                Some(d) => {
                    d.requests.push(req());
                    state.list_for(&scope, &d.token);
                    if d.zero && d.forwarded {
                        // asyncio's zero-timeout wait_for waits on a private
                        // future: cancelling the caller stops the wait and
                        // leaves the (already cancelled) task alone. The
                        // caller resumes on the next turn: no relay turn,
                        // unless the task already finished — then its
                        // wake-up is on its way and the waiter's turn is
                        // still owed.
                        d.forwarded = false;
                        d.relayed = !awaited_done;
                        forward = false;
                    } else if d.zero && !d.relayed {
                        // Nothing was forwarded (a shield, a plain future):
                        // the private future is cancelled directly, and the
                        // caller resumes on the turn after this one.
                        d.cut = Some(current_turn());
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
    state.delivering.set(true);
    to_forward.drain_each(|(key, target)| {
        let target = target.as_ref();
        let accepted = target.cancel(msg.clone());
        let mut inflight = state.inflight.borrow_mut();
        if let Some(entry) = inflight.get_mut(key) {
            if let Some(d) = entry.delivery_mut() {
                d.forwarded = accepted;
            }
            if !accepted && !target.wakes_itself() {
                to_wake.push(entry.foreign());
            }
        }
    });
    state.delivering.set(false);
    to_wake.drain_each(|w| match w {
        None => task.0.waker().wake_by_ref(),
        Some(w) => w.wake(),
    });
}

/// The common cancel, delivered without an allocation: a message-less
/// request on the root scope of a suspended task whose one in-flight
/// checkpoint (key 0) waits in the root scope, through the task's own
/// waker, for no awaited task, with nothing delivered yet. It is recorded
/// as [`CancelState::plain`] and the task is woken; the checkpoint raises
/// it with a root token when next polled ([`Checkpoint::raise_plain`]),
/// and any other look at the entry first makes it the [`Delivery`] the
/// general path would have made ([`materialize_plain`]). Until the error
/// is raised its token could not be live, so the books need it no
/// earlier. Returns whether the request was taken this way.
fn deliver_plain(task: &TaskRef) -> bool {
    let state = task.cancel_state();
    if state.plain.get() {
        return false;
    }
    {
        let inflight = state.inflight.borrow();
        let Some(only) = inflight.sole() else {
            return false;
        };
        let plain = only.scope.is_none() && only.forward.is_none() && only.rare.is_none();
        if !plain {
            return false;
        }
    }
    state.plain.set(true);
    task.0.waker().wake_by_ref();
    true
}

/// Gives a plain delivery (see [`deliver_plain`]) the [`Delivery`] the
/// general path would have made, before anything else looks at it.
fn materialize_plain(task: &TaskRef) {
    let state = task.cancel_state();
    if !state.plain.get() {
        return;
    }
    state.plain.set(false);
    let token = TokenInner::new(None);
    state.list_root(&token);
    state.list_any(&token);
    if let Some(entry) = state.inflight.borrow_mut().get_mut(0) {
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
    let mut inflight = state.inflight.borrow_mut();
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

/// A borrowed [`Forward`], so that re-polling an await does not clone it.
enum ForwardRef<'a> {
    Task(&'a TaskRef),
    Target(&'a Rc<dyn CancelTarget>),
}

impl ForwardRef<'_> {
    fn cancel(&self, msg: Option<Arc<str>>) -> bool {
        match self {
            ForwardRef::Task(t) => t.cancel_inner(msg),
            ForwardRef::Target(t) => t.cancel(msg),
        }
    }

    /// Whether a refusal leaves the waking to the target (see
    /// [`CancelTarget`]).
    fn wakes_itself(&self) -> bool {
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

/// The registration of one await point in its task's cancel books.
///
/// Protocol for a checkpoint's `poll`:
/// 1. [`Checkpoint::poll_cancelled`] first: a delivered cancellation beats a
///    ready result, as in asyncio.
/// 2. If the awaited event is complete, [`Checkpoint::complete`] and return.
/// 3. Otherwise [`Checkpoint::suspend`] and return `Pending`.
///
/// Dropping a checkpoint that holds an unreturned delivery re-arms it.
#[derive(Default)]
pub(crate) struct Checkpoint {
    reg: Option<(TaskRef, usize)>,
}

impl Checkpoint {
    pub(crate) const fn new() -> Checkpoint {
        Checkpoint { reg: None }
    }

    /// Whether a cancellation was delivered and not returned yet.
    pub(crate) fn is_delivered(&self) -> bool {
        self.holds_plain() || self.with_entry(|e| e.delivery().is_some()).unwrap_or(false)
    }

    /// Whether a plain delivery (see [`deliver_plain`]) waits here.
    #[inline]
    fn holds_plain(&self) -> bool {
        matches!(&self.reg, Some((task, key)) if task.cancel_state().plain_at(*key))
    }

    /// Raises a plain delivery waiting here (see [`deliver_plain`]),
    /// unregistering: the one path that needs no [`Delivery`]. The token is
    /// a root token, as the general path's would be.
    #[inline(never)]
    fn raise_plain(&mut self) -> Option<CancelledError> {
        let (task, key) = self.reg.take()?;
        let state = task.cancel_state();
        state.plain.set(false);
        let entry = state.inflight.borrow_mut().remove(key);
        drop(entry);
        Some(state.root_error(None))
    }

    /// Whether the delivery was forwarded to an awaited task that accepted it.
    pub(crate) fn is_forwarded(&self) -> bool {
        self.with_entry(|e| e.delivery().is_some_and(|d| d.forwarded))
            .unwrap_or(false)
    }

    fn with_entry<R>(&self, f: impl FnOnce(&Inflight) -> R) -> Option<R> {
        let (task, key) = self.reg.as_ref()?;
        let inflight = task.cancel_state().inflight.borrow();
        inflight.get(*key).map(f)
    }

    /// Wakes the await this checkpoint is suspended in, through the waker
    /// it registered, unless a cancellation was delivered to it (it is
    /// awake already). Returns whether it woke it; an unregistered
    /// checkpoint counts as woken (its first poll will see the event).
    #[inline]
    pub(crate) fn wake_undelivered(&self) -> bool {
        let Some((task, key)) = &self.reg else {
            return true;
        };
        let foreign = {
            let inflight = task.cancel_state().inflight.borrow();
            let Some(entry) = inflight.get(*key) else {
                return true;
            };
            if entry.delivery().is_some() || task.cancel_state().plain_at(*key) {
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
        let Some((task, key)) = &self.reg else {
            return false;
        };
        let mut inflight = task.cancel_state().inflight.borrow_mut();
        let Some(d) = inflight.get_mut(*key).and_then(Inflight::delivery_mut) else {
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
        let Some((task, key)) = &self.reg else {
            return Poll::Ready(None);
        };
        let state = task.cancel_state();
        if state.plain_at(*key) {
            return Poll::Ready(self.raise_plain());
        }
        // One look at the entry: delivered and not forwarded.
        let raise = state
            .inflight
            .borrow()
            .get(*key)
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
        if let Some((task, key)) = &self.reg {
            let state = task.cancel_state();
            let delivered = state.plain_at(*key)
                || state
                    .inflight
                    .borrow()
                    .get(*key)
                    .is_some_and(|e| e.delivery().is_some());
            if delivered {
                return self.poll_fn_delivered(cx, f);
            }
        }
        match f(cx) {
            Poll::Ready(v) => {
                if let Some((task, key)) = self.reg.take() {
                    let entry = task.cancel_state().inflight.borrow_mut().remove(key);
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
        if self.reg.is_some() {
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

    /// Suspends for exactly one turn, the caller having rescheduled its
    /// task (a bare yield: `sleep(0)`, [`checkpoint`](crate::checkpoint)).
    ///
    /// A task sitting in the ready queue needs no wake to see a
    /// cancellation, so in the task's own scope with nothing pending
    /// nothing is registered: a cancel arriving during the turn stays
    /// pending on the task, as asyncio's cancel of a scheduled task sets
    /// `_must_cancel`, and [`Checkpoint::take_pending_after_yield`] raises
    /// it on the next poll. What can be observed is the same as with a
    /// registration (the request is withdrawn by `uncancel()` reaching zero
    /// first, and raised at this await otherwise); the task saves an
    /// in-flight entry per yield. Anywhere else this is
    /// [`Checkpoint::suspend`].
    pub(crate) fn suspend_yield(&mut self, cx: &Context<'_>) -> Suspended {
        let task = polling_task();
        if self.reg.is_none() {
            let state = task.cancel_state();
            if in_root_scope() && !state.root_pending() {
                return Suspended::Waiting;
            }
        }
        self.suspend_in_scope(task, cx, None)
    }

    /// The poll after [`Checkpoint::suspend_yield`]: the cancellation that
    /// arrived during the turn, if the yield registered nothing (a
    /// registered one is [`Checkpoint::poll_cancelled`]'s).
    pub(crate) fn take_pending_after_yield(&mut self) -> Option<CancelledError> {
        if self.reg.is_some() {
            return None;
        }
        let task = current_task_obj()?;
        let state = task.cancel_state();
        let msg = state.take_pending()?;
        Some(state.root_error(msg))
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
        if self.reg.is_none() {
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
        let key = task.cancel_state().inflight.borrow_mut().insert(entry);
        self.reg = Some((task, key));
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
        if let Some((owner, _)) = &self.reg {
            if !owner.ptr_eq(&task) {
                // The future moved to another task: start afresh there.
                self.release();
            }
        }
        let scope = innermost_scope();
        let key = match &self.reg {
            Some((_, key)) => {
                let mut inflight = task.cancel_state().inflight.borrow_mut();
                let entry = inflight.get_mut(*key).expect("registered checkpoint");
                entry.scope = scope.clone();
                entry.refresh_waker(&task, cx.waker());
                if entry.delivery().is_some() || task.cancel_state().plain_at(*key) {
                    return Suspended::Waiting;
                }
                *key
            }
            None => self.register(task, scope.clone(), cx, forward.as_ref()),
        };
        let (task, _) = self.reg.as_ref().expect("registered above");
        let state = task.cancel_state();
        if scope.is_none() && !state.root_pending() {
            // The common case: suspended in the task's own scope, with
            // nothing pending.
            return Suspended::Waiting;
        }
        // Take what is pending on this scope and every enclosing one.
        let mut taken: Vec<ReqRef> = Vec::new();
        let mut cur = scope.clone();
        while let Some(node) = cur {
            if node.pending.replace(false) {
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
        let is_zero = |r: &ReqRef| r.scope.as_ref().is_some_and(|n| n.zero.get());
        let zero = taken.iter().any(is_zero);
        // A zero-timeout wait_for that also takes another pending request
        // (the task had cancelled itself): asyncio cancels the awaited
        // future, then the task's pending cancel cancels the private future
        // it waits on, so it raises on the next turn, with no relay turn.
        let direct = zero && taken.iter().any(|r| !is_zero(r));
        let wakes_itself = forward.as_ref().is_some_and(ForwardRef::wakes_itself);
        let accepted = forward.is_some_and(|f| f.cancel(msg)) && !direct;
        if let Some(entry) = state.inflight.borrow_mut().get_mut(key) {
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
            cx.waker().wake_by_ref();
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
        } else if let Some((task, key)) = self.reg.take() {
            if let Ok(mut inflight) = task.cancel_state().inflight.try_borrow_mut() {
                inflight.remove(key);
                if key == 0 {
                    task.cancel_state().plain.set(false);
                }
            }
        }
    }

    /// Removes this checkpoint's in-flight entry: its task and delivery.
    fn unregister(&mut self) -> Option<(TaskRef, Option<Delivery>)> {
        let (task, key) = self.reg.take()?;
        if key == 0 {
            materialize_plain(&task);
        }
        let entry = task.cancel_state().inflight.borrow_mut().remove(key);
        Some((task, entry.and_then(Inflight::into_delivery)))
    }
}

impl Drop for Checkpoint {
    #[inline]
    fn drop(&mut self) {
        // Most checkpoints have returned (unregistered) when they drop.
        if self.reg.is_some() {
            self.drop_registered();
        }
    }
}

/// A timeout scope's exit check: a token carrying its own request is live,
/// and no enclosing request (outer `cancel()`, outer timeout) rides on it.
pub(crate) fn scope_converts(task: &TaskRef, node: &Rc<ScopeNode>) -> bool {
    let state = task.cancel_state();
    let live = node.tokens.live();
    if live.is_empty() {
        return false;
    }
    for token in &live {
        let mut cur = node.parent();
        loop {
            let enclosing = match &cur {
                Some(n) => n.tokens.has(token),
                None => state.is_root(token),
            };
            if enclosing {
                return false;
            }
            match cur {
                Some(n) => cur = n.parent(),
                None => break,
            }
        }
    }
    true
}

thread_local! {
    /// The innermost scope being polled right now, in the step running on
    /// this thread (`None`: the task's own scope). A property of the step,
    /// not of the task: every [`ScopeGuard`] restores it when its poll
    /// returns, so it is `None` between steps, and a step that runs inside
    /// another (an eager first step) starts afresh ([`StepScope`]). Kept
    /// here rather than in every task header.
    static INNERMOST: Cell<ScopeRef> = const { Cell::new(None) };
    /// `INNERMOST.is_some()`, kept beside it: the question every first
    /// suspension asks, answered by a thread-local without a destructor
    /// (the cheapest kind to reach).
    static SCOPED: Cell<bool> = const { Cell::new(false) };
}

/// Makes `scope` the innermost one; returns the previous.
fn set_innermost(scope: ScopeRef) -> ScopeRef {
    let scoped = scope.is_some();
    match INNERMOST.try_with(|c| c.replace(scope)) {
        Ok(prev) => {
            SCOPED.with(|f| f.set(scoped));
            prev
        }
        // While this thread's locals are destroyed: nothing is tracked.
        Err(_) => None,
    }
}

/// The innermost scope of the running step.
fn innermost_scope() -> ScopeRef {
    INNERMOST.try_with(cloned).unwrap_or(None)
}

/// Whether the running step is in its task's own scope (no timeout or task
/// group body being polled), without touching the count. Also true between
/// steps (checked when a step begins).
pub(crate) fn in_root_scope() -> bool {
    !SCOPED.with(Cell::get)
}

/// Enters `node` as the innermost scope of the running step for the
/// duration of one poll; restores the previous scope on drop (panics too).
pub(crate) struct ScopeGuard {
    prev: ScopeRef,
}

impl ScopeGuard {
    pub(crate) fn enter(node: &Rc<ScopeNode>) -> ScopeGuard {
        let prev = set_innermost(Some(node.clone()));
        if !same_scope(&prev, &Some(node.clone())) {
            *node.parent.borrow_mut() = prev.clone();
        }
        ScopeGuard { prev }
    }
}

impl Drop for ScopeGuard {
    fn drop(&mut self) {
        drop(set_innermost(self.prev.take()));
    }
}

/// Runs a task step inside another task's step (an eager first step) in
/// its own task's scope, restoring the outer step's innermost scope after.
pub(crate) struct StepScope {
    outer: ScopeRef,
}

impl StepScope {
    pub(crate) fn enter() -> StepScope {
        StepScope {
            outer: set_innermost(None),
        }
    }
}

impl Drop for StepScope {
    fn drop(&mut self) {
        drop(set_innermost(self.outer.take()));
    }
}

#[cfg(all(test, target_pointer_width = "64"))]
mod tests {
    use super::Cold;

    /// A task cancelled more than once, or with a message, or named,
    /// allocates its `Cold` box: its size is memory per such task. Growing
    /// it needs a reason.
    #[test]
    fn the_cold_box_stays_at_96_bytes() {
        assert!(
            std::mem::size_of::<Cold>() <= 96,
            "Cold is {} bytes",
            std::mem::size_of::<Cold>()
        );
    }

    /// A task that awaits cancelled tasks one after another, handling each
    /// error, makes two root tokens however many it awaits: its first, and
    /// the spare it reuses from the second await on.
    #[test]
    fn awaiting_cancelled_tasks_reuses_one_root_token() {
        use crate::{create_task, current_task, sleep, Runner};
        use std::sync::Arc;
        use std::time::Duration;
        Runner::builder().virtual_time(true).build().run(async {
            let me = current_task().unwrap();
            let spare = || {
                let books = me.cancel_state().books_if_any()?;
                let token = books.spare.take()?;
                let at = Arc::as_ptr(&token);
                books.spare.set(Some(token));
                Some(at)
            };
            let mut seen = Vec::new();
            for _ in 0..20 {
                let t = create_task(sleep(Duration::from_secs(1)));
                t.task_ref().cancel();
                assert!(t.await.is_err(), "the awaited task was cancelled");
                seen.push(spare());
            }
            assert_eq!(seen[0], None, "the first root token is not kept");
            let kept = seen[1].expect("the second is kept as the spare");
            assert!(seen[1..].iter().all(|s| *s == Some(kept)), "and reused");
        });
    }

    /// A task cancelled once keeps its token in line: no books are
    /// allocated (a million cancelled tasks would allocate a million), and
    /// the token still counts (the task ends cancelled if it propagates).
    #[test]
    fn a_task_cancelled_once_allocates_no_books() {
        use crate::{create_task, current_task, sleep, CancelledError, Runner};
        use std::time::Duration;
        Runner::builder().virtual_time(true).build().run(async {
            let t = create_task(async {
                let err = sleep(Duration::from_secs(10)).await.unwrap_err();
                let me = current_task().unwrap();
                let state = me.cancel_state();
                assert!(state.books_if_any().is_none(), "no books");
                assert_eq!(state.live_cancellation(), Some(None), "live, no message");
                assert_eq!(state.live_tokens().len(), 1);
                Err::<(), CancelledError>(err)
            });
            sleep(Duration::from_secs(1)).await.unwrap();
            let task = t.task_ref().clone();
            task.cancel();
            assert!(t.await.is_err());
            assert!(task.cancelled(), "the propagated error ended it cancelled");
        });
    }

    /// A task that ends keeps no token in its books: a cancelled task's
    /// token is freed as the task ends, not when the task is freed (a
    /// million cancelled tasks would otherwise hold a million dead tokens).
    #[test]
    fn an_ended_task_keeps_no_token() {
        use crate::{create_task, sleep, CancelledError, Runner};
        use std::time::Duration;
        Runner::builder().virtual_time(true).build().run(async {
            let t = create_task(async {
                sleep(Duration::from_secs(10)).await?;
                Ok::<_, CancelledError>(())
            });
            sleep(Duration::from_secs(1)).await.unwrap();
            let task = t.task_ref().clone();
            task.cancel();
            let tokens = |task: &crate::TaskRef| {
                let state = task.cancel_state();
                let books = state.books_if_any().map_or(0, |b| {
                    b.all_tokens.with(|l| l.len()) + b.root_tokens.with(|l| l.len())
                });
                books + state.with_first_root(|f| f.is_some() as usize)
            };
            assert!(t.await.is_err(), "the task was cancelled");
            assert!(task.cancelled());
            assert_eq!(tokens(&task), 0, "the ended task's books are empty");
        });
    }
}
