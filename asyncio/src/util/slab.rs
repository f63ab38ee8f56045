//! A minimal slab: stable `usize` keys into a `Vec`, with a free list.
//!
//! Used for the per-task table of in-flight checkpoints and the timer
//! entries (the loop's task registry is leaner: `runtime/registry.rs`). Keys are reused after removal, so owners
//! that can outlive an entry pair the key with a generation of their own.

pub(crate) struct Slab<T> {
    entries: Vec<Entry<T>>,
    next_free: usize,
    len: usize,
}

enum Entry<T> {
    Occupied(T),
    Vacant(usize),
}

impl<T> Slab<T> {
    pub(crate) const fn new() -> Self {
        Slab {
            entries: Vec::new(),
            next_free: 0,
            len: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// In line: the common case reuses a free slot; growing is out of
    /// line.
    #[inline]
    pub(crate) fn insert(&mut self, value: T) -> usize {
        let key = self.next_free;
        let Some(slot) = self.entries.get_mut(key) else {
            return self.push_slot(value);
        };
        let Entry::Vacant(next) = *slot else {
            unreachable!("free list points at an occupied slot")
        };
        *slot = Entry::Occupied(value);
        self.next_free = next;
        self.len += 1;
        key
    }

    /// [`Slab::insert`] with no free slot: a new one at the end.
    #[inline(never)]
    fn push_slot(&mut self, value: T) -> usize {
        let key = self.entries.len();
        // Grow one slot at a time while small: most slabs here hold one
        // or two entries (a task's in-flight checkpoints), and `Vec`'s
        // first growth would reserve four.
        if key < 4 {
            self.entries.reserve_exact(1);
        }
        self.entries.push(Entry::Occupied(value));
        self.next_free = key + 1;
        self.len += 1;
        key
    }

    pub(crate) fn get(&self, key: usize) -> Option<&T> {
        match self.entries.get(key) {
            Some(Entry::Occupied(v)) => Some(v),
            _ => None,
        }
    }

    pub(crate) fn get_mut(&mut self, key: usize) -> Option<&mut T> {
        match self.entries.get_mut(key) {
            Some(Entry::Occupied(v)) => Some(v),
            _ => None,
        }
    }

    pub(crate) fn remove(&mut self, key: usize) -> Option<T> {
        let slot = self.entries.get_mut(key)?;
        if let Entry::Vacant(_) = slot {
            return None;
        }
        match std::mem::replace(slot, Entry::Vacant(self.next_free)) {
            Entry::Occupied(v) => {
                self.next_free = key;
                self.len -= 1;
                Some(v)
            }
            Entry::Vacant(_) => unreachable!(),
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (usize, &T)> {
        self.entries
            .iter()
            .enumerate()
            .filter_map(|(k, e)| match e {
                Entry::Occupied(v) => Some((k, v)),
                Entry::Vacant(_) => None,
            })
    }

    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (usize, &mut T)> {
        self.entries
            .iter_mut()
            .enumerate()
            .filter_map(|(k, e)| match e {
                Entry::Occupied(v) => Some((k, v)),
                Entry::Vacant(_) => None,
            })
    }

    /// Removes every entry, returning them (in key order).
    pub(crate) fn drain(&mut self) -> Vec<T> {
        self.next_free = 0;
        self.len = 0;
        std::mem::take(&mut self.entries)
            .into_iter()
            .filter_map(|e| match e {
                Entry::Occupied(v) => Some(v),
                Entry::Vacant(_) => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::Slab;

    #[test]
    fn keys_are_reused_after_removal() {
        let mut s = Slab::new();
        let a = s.insert("a");
        let b = s.insert("b");
        assert_eq!(s.remove(a), Some("a"));
        assert_eq!(s.remove(a), None);
        let c = s.insert("c");
        assert_eq!(c, a);
        assert_eq!(s.get(b), Some(&"b"));
        assert_eq!(s.len(), 2);
        assert_eq!(s.iter().map(|(_, v)| *v).collect::<Vec<_>>(), ["c", "b"]);
        assert_eq!(s.drain(), ["c", "b"]);
        assert_eq!(s.len(), 0);
    }
}
