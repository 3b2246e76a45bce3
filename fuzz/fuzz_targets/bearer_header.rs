#![no_main]
//! Bearer header (and query) parsing: the first byte picks one or two Authorization headers and
//! whether query tokens are allowed; the rest is the header value(s), split at NUL, and a query.

use http::{HeaderValue, Request, header::AUTHORIZATION};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let mut parts = rest.split(|&b| b == 0);
    let mut req = Request::builder();
    if let Some(q) = parts.next().and_then(|q| std::str::from_utf8(q).ok()) {
        let q: String = q.chars().filter(|c| c.is_ascii_graphic()).collect();
        req = req.uri(format!("/r?{q}"));
    }
    let Ok(mut req) = req.body(()) else { return };
    for part in parts.take(if mode & 1 == 0 { 1 } else { 2 }) {
        if let Ok(v) = HeaderValue::from_bytes(part) {
            req.headers_mut().append(AUTHORIZATION, v);
        }
    }
    let _ = tower_oauth2::fuzz::bearer(&req, mode & 2 != 0);
});
