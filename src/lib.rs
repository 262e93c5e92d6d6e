//! memcrab: a memcached-compatible in-memory cache server.
//!
//! Data flows one way: [`server`] (sockets, connections) → [`protocol`] (parse a
//! command, apply it) → [`storage`] (slab allocator, index, eviction) → the
//! connection's response buffer.

pub mod config;
pub mod protocol;
pub mod server;
pub mod stats;
pub mod storage;
