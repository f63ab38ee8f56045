//! A task's cancel state ([`CancelState`], the cancellation half of its
//! header) and the books of tokens kept for the liveness rules. See the
//! [cancel module doc](super) for the model.

use std::cell::Cell;
use std::mem::ManuallyDrop;
use std::sync::{Arc, Weak};

use super::delivery::Inflight;
use super::error::{CancelledError, Token, TokenInner};
use super::scope::{innermost_scope, ScopeRef};
use crate::task::cell::{Extras, Lent};
use crate::util::arc_or_box::ArcOrBox;
use crate::util::bits::{Bit, Bits};
use crate::util::small::{cloned, InlineSlab, OneOrMany};
use crate::util::split_cell::{BorrowFlag, SplitCell, SplitRef, SplitRefMut};

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
    /// The task's first root token, once the box exists (before, the
    /// header holds it in the box's word: see [`CancelState`]'s `cold`).
    first_root: Cell<Option<Token>>,
    books: RootBooks,
    extras: Extras,
}

/// The cancellation half of a task header.
///
/// 48 bytes: its count, its flags (one bit each), the in-flight table's
/// borrow flag and the header's two [`Lent`] bytes share one word; the
/// in-flight table is a [`SplitCell`], a `RefCell` without a word-sized
/// flag of its own, and no larger than the entry it holds in place; the
/// first root token and the cold box share a word.
pub(crate) struct CancelState {
    /// `cancelling()`: requests made and not taken back.
    count: Cell<u32>,
    /// The task's cancel [`CancelFlag`]s.
    bits: Bits<CancelFlag>,
    /// [`CancelState::inflight`]'s borrow flag.
    inflight_flag: BorrowFlag,
    /// The header's end and flags, kept in this word's spare bytes.
    lent: Lent,
    /// The task's suspended checkpoints: read and edit it through
    /// [`CancelState::inflight`] and [`CancelState::inflight_mut`].
    /// `ManuallyDrop`, dropped by hand: see [`CancelState`]'s drop.
    inflight: ManuallyDrop<SplitCell<InlineSlab<Inflight>>>,
    /// The task's cancel books (allocated at its first cancellation but
    /// one) and its [`Extras`]: one box for all that most tasks never need.
    /// Until the box exists the word holds the task's first root token
    /// instead (see [`CancelState::list_root`]): a task cancelled once, the
    /// common case, allocates no box; the box takes the token over.
    /// [`CancelFlag::Rooted`] says whether there is a first root token.
    cold: ArcOrBox<TokenInner, Cold>,
}

impl Drop for CancelState {
    /// A task's in-flight table is empty when it ends: a test of a word,
    /// not the table's drop glue. (The cold word's own drop is a test of a
    /// word too.)
    #[inline]
    fn drop(&mut self) {
        let inflight = self.inflight.get_mut();
        if !matches!(inflight, InlineSlab::Empty) {
            drop_inflight(std::mem::replace(inflight, InlineSlab::Empty));
        }
    }
}

/// The rare part of [`CancelState`]'s drop, out of line.
#[inline(never)]
fn drop_inflight(inflight: InlineSlab<Inflight>) {
    drop(inflight);
}

/// A task's cancel flags, one bit each of [`CancelState`]'s `bits`.
#[derive(Clone, Copy)]
pub(super) enum CancelFlag {
    /// A request on the root scope that no checkpoint has taken yet
    /// (asyncio's `_must_cancel`); its message is in the books.
    Pending = 1,
    /// The first root token is set: readable without taking the token
    /// out, the question every task completion asks.
    Rooted = 2,
    /// Re-entrancy guard for forwarding cycles (a awaits b awaits a).
    Delivering = 4,
    /// A plain request was delivered to the in-flight entry at key 0 and
    /// has no [`Delivery`](super::delivery::Delivery) of its own yet (see
    /// `deliver_plain`).
    Plain = 8,
}

impl Bit for CancelFlag {
    fn mask(self) -> u8 {
        self as u8
    }
}

