//! Differential protocol tests: memcrab against memcached, byte for byte.
