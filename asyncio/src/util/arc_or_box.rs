//! One word that holds nothing, an `Arc<A>`, or a `Box<B>`.
//!
//! A task's cancel state keeps its first root token (an `Arc`) in line,
//! and everything rarer in one box allocated on first use, which then
//! holds the token as well. As a `Cell<Option<Arc<A>>>` beside a
//! `OnceCell<Box<B>>` that is two words in every task header; as one
//! pointer tagged in its low bit (both pointees are at least 2-aligned,
//! checked at compile time) it is one.
//!
//! The rules are those two cells' rules: the `Arc` is moved in and out,
//! never borrowed; the box, once set, stays until the [`ArcOrBox`] is
//! dropped, so a shared reference to it lives as long as the `&self` it
//! came from.
//!
//! The unsafe code of this idea is here and nowhere else, and the Miri
//! subset runs its tests.

use std::cell::Cell;
use std::marker::PhantomData;
use std::ptr;
use std::sync::Arc;

/// Nothing, an `Arc<A>`, or a `Box<B>` that stays once set: see the
/// [module doc](self).
pub(crate) struct ArcOrBox<A, B> {
    /// Null: nothing. Low bit clear: an `Arc<A>` from `Arc::into_raw`.
    /// Low bit set: a `Box<B>` from `Box::into_raw`, tagged.
    word: Cell<*mut ()>,
    _owns: PhantomData<(Arc<A>, Box<B>)>,
}

/// The tag of a boxed `B`.
const BOXED: usize = 1;

impl<A, B> ArcOrBox<A, B> {
    /// Both pointees leave the low bit of their address free.
    const ALIGNED: () = assert!(align_of::<A>() >= 2 && align_of::<B>() >= 2);

    pub(crate) const fn new() -> ArcOrBox<A, B> {
        #[allow(clippy::let_unit_value)]
        let () = Self::ALIGNED;
        ArcOrBox {
            word: Cell::new(ptr::null_mut()),
            _owns: PhantomData,
        }
    }

    /// Whether it holds nothing at all.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.word.get().is_null()
    }

    /// The box, if one was set.
    #[inline]
    pub(crate) fn boxed(&self) -> Option<&B> {
        let word = self.word.get();
        if word.addr() & BOXED == 0 {
            return None;
        }
        // SAFETY: a tagged word is a pointer from `Box::into_raw` (see
        // `boxed_or_init`), tag removed here; the box is only freed by
        // `drop`, which `&self` rules out for the reference's life, and no
        // method hands out a `&mut B`.
        Some(unsafe { &*word.map_addr(|a| a & !BOXED).cast::<B>() })
    }

    /// The box, set first if there is none: `init` is given the `Arc`
    /// held until now (if any), to keep in the box if it wants it.
    ///
    /// # Panics
    /// If `init` reaches back into this cell and stores something, as a
    /// `OnceCell` panics on a re-entrant initialisation.
    pub(crate) fn boxed_or_init(&self, init: impl FnOnce(Option<Arc<A>>) -> B) -> &B {
        if let Some(b) = self.boxed() {
            return b;
        }
        let value = Box::new(init(self.take_arc()));
        assert!(self.is_empty(), "ArcOrBox initialised re-entrantly");
        let raw = Box::into_raw(value).cast::<()>();
        self.word.set(raw.map_addr(|a| a | BOXED));
        // SAFETY: as in `boxed`: just set, freed only by `drop`.
        unsafe { &*raw.cast::<B>() }
    }

    /// Takes the `Arc` out, leaving nothing; `None` if it holds none (or
    /// holds the box, which stays).
    #[inline]
    pub(crate) fn take_arc(&self) -> Option<Arc<A>> {
        let word = self.word.get();
        if word.is_null() || word.addr() & BOXED != 0 {
            return None;
        }
        self.word.set(ptr::null_mut());
        // SAFETY: an untagged non-null word is a pointer from
        // `Arc::into_raw` (see `put_arc`) whose count this cell owned; the
        // word is cleared, so the count moves to the `Arc` returned.
        Some(unsafe { Arc::from_raw(word.cast::<A>()) })
    }

    /// Stores `arc`, dropping any `Arc` held before (after the store).
    ///
    /// # Panics
    /// If the box is set: the box's owner keeps the `Arc` inside it from
    /// then on.
    pub(crate) fn put_arc(&self, arc: Arc<A>) {
        assert!(self.boxed().is_none(), "ArcOrBox::put_arc after the box");
        let old = self.take_arc();
        self.word.set(Arc::into_raw(arc).cast_mut().cast::<()>());
        drop(old);
    }

    /// Frees what is held, out of line: most cells hold nothing when
    /// dropped.
    #[inline(never)]
    fn drop_slow(&mut self) {
        let word = self.word.replace(ptr::null_mut());
        if word.addr() & BOXED != 0 {
            // SAFETY: a tagged word is a pointer from `Box::into_raw`;
            // `&mut self` means no reference from `boxed` is live, and the
            // word is cleared, so the box is freed once.
            drop(unsafe { Box::from_raw(word.map_addr(|a| a & !BOXED).cast::<B>()) });
        } else {
            // SAFETY: an untagged non-null word holds one count of an
            // `Arc` (see `take_arc`); the word is cleared.
            drop(unsafe { Arc::from_raw(word.cast::<A>()) });
        }
    }
}