/// A list of tokens kept for the liveness rules. It holds them weakly: a
/// token nobody holds any more (no `CancelledError`, no in-flight delivery)
/// can never be live again and is pruned.
///
/// A `Cell` taken out for each use, not a `RefCell`: one word less in each
/// book (a cancelled task has two, each scope one). No use runs user code
/// while the list is out.
#[derive(Default)]
pub(super) struct Book(Cell<OneOrMany<Weak<TokenInner>>>);

impl Book {
    pub(super) fn with<R>(&self, f: impl FnOnce(&mut OneOrMany<Weak<TokenInner>>) -> R) -> R {
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

    pub(super) fn has(&self, token: &Token) -> bool {
        self.with(|list| {
            list.iter()
                .any(|t| std::ptr::eq(t.as_ptr(), Arc::as_ptr(token)))
        })
    }

    pub(super) fn live(&self) -> Vec<Token> {
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
            bits: Bits::new(0),
            inflight_flag: BorrowFlag::new(),
            lent: Lent::new(),
            inflight: ManuallyDrop::new(SplitCell::new(InlineSlab::new())),
            cold: ArcOrBox::new(),
        }
    }

    /// The task's cancel flags.
    #[inline]
    pub(super) fn flags(&self) -> &Bits<CancelFlag> {
        &self.bits
    }

    /// The header's bytes kept here (see [`Lent`]).
    #[inline]
    pub(crate) fn lent(&self) -> &Lent {
        &self.lent
    }

