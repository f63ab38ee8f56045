//! A `RefCell` whose borrow flag lives outside it.
//!
//! `RefCell<T>` keeps a word-sized borrow flag beside the value. In a task
//! header, where every word is memory per task, that word is the price of
//! one table; a flag of one byte fits in padding that the header has
//! anyway. [`SplitCell`] holds the value; the owner keeps the [`BorrowFlag`]
//! wherever it has room and passes it to every borrow, through a safe
//! accessor of its own that always pairs the cell with its one flag.
//!
//! The rules are `RefCell`'s: any number of shared borrows, or one
//! exclusive borrow; a conflicting borrow panics (or, with
//! [`SplitCell::try_borrow_mut`], fails).
//!
//! This is the crate's one `RefCell` made by hand; its unsafe code is here
//! and nowhere else, and the Miri subset runs its tests.

use std::cell::{Cell, UnsafeCell};
use std::ops::{Deref, DerefMut};

/// The borrow state of one [`SplitCell`]: the number of shared borrows, or
/// [`BorrowFlag::EXCLUSIVE`].
#[derive(Default)]
pub(crate) struct BorrowFlag(Cell<u8>);

impl BorrowFlag {
    const EXCLUSIVE: u8 = u8::MAX;

    pub(crate) const fn new() -> BorrowFlag {
        BorrowFlag(Cell::new(0))
    }
}

/// A value borrowed by the rules of `RefCell`, its flag kept by the owner.
pub(crate) struct SplitCell<T> {
    value: UnsafeCell<T>,
}

impl<T> SplitCell<T> {
    pub(crate) const fn new(value: T) -> SplitCell<T> {
        SplitCell {
            value: UnsafeCell::new(value),
        }
    }

    /// The value, through an exclusive reference to the cell: no borrow
    /// can be live, so no flag is needed.
    #[inline]
    pub(crate) fn get_mut(&mut self) -> &mut T {
        self.value.get_mut()
    }

    /// Borrows the value shared.
    ///
    /// # Safety
    /// `flag` is this cell's flag: the one every borrow of this cell is
    /// given, for the cell's whole life.
    ///
    /// # Panics
    /// While the value is borrowed exclusively.
    #[inline]
    pub(crate) unsafe fn borrow<'a>(&'a self, flag: &'a BorrowFlag) -> SplitRef<'a, T> {
        let n = flag.0.get();
        if n >= BorrowFlag::EXCLUSIVE - 1 {
            borrow_failed(n);
        }
        flag.0.set(n + 1);
        SplitRef {
            // SAFETY: the flag (this cell's, by the caller's promise) said
            // no exclusive borrow is out, and now counts this shared one
            // until the guard drops: no `&mut` to the value exists while
            // this `&` does.
            value: unsafe { &*self.value.get() },
            flag,
        }
    }

    /// Borrows the value exclusively.
    ///
    /// # Safety
    /// As [`SplitCell::borrow`].
    ///
    /// # Panics
    /// While the value is borrowed at all.
    #[inline]
    pub(crate) unsafe fn borrow_mut<'a>(&'a self, flag: &'a BorrowFlag) -> SplitRefMut<'a, T> {
        // SAFETY: passed on from the caller.
        match unsafe { self.try_borrow_mut(flag) } {
            Some(guard) => guard,
            None => borrow_failed(flag.0.get()),
        }
    }

    /// Borrows the value exclusively, or `None` while it is borrowed.
    ///
    /// # Safety
    /// As [`SplitCell::borrow`].
    #[inline]
    pub(crate) unsafe fn try_borrow_mut<'a>(
        &'a self,
        flag: &'a BorrowFlag,
    ) -> Option<SplitRefMut<'a, T>> {
        if flag.0.get() != 0 {
            return None;
        }
        flag.0.set(BorrowFlag::EXCLUSIVE);
        Some(SplitRefMut {
            // SAFETY: the flag (this cell's) said no borrow of any kind is
            // out, and now marks this one exclusive until the guard drops.
            value: unsafe { &mut *self.value.get() },
            flag,
        })
    }
}

