//! Yes/no states packed one bit each into a byte: a task header keeps two
//! such bytes (its own flags, and its cancel state's), where `Cell<bool>`s
//! would take a byte each.

use std::cell::Cell;
use std::marker::PhantomData;

/// One bit of a [`Bits`]: an enum whose variants are distinct powers of
/// two below 256.
pub(crate) trait Bit: Copy {
    /// The bit's mask.
    fn mask(self) -> u8;
}

/// A byte of [`Bit`]s of one kind, each read and written like a
/// `Cell<bool>`.
pub(crate) struct Bits<B>(Cell<u8>, PhantomData<B>);

impl<B: Bit> Bits<B> {
    /// Bits with `set` on and the rest off.
    pub(crate) const fn new(set: u8) -> Bits<B> {
        Bits(Cell::new(set), PhantomData)
    }

    #[inline]
    pub(crate) fn get(&self, bit: B) -> bool {
        self.0.get() & bit.mask() != 0
    }

    #[inline]
    pub(crate) fn set(&self, bit: B, on: bool) {
        let rest = self.0.get() & !bit.mask();
        self.0.set(if on { rest | bit.mask() } else { rest });
    }

    /// Sets `bit` and returns what it was.
    #[inline]
    pub(crate) fn replace(&self, bit: B, on: bool) -> bool {
        let was = self.get(bit);
        self.set(bit, on);
        was
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy)]
    enum Two {
        A = 1,
        B = 2,
    }

    impl Bit for Two {
        fn mask(self) -> u8 {
            self as u8
        }
    }

    #[test]
    fn bits_are_independent() {
        let bits = Bits::<Two>::new(Two::B as u8);
        assert!(!bits.get(Two::A) && bits.get(Two::B));
        assert!(!bits.replace(Two::A, true));
        assert!(bits.get(Two::A) && bits.get(Two::B));
        bits.set(Two::B, false);
        assert!(bits.get(Two::A) && !bits.get(Two::B));
        assert_eq!(std::mem::size_of::<Bits<Two>>(), 1);
    }
}
