//! Containers that hold their first element inline, for the common case of
//! exactly one: a task's one suspended checkpoint, a task's one awaiter.
//! They save an allocation per task.

use std::cell::Cell;

use super::slab::Slab;

/// A clone of what `cell` holds, for a `Cell` of a non-`Copy` value (an
/// `Option<Rc<_>>`, an `Option<Arc<str>>`): taken out, cloned, put back.
pub(crate) fn cloned<T: Default + Clone>(cell: &Cell<T>) -> T {
    let value = cell.take();
    cell.set(value.clone());
    value
}

/// A [`Slab`] whose first entry lives inline: most tables never hold two
/// entries, and every task header holds one.
///
/// A second entry moves the first into a boxed slab, under the same key
/// 0: keys stay stable. An enum rather than an inline slot beside an
/// optional box: a word less (the inline slot's `Option` needs a tag of
/// its own when the entry has no spare bit pattern, as a task's in-flight
/// entry has none).
pub(crate) enum InlineSlab<T> {
    Empty,
    /// One entry, key 0.
    One(T),
    Many(Box<Slab<T>>),
}

impl<T> InlineSlab<T> {
    pub(crate) const fn new() -> Self {
        InlineSlab::Empty
    }

    #[inline]
    pub(crate) fn insert(&mut self, value: T) -> usize {
        if let InlineSlab::Empty = self {
            // Not `*self = ..`: that drops the old value, and the compiler
            // calls the table's drop glue out of line even though it is
            // empty. Forgetting an `Empty` forgets nothing.
            std::mem::forget(std::mem::replace(self, InlineSlab::One(value)));
            0
        } else {
            self.insert_more(value)
        }
    }

    /// [`InlineSlab::insert`] into a table that is not empty: out of line,
    /// so that the common case stays small where it is inlined.
    #[inline(never)]
    fn insert_more(&mut self, value: T) -> usize {
        match std::mem::replace(self, InlineSlab::Empty) {
            InlineSlab::Empty => unreachable!("insert_more on an empty table"),
            InlineSlab::One(first) => {
                let mut slab = Box::new(Slab::new());
                let zero = slab.insert(first);
                debug_assert_eq!(zero, 0);
                let key = slab.insert(value);
                *self = InlineSlab::Many(slab);
                key
            }
            InlineSlab::Many(mut slab) => {
                let key = slab.insert(value);
                *self = InlineSlab::Many(slab);
                key
            }
        }
    }

    #[inline]
    pub(crate) fn get(&self, key: usize) -> Option<&T> {
        match self {
            InlineSlab::Empty => None,
            InlineSlab::One(v) => (key == 0).then_some(v),
            InlineSlab::Many(slab) => slab.get(key),
        }
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, key: usize) -> Option<&mut T> {
        match self {
            InlineSlab::Empty => None,
            InlineSlab::One(v) => (key == 0).then_some(v),
            InlineSlab::Many(slab) => slab.get_mut(key),
        }
    }

    #[inline]
    pub(crate) fn remove(&mut self, key: usize) -> Option<T> {
        match self {
            InlineSlab::One(_) if key == 0 => match std::mem::replace(self, InlineSlab::Empty) {
                InlineSlab::One(v) => Some(v),
                _ => unreachable!(),
            },
            InlineSlab::Many(slab) => slab.remove(key),
            _ => None,
        }
    }

    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (usize, &mut T)> {
        let (one, many) = match self {
            InlineSlab::Empty => (None, None),
            InlineSlab::One(v) => (Some((0, v)), None),
            InlineSlab::Many(slab) => (None, Some(slab.iter_mut())),
        };
        one.into_iter().chain(many.into_iter().flatten())
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        match self {
            InlineSlab::Empty => true,
            InlineSlab::One(_) => false,
            InlineSlab::Many(slab) => slab.is_empty(),
        }
    }

    /// The entry at key 0, if it is the only one.
    pub(crate) fn sole(&self) -> Option<&T> {
        match self {
            InlineSlab::Empty => None,
            InlineSlab::One(v) => Some(v),
            InlineSlab::Many(slab) if slab.len() == 1 => slab.get(0),
            InlineSlab::Many(_) => None,
        }
    }

    /// Removes every entry, returning them in key order.
    pub(crate) fn drain(&mut self) -> Vec<T> {
        match std::mem::replace(self, InlineSlab::Empty) {
            InlineSlab::Empty => Vec::new(),
            InlineSlab::One(v) => vec![v],
            InlineSlab::Many(mut slab) => slab.drain(),
        }
    }
}

