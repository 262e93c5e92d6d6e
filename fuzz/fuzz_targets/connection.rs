//! Fuzz target: a whole connection over several reads. The input is split
//! at fuzzer-chosen points and fed chunk by chunk, keeping unconsumed bytes
//! between reads as `src/server/connection.rs` does; the protocol is
//! negotiated on the first byte (0x80: binary). See
//! `memcrab_fuzz::split_input` for the input layout.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some((choice, chunks)) = memcrab_fuzz::split_input(data) {
        memcrab_fuzz::run_connection(choice, &chunks);
    }
});
