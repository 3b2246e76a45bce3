//! Reading an `application/x-www-form-urlencoded` body: capped, strict, parsed once.

use bytes::Buf;
use http::{HeaderMap, header::CONTENT_LENGTH, header::CONTENT_TYPE};
use http_body::Body;
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::error::{BoxError, ErrorKind, OAuthError};

/// Decoded form parameters. Each name appears once (RFC 6749 §3.2).
#[derive(Default)]
pub(crate) struct Form {
    pairs: Vec<(String, String)>,
}

impl std::fmt::Debug for Form {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values include passwords, secrets and tokens: names only.
        f.debug_list()
            .entries(self.pairs.iter().map(|(k, _)| k))
            .finish()
    }
}

impl Form {
    /// Parse a body. Invalid percent-encoding, non-UTF-8 text and repeated names are
    /// `invalid_request`.
    pub(crate) fn parse(body: &[u8]) -> Result<Self, OAuthError> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for segment in body.split(|&b| b == b'&').filter(|s| !s.is_empty()) {
            let (name, value) = match segment.iter().position(|&b| b == b'=') {
                Some(i) => (&segment[..i], &segment[i + 1..]),
                None => (segment, &[][..]),
            };
            let name = decode(name)?;
            let value = decode(value)?;
            if pairs.iter().any(|(n, _)| *n == name) {
                return Err(OAuthError::invalid_request(repeated(&name)));
            }
            pairs.push((name, value));
        }
        Ok(Self { pairs })
    }

    /// A parameter's value. Parameters sent without a value are treated as omitted
    /// (RFC 6749 §3.1).
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, v)| n == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }
}

fn repeated(name: &str) -> String {
    let printable = name.len() <= 40
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if printable {
        format!("parameter {name} is repeated")
    } else {
        "a parameter is repeated".to_owned()
    }
}

/// Strict `application/x-www-form-urlencoded` decoding: `+` is a space, `%` must be followed
/// by two hex digits, and the result must be UTF-8.
pub(crate) fn decode(input: &[u8]) -> Result<String, OAuthError> {
    let not_utf8 = || OAuthError::invalid_request("parameters must be UTF-8");
    // Most values have nothing to decode: check the UTF-8 and copy them whole. (A fold rather
    // than `any`, so the compiler can vectorise it.)
    let escaped = input
        .iter()
        .fold(false, |found, &b| found | (b == b'%') | (b == b'+'));
    if !escaped {
        return std::str::from_utf8(input)
            .map(str::to_owned)
            .map_err(|_| not_utf8());
    }
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (
                    input.get(i + 1).and_then(|&b| hex(b)),
                    input.get(i + 2).and_then(|&b| hex(b)),
                ) {
                    (Some(h), Some(l)) => out.push((h * 16 + l) as u8),
                    _ => return Err(OAuthError::invalid_request("invalid percent-encoding")),
                }
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| not_utf8())
}

/// `application/x-www-form-urlencoded` encoding, as clients write it (the inverse of
/// [`decode`]).
#[cfg(any(test, feature = "introspection"))]
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Check the content type, then read the body up to `limit` bytes and parse it.
pub(crate) async fn read_form<B>(
    headers: &HeaderMap,
    body: B,
    limit: usize,
) -> Result<Form, OAuthError>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    check_content_type(headers)?;
    let too_large = || OAuthError::new(ErrorKind::BodyTooLarge, "request body too large");
    // Refuse a declared oversize body without reading it.
    if let Some(len) = headers.get(CONTENT_LENGTH) {
        let len: u64 = len
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| OAuthError::invalid_request("invalid Content-Length"))?;
        if len > limit as u64 {
            return Err(too_large());
        }
    }
    // A body that lies about its length, or has none (chunked), still stops at the cap.
    let collected = Limited::new(body, limit).collect().await.map_err(|e| {
        if e.downcast_ref::<LengthLimitError>().is_some() {
            too_large()
        } else {
            OAuthError::invalid_request("could not read the request body")
        }
    })?;
    let mut buf = collected.aggregate();
    let bytes = buf.copy_to_bytes(buf.remaining());
    Form::parse(&bytes)
}

