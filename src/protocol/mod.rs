//! Wire protocols. Today the text protocol; meta commands and the binary
//! protocol will share the same connection and store.

pub mod text;
