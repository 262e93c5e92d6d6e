//! Store tests (being written).
