//! The storage engine: slab allocator, index, eviction, expiry, CAS.
//!
//! [`Store`] is the façade the protocol layer calls; [`classes`] computes
//! memcached's slab geometry, [`slabs`] hands out chunks, [`index`] finds
//! items by key, and [`chunk`] (the only `unsafe` module) lays items out in
//! slab memory.

pub mod chunk;
pub mod classes;
pub mod clock;
pub mod cnum;
pub mod index;
pub mod slabs;
pub mod stamps;
pub mod store;
#[cfg(test)]
mod tests;

pub use store::{
    After, DeleteError, Delta, DeltaOutcome, DeltaReq, ItemView, Lookup, Mode, Pending, Store,
    StoreConfig, StoreReq, StoreResult,
};