/// A list that stores zero or one element without allocating.
///
/// Two or more elements live in a boxed `Vec`: that case is rare, and the
/// box keeps the list one word larger than its element (a task's awaiter
/// list is 24 bytes, not 32, in every task).
#[derive(Default)]
pub(crate) enum OneOrMany<T> {
    #[default]
    None,
    One(T),
    // The box is the point: see the type's doc.
    #[allow(clippy::box_collection)]
    Many(Box<Vec<T>>),
}

impl<T> OneOrMany<T> {
    /// In line: the common case fills an empty list.
    #[inline]
    pub(crate) fn push(&mut self, value: T) {
        if let OneOrMany::None = self {
            // `forget`: the empty list owns nothing, and a plain assignment
            // would call the list's drop glue on it, out of line.
            std::mem::forget(std::mem::replace(self, OneOrMany::One(value)));
        } else {
            self.push_more(value);
        }
    }

    #[inline(never)]
    fn push_more(&mut self, value: T) {
        match std::mem::replace(self, OneOrMany::None) {
            OneOrMany::None => *self = OneOrMany::One(value),
            OneOrMany::One(first) => *self = OneOrMany::Many(Box::new(vec![first, value])),
            OneOrMany::Many(mut v) => {
                v.push(value);
                *self = OneOrMany::Many(v);
            }
        }
    }

    pub(crate) fn as_slice(&self) -> &[T] {
        match self {
            OneOrMany::None => &[],
            OneOrMany::One(v) => std::slice::from_ref(v),
            OneOrMany::Many(v) => v,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.as_slice().len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }

    pub(crate) fn last(&self) -> Option<&T> {
        self.as_slice().last()
    }

    pub(crate) fn iter(&self) -> std::slice::Iter<'_, T> {
        match self {
            OneOrMany::None => [].iter(),
            OneOrMany::One(v) => std::slice::from_ref(v).iter(),
            OneOrMany::Many(v) => v.iter(),
        }
    }

    pub(crate) fn iter_mut(&mut self) -> std::slice::IterMut<'_, T> {
        match self {
            OneOrMany::None => [].iter_mut(),
            OneOrMany::One(v) => std::slice::from_mut(v).iter_mut(),
            OneOrMany::Many(v) => v.iter_mut(),
        }
    }

    /// Keeps the elements for which `keep` holds, in order.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        match self {
            OneOrMany::None => {}
            OneOrMany::One(v) => {
                if !keep(v) {
                    *self = OneOrMany::None;
                }
            }
            OneOrMany::Many(v) => v.retain(keep),
        }
    }

    /// Puts the list back into `cell`, which `Cell::take` emptied, and
    /// returns whatever was put there meanwhile, if anything. `Cell::set`
    /// would call the list's drop glue on the empty list it replaces, out
    /// of line, on every edit.
    #[inline]
    pub(crate) fn put_back(self, cell: &Cell<OneOrMany<T>>) -> Option<OneOrMany<T>> {
        let left = cell.replace(self);
        if let OneOrMany::None = left {
            // As in `push`: the empty list owns nothing.
            std::mem::forget(left);
            None
        } else {
            Some(left)
        }
    }

    /// Runs `f` on every element, emptying the list without allocating
    /// for the one-element case.
    #[inline]
    pub(crate) fn drain_each(&mut self, mut f: impl FnMut(T)) {
        match std::mem::replace(self, OneOrMany::None) {
            OneOrMany::None => {}
            OneOrMany::One(v) => f(v),
            OneOrMany::Many(v) => v.into_iter().for_each(f),
        }
    }
}

