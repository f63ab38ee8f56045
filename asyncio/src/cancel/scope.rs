//! The scope tree: inner cancel scopes ([`ScopeNode`]), which scope a
//! checkpoint lies inside, and the innermost scope of the running step,
//! kept in a thread-local. See the [cancel module doc](super) for the
//! model.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use super::state::Book;
use crate::task::TaskRef;
use crate::util::small::{cloned, OneOrMany};

/// An inner cancel scope (a timeout or `wait_for` while it runs).
///
/// Its `pending` and `zero` flags change only through its methods, which
/// keep [`FLAGS_SET`] in step.
pub(crate) struct ScopeNode {
    parent: RefCell<Option<Rc<ScopeNode>>>,
    /// A request aimed at this scope waits for a checkpoint inside it.
    pending: Cell<bool>,
    pub(super) tokens: Book,
    /// `wait_for` with a zero timeout: its request is forwarded to an
    /// awaited task once; later requests are not (asyncio waits on a
    /// private future there).
    zero: Cell<bool>,
    /// The scope's own request is out (a timeout past its deadline).
    pub(super) expiring: Cell<bool>,
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
        flag(&self.zero, true);
    }

    pub(crate) fn set_pending(&self, on: bool) {
        flag(&self.pending, on);
    }

    /// Clears the pending flag; returns whether it was set.
    pub(super) fn take_pending(&self) -> bool {
        flag(&self.pending, false)
    }

    pub(super) fn is_zero(&self) -> bool {
        self.zero.get()
    }

    pub(super) fn parent(&self) -> Option<Rc<ScopeNode>> {
        self.parent.borrow().clone()
    }

    /// Makes an unshared scope as good as new, for reuse by another
    /// timeout (see `time/timeout.rs`).
    pub(crate) fn reset(self: &Rc<Self>) {
        debug_assert!(Rc::strong_count(self) == 1 && Rc::weak_count(self) == 0);
        self.parent.borrow_mut().take();
        flag(&self.pending, false);
        self.tokens.with(|list| *list = OneOrMany::None);
        flag(&self.zero, false);
        self.expiring.set(false);
    }

    /// This scope's [`Chain`]: itself and every enclosing scope. Recursive,
    /// without a count touched: scopes nest as deep as the polls that
    /// entered them, which recursed as deep already.
    fn chain(&self) -> Chain {
        if self.pending.get() {
            return Chain::Pending;
        }
        let outer = match &*self.parent.borrow() {
            Some(parent) => parent.chain(),
            None => Chain::Quiet,
        };
        if outer == Chain::Quiet && self.zero.get() {
            Chain::Zero
        } else {
            outer
        }
    }

    /// Whether nothing but its owner holds the scope: no in-flight
    /// checkpoint, request, inner scope or guard refers to it.
    pub(crate) fn unshared(self: &Rc<Self>) -> bool {
        Rc::strong_count(self) == 1 && Rc::weak_count(self) == 0
    }
}

impl Drop for ScopeNode {
    fn drop(&mut self) {
        flag(&self.pending, false);
        flag(&self.zero, false);
    }
}

/// Sets a scope's `pending` or `zero` flag, counting it in [`FLAGS_SET`];
/// returns the flag's old value.
fn flag(cell: &Cell<bool>, on: bool) -> bool {
    let was = cell.replace(on);
    if was != on {
        // While this thread's locals are destroyed nothing is counted,
        // and nothing is polled.
        let _ = FLAGS_SET.try_with(|n| n.set(if on { n.get() + 1 } else { n.get() - 1 }));
    }
    was
}

/// Which scope a request is aimed at: `None` is the task (root) scope.
pub(super) type ScopeRef = Option<Rc<ScopeNode>>;

fn same_scope(a: &ScopeRef, b: &ScopeRef) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => Rc::ptr_eq(a, b),
        _ => false,
    }
}

/// Whether a checkpoint suspended in `inner` lies inside `target`.
pub(super) fn inside(inner: &ScopeRef, target: &ScopeRef) -> bool {
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
    /// How many `pending` and `zero` flags are set on this thread's
    /// scopes: while none is, every scope chain is quiet, and a yield in
    /// a `wait_for` answers [`scope_chain`] without walking it.
    static FLAGS_SET: Cell<u32> = const { Cell::new(0) };
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
pub(super) fn innermost_scope() -> ScopeRef {
    INNERMOST.try_with(cloned).unwrap_or(None)
}

/// What a bare yield suspended in the innermost scope of the running step
/// would see there and in every enclosing scope (the task's own aside).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Chain {
    /// No request pending and no zero-timeout scope.
    Quiet,
    /// A zero-timeout scope (its requests take a relay turn), nothing
    /// pending.
    Zero,
    /// A request is pending on some scope of the chain.
    Pending,
}

/// Reads the innermost scope's chain (see [`Chain`]); `Quiet` in the
/// task's own scope.
pub(super) fn scope_chain() -> Chain {
    if FLAGS_SET.with(Cell::get) == 0 {
        return Chain::Quiet;
    }
    INNERMOST
        .try_with(|c| {
            let innermost = c.take();
            let chain = innermost.as_deref().map_or(Chain::Quiet, ScopeNode::chain);
            c.set(innermost);
            chain
        })
        .unwrap_or(Chain::Quiet)
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
        let reentered = prev.as_ref().is_some_and(|p| Rc::ptr_eq(p, node));
        if !reentered {
            let mut parent = node.parent.borrow_mut();
            // Polled under the same scope as last time (every poll but the
            // first, usually): nothing to change.
            if !same_scope(&parent, &prev) {
                *parent = prev.clone();
            }
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

#[cfg(test)]
mod tests {
    use super::{ScopeNode, FLAGS_SET};
    use std::cell::Cell;

    fn flags_set() -> u32 {
        FLAGS_SET.with(Cell::get)
    }

    /// Every way a flag is set or cleared keeps the thread's count exact:
    /// a count left above zero would only cost walks, one below would skip
    /// a pending request.
    #[test]
    fn the_count_follows_every_flag_until_cleared_or_dropped() {
        let base = flags_set();
        let a = ScopeNode::new();
        let b = ScopeNode::new();
        a.set_pending(true);
        a.set_pending(true); // already set: counted once
        b.set_zero();
        b.set_pending(true);
        assert_eq!(flags_set(), base + 3);
        assert!(a.take_pending());
        assert!(!a.take_pending());
        assert_eq!(flags_set(), base + 2);
        b.reset();
        assert_eq!(flags_set(), base);
        b.set_zero();
        a.set_pending(true);
        assert_eq!(flags_set(), base + 2);
        drop(b);
        drop(a);
        assert_eq!(flags_set(), base);
    }
}
