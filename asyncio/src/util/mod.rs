pub(crate) mod arc_or_box;
pub(crate) mod bits;
pub(crate) mod slab;
pub(crate) mod small;
pub(crate) mod split_cell;

/// A small deterministic generator for randomized unit tests (xorshift64):
/// each call returns a value below `n`. The same seed gives the same run.
#[cfg(test)]
pub(crate) fn test_rng(seed: u64) -> impl FnMut(u64) -> u64 {
    let mut state = seed;
    move |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    }
}