impl<A, B> Default for ArcOrBox<A, B> {
    fn default() -> Self {
        ArcOrBox::new()
    }
}

impl<A, B> Drop for ArcOrBox<A, B> {
    #[inline]
    fn drop(&mut self) {
        if !self.is_empty() {
            self.drop_slow();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ArcOrBox;
    use std::cell::Cell;
    use std::rc::Rc;
    use std::sync::Arc;

    /// A box that can hold the `Arc` it is given, and counts its drops.
    struct Held {
        arc: Cell<Option<Arc<u64>>>,
        drops: Rc<Cell<u32>>,
    }

    impl Drop for Held {
        fn drop(&mut self) {
            self.drops.set(self.drops.get() + 1);
        }
    }

    fn held(arc: Option<Arc<u64>>, drops: &Rc<Cell<u32>>) -> Held {
        Held {
            arc: Cell::new(arc),
            drops: drops.clone(),
        }
    }

    #[test]
    fn it_is_one_word() {
        assert_eq!(size_of::<ArcOrBox<u64, Held>>(), size_of::<usize>());
    }

    #[test]
    fn an_arc_moves_in_and_out_with_its_count() {
        let cell = ArcOrBox::<u64, Held>::new();
        assert!(cell.is_empty() && cell.take_arc().is_none());
        let a = Arc::new(7);
        cell.put_arc(a.clone());
        assert_eq!(Arc::strong_count(&a), 2);
        assert!(cell.boxed().is_none() && !cell.is_empty());
        let back = cell.take_arc().unwrap();
        assert!(Arc::ptr_eq(&a, &back) && cell.is_empty());
        drop(back);
        assert_eq!(Arc::strong_count(&a), 1);
    }

    #[test]
    fn putting_an_arc_over_another_drops_the_first() {
        let cell = ArcOrBox::<u64, Held>::new();
        let (a, b) = (Arc::new(1), Arc::new(2));
        cell.put_arc(a.clone());
        cell.put_arc(b.clone());
        assert_eq!((Arc::strong_count(&a), Arc::strong_count(&b)), (1, 2));
        drop(cell);
        assert_eq!(Arc::strong_count(&b), 1);
    }

    #[test]
    fn the_box_takes_the_arc_and_stays() {
        let drops = Rc::new(Cell::new(0));
        let cell = ArcOrBox::<u64, Held>::new();
        let a = Arc::new(3);
        cell.put_arc(a.clone());
        let first = cell.boxed_or_init(|arc| held(arc, &drops)) as *const Held;
        let again = cell.boxed_or_init(|_| unreachable!("set once")) as *const Held;
        assert_eq!(first, again);
        assert!(cell.take_arc().is_none(), "the arc went into the box");
        let inner = cell.boxed().unwrap().arc.take().unwrap();
        assert!(Arc::ptr_eq(&inner, &a));
        cell.boxed().unwrap().arc.set(Some(inner));
        drop(cell);
        assert_eq!(drops.get(), 1);
        assert_eq!(Arc::strong_count(&a), 1, "the box dropped its arc");
    }

    #[test]
    fn an_empty_cell_boxes_with_no_arc() {
        let drops = Rc::new(Cell::new(0));
        let cell = ArcOrBox::<u64, Held>::new();
        let b = cell.boxed_or_init(|arc| {
            assert!(arc.is_none());
            held(None, &drops)
        });
        assert!(b.arc.take().is_none());
        drop(cell);
        assert_eq!(drops.get(), 1);
    }

    #[test]
    #[should_panic(expected = "after the box")]
    fn an_arc_cannot_be_put_beside_the_box() {
        let drops = Rc::new(Cell::new(0));
        let cell = ArcOrBox::<u64, Held>::new();
        cell.boxed_or_init(|_| held(None, &drops));
        cell.put_arc(Arc::new(1));
    }

    #[test]
    #[should_panic(expected = "re-entrantly")]
    fn a_re_entrant_init_panics() {
        let drops = Rc::new(Cell::new(0));
        let cell = ArcOrBox::<u64, Held>::new();
        cell.boxed_or_init(|_| {
            cell.put_arc(Arc::new(5));
            held(None, &drops)
        });
    }
}
