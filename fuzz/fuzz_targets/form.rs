#![no_main]
//! Form parsing: any bytes, never a panic; accepted input decodes to valid UTF-8.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tower_oauth2::fuzz::form(data);
});
