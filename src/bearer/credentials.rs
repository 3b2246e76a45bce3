//! Finding the bearer token in a request (RFC 6750 §2): the `Authorization` header, and the
//! `access_token` query parameter where the app allows it.

use std::borrow::Cow;

use http::{Request, header::AUTHORIZATION};

use crate::{
    token::is_b64token,
    wire::{
        form::find_unique,
        header::{single, split_scheme},
    },
};

/// Where the token was found, if anywhere.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Extracted<'a> {
    /// A token from the header (its `b64token` syntax not yet checked: see
    /// [`super::Bearer`]'s `call`) or from the query (checked).
    Token(Cow<'a, str>),
    Missing,
    Malformed,
}

/// The bearer credentials of a request.
pub(crate) fn extract<B>(req: &Request<B>, allow_query: bool) -> Extracted<'_> {
    let query = if allow_query {
        match find_unique(req.uri().query().unwrap_or("").as_bytes(), "access_token") {
            Ok(t) => t,
            Err(_) => return Extracted::Malformed,
        }
    } else {
        None
    };
    let Ok(header) = single(req.headers(), AUTHORIZATION, "Authorization") else {
        return Extracted::Malformed;
    };
    let bearer = match header.map(|h| h.to_str()) {
        None => None,
        Some(Err(_)) => return Extracted::Malformed,
        Some(Ok(value)) => {
            let (scheme, rest) = split_scheme(value);
            // RFC 7235 §2.1: the scheme is case-insensitive; other schemes are not bearer
            // credentials at all.
            scheme.eq_ignore_ascii_case("bearer").then_some(rest)
        }
    };
    match (bearer, query) {
        // RFC 6750 §2: a client MUST NOT use more than one method.
        (Some(_), Some(_)) => Extracted::Malformed,
        (Some(token), None) => Extracted::Token(Cow::Borrowed(token)),
        (None, Some(token)) if is_b64token(&token) => Extracted::Token(Cow::Owned(token)),
        (None, Some(_)) => Extracted::Malformed,
        (None, None) => Extracted::Missing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(t: &str) -> Extracted<'_> {
        Extracted::Token(Cow::Borrowed(t))
    }

    #[test]
    fn extraction_cases() {
        // (headers, query, query allowed, expected)
        let cases: &[(&[&str], &str, bool, Extracted<'_>)] = &[
            (&[], "", false, Extracted::Missing),
            (&["Bearer abc"], "", false, token("abc")),
            (&["bearer   abc  "], "", false, token("abc")),
            (&["BEARER abc"], "", false, token("abc")),
            (&["Bearer"], "", false, token("")),
            (&["Basic abc"], "", false, Extracted::Missing),
            (&["Bearer a", "Bearer b"], "", false, Extracted::Malformed),
            (&[], "access_token=abc", false, Extracted::Missing),
            (&[], "access_token=abc", true, token("abc")),
            (&[], "x=1&x=2&access_token=abc", true, token("abc")),
            (
                &[],
                "access_token=a&access_token=b",
                true,
                Extracted::Malformed,
            ),
            (&[], "access_token=%zz", true, Extracted::Malformed),
            (&[], "access_token=a%20b", true, Extracted::Malformed),
            (
                &["Bearer abc"],
                "access_token=abc",
                true,
                Extracted::Malformed,
            ),
            (&["Bearer abc"], "other=1", true, token("abc")),
        ];
        for (headers, query, allow, expected) in cases {
            let mut req = Request::get(format!("/r?{query}"));
            for h in *headers {
                req = req.header(AUTHORIZATION, *h);
            }
            let req = req.body(()).unwrap();
            assert_eq!(
                &extract(&req, *allow),
                expected,
                "{headers:?} {query:?} {allow}"
            );
        }
    }

    #[test]
    fn a_header_that_is_not_text_is_malformed() {
        let mut req = Request::get("/").body(()).unwrap();
        req.headers_mut().insert(
            AUTHORIZATION,
            http::HeaderValue::from_bytes(b"Bearer \xff").unwrap(),
        );
        assert_eq!(extract(&req, false), Extracted::Malformed);
    }
}