    /// The in-flight table, shared (`RefCell::borrow`'s rules).
    #[inline]
    pub(super) fn inflight(&self) -> SplitRef<'_, InlineSlab<Inflight>> {
        // SAFETY: `inflight_flag` is this cell's one flag, and only these
        // three accessors borrow the cell.
        unsafe { self.inflight.borrow(&self.inflight_flag) }
    }

    /// The in-flight table, exclusive (`RefCell::borrow_mut`'s rules).
    #[inline]
    pub(super) fn inflight_mut(&self) -> SplitRefMut<'_, InlineSlab<Inflight>> {
        // SAFETY: as in `inflight`.
        unsafe { self.inflight.borrow_mut(&self.inflight_flag) }
    }

    /// The in-flight table, exclusive, or `None` while it is borrowed.
    pub(super) fn try_inflight_mut(&self) -> Option<SplitRefMut<'_, InlineSlab<Inflight>>> {
        // SAFETY: as in `inflight`.
        unsafe { self.inflight.try_borrow_mut(&self.inflight_flag) }
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
        self.cold.boxed_or_init(|first_root| Cold {
            first_root: Cell::new(first_root),
            ..Cold::default()
        })
    }

    /// Whether a plain delivery (see `deliver_plain`) waits at the
    /// in-flight entry `key`.
    #[inline]
    pub(super) fn plain_at(&self, key: usize) -> bool {
        key == 0 && self.bits.get(CancelFlag::Plain)
    }

    fn books(&self) -> &RootBooks {
        &self.cold().books
    }

    /// The books, if the task was ever cancelled.
    fn books_if_any(&self) -> Option<&RootBooks> {
        self.cold.boxed().map(|c| &c.books)
    }

    /// The task's extras, allocated on first use.
    pub(crate) fn extras(&self) -> &Extras {
        &self.cold().extras
    }

    /// The task's extras, if they were ever allocated.
    pub(crate) fn extras_if_any(&self) -> Option<&Extras> {
        self.cold.boxed().map(|c| &c.extras)
    }

    /// Takes the pending root request, if any, with its message.
    pub(super) fn take_pending(&self) -> Option<Option<Arc<str>>> {
        if !self.bits.replace(CancelFlag::Pending, false) {
            return None;
        }
        Some(self.books_if_any().and_then(|b| b.pending_msg.take()))
    }

    /// Whether a root request is waiting for a checkpoint.
    pub(crate) fn root_pending(&self) -> bool {
        self.bits.get(CancelFlag::Pending)
    }

    /// The message of the pending root request, if any.
    pub(crate) fn pending_message(&self) -> Option<Arc<str>> {
        if !self.bits.get(CancelFlag::Pending) {
            return None;
        }
        cloned(&self.books_if_any()?.pending_msg)
    }

    /// The message of a live token of this task, if any is live: the task's
    /// future completed while still being cancelled.
    #[inline]
    pub(crate) fn live_cancellation(&self) -> Option<Option<Arc<str>>> {
        if !self.bits.get(CancelFlag::Rooted) && self.cold.boxed().is_none() {
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
        if !self.bits.get(CancelFlag::Rooted) {
            return f(None);
        }
        let first = self.take_first_root();
        let r = f(first.as_ref());
        if let Some(first) = first {
            self.put_first_root(first);
        }
        r
    }

    /// Takes the first root token out of wherever it is kept (the cold
    /// word, or the cold box once there is one).
    fn take_first_root(&self) -> Option<Token> {
        match self.cold.boxed() {
            Some(cold) => cold.first_root.take(),
            None => self.cold.take_arc(),
        }
    }

    fn put_first_root(&self, token: Token) {
        match self.cold.boxed() {
            Some(cold) => cold.first_root.set(Some(token)),
            None => self.cold.put_arc(token),
        }
    }

    fn set_first_root(&self, token: Token) {
        self.put_first_root(token);
        self.bits.set(CancelFlag::Rooted, true);
    }

    /// Whether `token` is the task's first root token.
    fn is_first_root(&self, token: &Token) -> bool {
        self.with_first_root(|f| f.is_some_and(|f| Arc::ptr_eq(f, token)))
    }

    /// Whether `token` carries a request on the task's root scope.
    pub(super) fn is_root(&self, token: &Token) -> bool {
        self.is_first_root(token)
            || self
                .books_if_any()
                .is_some_and(|b| b.root_tokens.has(token))
    }

    /// Lists `token` as carrying a request on the task's root scope. The
    /// first such token is kept in line, and counts as listed among all the
    /// task's tokens too (every root token is); the books hold the rest.
    pub(super) fn list_root(&self, token: &Token) {
        if !self.bits.get(CancelFlag::Rooted) {
            self.set_first_root(token.clone());
        } else if !self.is_first_root(token) {
            self.books().root_tokens.push(token);
        }
    }

    /// Lists `token` among every token delivered or raised in the task.
    pub(super) fn list_any(&self, token: &Token) {
        if !self.is_first_root(token) {
            self.books().all_tokens.push(token);
        }
    }

    /// Lists `token` as carrying a request on `scope`.
    pub(super) fn list_for(&self, scope: &ScopeRef, token: &Token) {
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
        if !self.bits.get(CancelFlag::Rooted) {
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

    pub(super) fn set_pending(&self, scope: &ScopeRef, msg: Option<Arc<str>>) {
        match scope {
            None => {
                if !self.bits.replace(CancelFlag::Pending, true) && msg.is_some() {
                    self.books().pending_msg.set(msg);
                }
            }
            Some(node) => node.set_pending(true),
        }
    }

    /// Releases everything at task completion. In line: most tasks end
    /// with nothing in flight and nothing pending.
    #[inline]
    pub(crate) fn clear(&self) {
        self.bits.set(CancelFlag::Plain, false);
        if !self.inflight().is_empty() {
            self.clear_inflight();
        }
        if self.bits.get(CancelFlag::Pending) {
            self.take_pending();
        }
        if self.bits.replace(CancelFlag::Rooted, false) {
            drop(self.take_first_root());
        }
        if let Some(cold) = self.cold.boxed() {
            cold.books.release();
        }
    }

    fn clear_inflight(&self) {
        let entries = self.inflight_mut().drain();
        drop(entries);
    }
}

#[cfg(all(test, target_pointer_width = "64"))]
mod tests {
    use super::{CancelState, Cold};

    /// Every task header holds one: its size is memory per task. 40 bytes
    /// only while the count, the bits, the borrow flag and the lent bytes
    /// share a word, the in-flight table is no larger than its entry, and
    /// the first root token shares the cold box's word.
    #[test]
    fn the_cancel_state_stays_at_40_bytes() {
        assert_eq!(std::mem::size_of::<CancelState>(), 40);
    }

    /// A task cancelled more than once, or with a message, or named,
    /// allocates its `Cold` box: its size is memory per such task. Growing
    /// it needs a reason. (104 bytes is a 112-byte malloc chunk, as 96 was.)
    #[test]
    fn the_cold_box_stays_at_104_bytes() {
        assert!(
            std::mem::size_of::<Cold>() <= 104,
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
