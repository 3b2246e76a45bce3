#![no_main]
//! Client-authentication header parsing: the input is split into an Authorization header value
//! (before the first NUL) and a form body (after it).

use http::{HeaderMap, HeaderValue, header::AUTHORIZATION};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (header, body) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_bytes(header) {
        headers.insert(AUTHORIZATION, v);
    }
    let _ = tower_oauth2::fuzz::client_credentials(&headers, body);
});
