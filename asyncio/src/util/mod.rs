pub(crate) mod slab;
