//! The loop's registry of unfinished tasks: what `all_tasks()` lists, what
//! loop close drops, and how a wake that names a task by its [`TaskKey`]
//! finds it.
//!
//! One word per slot: a slot holds the task's handle and nothing else. The
//! generation that tells a task from an earlier one in the same slot is
//! the task's own (its block carries its key), so it need not be stored
//! twice, and free slots are listed on the side rather than threaded
//! through the slots (which would need a tag word in each). A million
//! queued tasks cost 8 MB here, not the 24 MB of a slab of
//! `(generation, handle)` entries.

use super::TaskKey;
use crate::task::TaskRef;

pub(crate) struct Registry {
    slots: Vec<Option<TaskRef>>,
    /// Empty slots, the most recently freed last (it is reused first: its
    /// line of memory is the likeliest to be in cache).
    free: Vec<u32>,
}

impl Registry {
    pub(crate) const fn new() -> Self {
        Registry {
            slots: Vec::new(),
            free: Vec::new(),
        }
    }

    /// The slot the next [`Registry::insert`] will use.
    pub(crate) fn next_slot(&self) -> u32 {
        match self.free.last() {
            Some(&slot) => slot,
            None => slot_number(self.slots.len()),
        }
    }

    /// Registers `task`, whose key names the slot [`Registry::next_slot`]
    /// returned.
    pub(crate) fn insert(&mut self, task: TaskRef) {
        let slot = task.0.key().slot;
        debug_assert_eq!(slot, self.next_slot());
        match self.free.pop() {
            Some(_) => self.slots[slot as usize] = Some(task),
            None => self.slots.push(Some(task)),
        }
    }

    /// The task `key` names, if it is still registered.
    pub(crate) fn get(&self, key: TaskKey) -> Option<&TaskRef> {
        self.slots
            .get(key.slot as usize)?
            .as_ref()
            .filter(|t| t.0.key() == key)
    }

    /// Unregisters the task `key` names, if it is still registered.
    pub(crate) fn remove(&mut self, key: TaskKey) -> Option<TaskRef> {
        let entry = self.slots.get_mut(key.slot as usize)?;
        if !entry.as_ref().is_some_and(|t| t.0.key() == key) {
            return None;
        }
        let task = entry.take();
        self.free.push(key.slot);
        task
    }

    /// The registered tasks, in slot order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &TaskRef> {
        self.slots.iter().flatten()
    }

    /// Unregisters every task.
    pub(crate) fn drain(&mut self) -> Vec<TaskRef> {
        self.free.clear();
        std::mem::take(&mut self.slots)
            .into_iter()
            .flatten()
            .collect()
    }
}

fn slot_number(index: usize) -> u32 {
    u32::try_from(index).expect("more than 2^32 tasks alive at once in one loop")
}

#[cfg(test)]
mod tests {
    use crate::runtime::context::current_loop;
    use crate::{create_task, sleep, Runner};
    use std::time::Duration;

    /// A finished task's slot is reused, and its key no longer finds
    /// anything: a late wake naming it cannot step the task now there.
    #[test]
    fn a_reused_slot_does_not_answer_to_the_old_key() {
        Runner::builder().virtual_time(true).build().run(async {
            let lp = current_loop().unwrap();
            let first = create_task(async {});
            let old = first.task_ref().0.key();
            assert!(lp.tasks.borrow().get(old).is_some());
            first.await.unwrap();
            assert!(lp.tasks.borrow().get(old).is_none());
            assert!(lp.tasks.borrow_mut().remove(old).is_none());

            let second = create_task(sleep(Duration::from_secs(1)));
            let new = second.task_ref().0.key();
            assert_eq!(new.slot, old.slot, "the freed slot is reused first");
            assert_ne!(new, old);
            assert!(lp.tasks.borrow().get(old).is_none());
            assert!(lp
                .tasks
                .borrow()
                .get(new)
                .unwrap()
                .ptr_eq(&second.task_ref()));
            second.await.unwrap().unwrap();
        });
    }
}
