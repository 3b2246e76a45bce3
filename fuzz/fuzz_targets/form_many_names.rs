#![no_main]
//! Form parsing of bodies with many distinct names, the shape that made parsing quadratic: each
//! pair of input bytes becomes one distinct parameter, so the fuzzer explores bodies of up to
//! thousands of names. The parse is accepted exactly when the body has at most 100 parameters
//! (the cap), and a slow input shows as a libFuzzer timeout.

use libfuzzer_sys::fuzz_target;

/// The most parameters a form body may carry (`wire::form::MAX_PARAMETERS`).
const CAP: usize = 100;

fuzz_target!(|data: &[u8]| {
    let mut body = Vec::with_capacity(data.len() * 6);
    let names = data.chunks(2).count();
    for (i, pair) in data.chunks(2).enumerate() {
        if i > 0 {
            body.push(b'&');
        }
        // Hex keeps every name valid; the index keeps them distinct.
        for b in pair {
            body.extend_from_slice(format!("{b:02x}").as_bytes());
        }
        body.extend_from_slice(format!("_{i}=v").as_bytes());
    }
    match tower_oauth2::fuzz::form_parameters(&body) {
        Some(n) => assert!(n == names && n <= CAP, "{n} parameters accepted of {names}"),
        None => assert!(names > CAP, "{names} distinct parameters refused"),
    }
});