impl<T> From<Vec<T>> for OneOrMany<T> {
    fn from(mut v: Vec<T>) -> Self {
        match v.len() {
            0 => OneOrMany::None,
            1 => OneOrMany::One(v.pop().expect("one element")),
            _ => OneOrMany::Many(Box::new(v)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_slab_keys_survive_mixed_use() {
        let mut s = InlineSlab::new();
        let a = s.insert('a');
        let b = s.insert('b');
        let c = s.insert('c');
        assert_eq!((a, b, c), (0, 1, 2));
        assert_eq!(s.remove(a), Some('a'));
        assert_eq!(s.get(b), Some(&'b'));
        let d = s.insert('d');
        assert_eq!(d, 0);
        *s.get_mut(c).unwrap() = 'C';
        let all: Vec<_> = s.iter_mut().map(|(k, v)| (k, *v)).collect();
        assert_eq!(all, [(0, 'd'), (1, 'b'), (2, 'C')]);
        assert_eq!(s.drain(), ['d', 'b', 'C']);
        assert!(s.get(0).is_none());
    }

    /// A table of three-word entries with no spare bit pattern is four
    /// words: one for the tag, none for a second `Option` tag or an
    /// overflow pointer beside the inline entry. An entry whose own tag has
    /// spare values (a task's in-flight entry: its awaited task or rare
    /// parts are one enum) lends them to the table: three words.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn an_inline_slab_of_three_words_is_four_words_or_three() {
        type Entry = (Option<Box<u8>>, Option<Box<u8>>, Option<Box<u8>>);
        assert_eq!(std::mem::size_of::<InlineSlab<Entry>>(), 32);
        #[allow(dead_code)]
        enum Link {
            None,
            A(Box<u8>),
            B(Box<u16>),
        }
        type Niched = (Option<Box<u8>>, Link);
        assert_eq!(std::mem::size_of::<InlineSlab<Niched>>(), 24);
    }

    #[test]
    fn an_inline_slab_moves_its_first_entry_under_key_0() {
        let mut s = InlineSlab::new();
        assert!(s.is_empty() && s.sole().is_none());
        assert_eq!(s.insert(1), 0);
        assert_eq!(s.sole(), Some(&1));
        assert_eq!(s.insert(2), 1);
        assert_eq!(s.sole(), None, "two entries");
        assert_eq!(s.remove(1), Some(2));
        assert_eq!(s.sole(), Some(&1), "key 0 alone again, in the box");
        assert_eq!(s.remove(0), Some(1));
        assert!(s.is_empty() && s.sole().is_none());
        assert_eq!(s.insert(3), 0, "freed keys are reused");
        assert_eq!(s.insert(4), 1);
        assert_eq!(s.remove(0), Some(3));
        assert_eq!(s.sole(), None, "the one entry left is not at key 0");
        assert_eq!(s.remove(0), None);
        assert_eq!(s.drain(), [4]);
        assert!(s.is_empty());
    }

    /// Random inserts and removes against a map of key to value: every
    /// key stays valid until its removal, `sole` is the key-0 entry when it
    /// is the only one, and iteration and drain go in key order.
    #[test]
    fn an_inline_slab_matches_a_map_under_random_use() {
        use std::collections::BTreeMap;
        let mut next = crate::util::test_rng(0x9e37_79b9_7f4a_7c15_u64);
        for _round in 0..50 {
            let mut s = InlineSlab::new();
            let mut model: BTreeMap<usize, u32> = BTreeMap::new();
            for step in 0..200u32 {
                if next(3) == 0 && !model.is_empty() {
                    let keys: Vec<usize> = model.keys().copied().collect();
                    let k = keys[next(keys.len() as u64) as usize];
                    assert_eq!(s.remove(k), model.remove(&k));
                    assert_eq!(s.remove(k), None, "removed once");
                } else {
                    let k = s.insert(step);
                    assert!(model.insert(k, step).is_none(), "key {k} handed out twice");
                }
                assert_eq!(s.is_empty(), model.is_empty());
                let sole = (model.len() == 1).then(|| model.get(&0)).flatten();
                assert_eq!(s.sole(), sole);
                for (k, v) in &model {
                    assert_eq!(s.get(*k), Some(v));
                }
                let seen: Vec<(usize, u32)> = s.iter_mut().map(|(k, v)| (k, *v)).collect();
                let want: Vec<(usize, u32)> = model.iter().map(|(k, v)| (*k, *v)).collect();
                assert_eq!(seen, want);
            }
            let want: Vec<u32> = model.values().copied().collect();
            assert_eq!(s.drain(), want);
            assert!(s.is_empty());
        }
    }

    #[test]
    fn one_or_many_keeps_order() {
        let mut l = OneOrMany::default();
        assert_eq!(l.iter().count(), 0);
        l.push(1);
        assert_eq!(l.iter().copied().collect::<Vec<_>>(), [1]);
        l.push(2);
        l.push(3);
        assert_eq!(l.iter().copied().collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!((l.len(), l.last()), (3, Some(&3)));
        l.retain(|v| *v != 2);
        for v in l.iter_mut() {
            *v *= 10;
        }
        let mut seen = Vec::new();
        l.drain_each(|v| seen.push(v));
        assert_eq!(seen, [10, 30]);
        l.push(4);
        l.retain(|v| *v != 4);
        assert_eq!(l.iter().count(), 0);
        assert!(l.is_empty());
        let from: OneOrMany<u8> = vec![7].into();
        assert!(matches!(from, OneOrMany::One(7)));
    }
}