#[cold]
#[inline(never)]
fn borrow_failed(state: u8) -> ! {
    if state == BorrowFlag::EXCLUSIVE {
        panic!("already mutably borrowed: a SplitCell borrowed while borrowed exclusively")
    }
    panic!("already borrowed: a SplitCell borrowed exclusively while borrowed (or 254 times)")
}

/// A shared borrow of a [`SplitCell`].
pub(crate) struct SplitRef<'a, T> {
    value: &'a T,
    flag: &'a BorrowFlag,
}

impl<T> Deref for SplitRef<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.value
    }
}

impl<T> Drop for SplitRef<'_, T> {
    fn drop(&mut self) {
        self.flag.0.set(self.flag.0.get() - 1);
    }
}

/// An exclusive borrow of a [`SplitCell`].
pub(crate) struct SplitRefMut<'a, T> {
    value: &'a mut T,
    flag: &'a BorrowFlag,
}

impl<T> Deref for SplitRefMut<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.value
    }
}

impl<T> DerefMut for SplitRefMut<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.value
    }
}

impl<T> Drop for SplitRefMut<'_, T> {
    fn drop(&mut self) {
        self.flag.0.set(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cell and its flag, paired as an owner pairs them.
    struct Owner {
        flag: BorrowFlag,
        cell: SplitCell<Vec<u32>>,
    }

    impl Owner {
        fn new() -> Owner {
            Owner {
                flag: BorrowFlag::new(),
                cell: SplitCell::new(vec![1]),
            }
        }
        fn get(&self) -> SplitRef<'_, Vec<u32>> {
            // SAFETY: the cell's one flag.
            unsafe { self.cell.borrow(&self.flag) }
        }
        fn get_mut(&self) -> SplitRefMut<'_, Vec<u32>> {
            // SAFETY: the cell's one flag.
            unsafe { self.cell.borrow_mut(&self.flag) }
        }
        fn try_mut(&self) -> Option<SplitRefMut<'_, Vec<u32>>> {
            // SAFETY: the cell's one flag.
            unsafe { self.cell.try_borrow_mut(&self.flag) }
        }
    }

    #[test]
    fn shared_borrows_stack_and_an_exclusive_one_waits_for_them() {
        let o = Owner::new();
        {
            let a = o.get();
            let b = o.get();
            assert_eq!(a[0] + b[0], 2);
            assert!(o.try_mut().is_none());
        }
        o.get_mut().push(2);
        assert_eq!(*o.get(), [1, 2]);
        {
            let _m = o.get_mut();
            assert!(o.try_mut().is_none());
        }
        assert!(o.try_mut().is_some());
    }

    #[test]
    #[should_panic(expected = "already mutably borrowed")]
    fn a_shared_borrow_during_an_exclusive_one_panics() {
        let o = Owner::new();
        let _m = o.get_mut();
        let _ = o.get();
    }

    #[test]
    #[should_panic(expected = "already borrowed")]
    fn an_exclusive_borrow_during_a_shared_one_panics() {
        let o = Owner::new();
        let _r = o.get();
        let _ = o.get_mut();
    }

    #[test]
    fn a_guard_released_by_a_panic_frees_the_flag() {
        let o = Owner::new();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut m = o.get_mut();
            m.push(3);
            panic!("mid-edit");
        }));
        assert!(r.is_err());
        assert_eq!(*o.get(), [1, 3]);
        assert!(o.try_mut().is_some());
    }

    #[test]
    fn the_flag_is_one_byte() {
        assert_eq!(std::mem::size_of::<BorrowFlag>(), 1);
        assert_eq!(
            std::mem::size_of::<SplitCell<Vec<u32>>>(),
            std::mem::size_of::<Vec<u32>>()
        );
    }
}
