//! Wire protocols: the text protocol (classic and meta commands).

pub mod base64;
pub mod text;