/// RFC 6749 §3.2: `application/x-www-form-urlencoded`, with at most a UTF-8 charset parameter.
fn check_content_type(headers: &HeaderMap) -> Result<(), OAuthError> {
    let wrong =
        || OAuthError::invalid_request("Content-Type must be application/x-www-form-urlencoded");
    let mut values = headers.get_all(CONTENT_TYPE).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(wrong());
    };
    let value = value.to_str().map_err(|_| wrong())?;
    let mut parts = value.split(';');
    let essence = parts.next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(wrong());
    }
    for param in parts {
        let (name, val) = param.split_once('=').unwrap_or((param, ""));
        if name.trim().eq_ignore_ascii_case("charset") {
            let val = val.trim().trim_matches('"');
            if !val.eq_ignore_ascii_case("utf-8") && !val.eq_ignore_ascii_case("utf8") {
                return Err(OAuthError::invalid_request(
                    "only the UTF-8 charset is supported",
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_plus_and_percent() {
        let f = Form::parse(b"a=x+y%2Bz&b=%C3%A9&c=").unwrap();
        assert_eq!(f.get("a"), Some("x y+z"));
        assert_eq!(f.get("b"), Some("é"));
        assert_eq!(f.get("c"), None);
    }

    #[test]
    fn rejects_bad_input() {
        for bad in [&b"a=%zz"[..], b"a=%4", b"a=%ff", b"a=1&a=2", b"a=&a=1"] {
            let err = Form::parse(bad).unwrap_err();
            assert_eq!(err.code(), "invalid_request", "{bad:?}");
        }
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn decoding_inverts_encoding(pairs in proptest::collection::btree_map("[a-z_]{1,12}", "\\PC{0,40}", 0..8)) {
            let body = pairs
                .iter()
                .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
                .collect::<Vec<_>>()
                .join("&");
            let form = Form::parse(body.as_bytes()).unwrap();
            for (k, v) in &pairs {
                // Empty values read as absent (RFC 6749 §3.1).
                prop_assert_eq!(form.get(k), (!v.is_empty()).then_some(v.as_str()));
            }
        }

        #[test]
        fn parsing_never_panics_and_rejects_or_accepts(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Form::parse(&bytes);
        }

        #[test]
        fn decode_matches_the_plain_byte_loop(
            bytes in proptest::collection::vec(
                prop_oneof![
                    Just(b'%'), Just(b'+'), Just(b'a'), Just(b'F'), Just(b'0'), Just(b'9'),
                    Just(0xc3), Just(0xa9), Just(0xff), any::<u8>()
                ],
                0..24,
            )
        ) {
            // The byte loop every input went through before plain values were copied whole.
            let reference = |input: &[u8]| -> Option<String> {
                let mut out = Vec::new();
                let mut i = 0;
                while i < input.len() {
                    match input[i] {
                        b'+' => out.push(b' '),
                        b'%' => {
                            let hex = |b: u8| (b as char).to_digit(16);
                            let h = input.get(i + 1).and_then(|&b| hex(b))?;
                            let l = input.get(i + 2).and_then(|&b| hex(b))?;
                            out.push((h * 16 + l) as u8);
                            i += 2;
                        }
                        b => out.push(b),
                    }
                    i += 1;
                }
                String::from_utf8(out).ok()
            };
            prop_assert_eq!(decode(&bytes).ok(), reference(&bytes));
        }

        #[test]
        fn a_repeated_name_is_always_refused(name in "[a-z]{1,8}", a in "[a-z0-9]{0,8}", b in "[a-z0-9]{0,8}") {
            let body = format!("{name}={a}&{name}={b}");
            prop_assert!(Form::parse(body.as_bytes()).is_err());
        }
    }
}
