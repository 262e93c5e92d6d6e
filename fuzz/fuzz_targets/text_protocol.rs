//! Fuzz target: memcrab's text-protocol parser and dispatcher
//! (`memcrab::protocol::text::process`) on arbitrary bytes, all arriving at
//! once. Byte 0 chooses the server configuration (see `src/lib.rs`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some((&choice, stream)) = data.split_first() {
        memcrab_fuzz::run(choice, &[stream]);
    }
});
