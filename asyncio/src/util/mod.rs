pub(crate) mod slab;
pub(crate) mod small;
