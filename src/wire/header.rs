//! The pieces of HTTP header grammar the endpoints and the bearer layer share: one header of a
//! name, an authentication scheme and its credentials (RFC 7235 §2.1), RFC 7230 quoted strings,
//! and the form content type (RFC 6749 §3.2).

use http::{HeaderMap, HeaderName, HeaderValue, header::CONTENT_TYPE};

use super::WireError;

/// The one header called `name`: `None` when absent, an error when it appears more than once
/// (credentials sent twice are ambiguous, RFC 6749 §2.3 and RFC 6750 §2).
pub(crate) fn single<'a>(
    headers: &'a HeaderMap,
    name: HeaderName,
    label: &'static str,
) -> Result<Option<&'a HeaderValue>, WireError> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (_, Some(_)) => Err(WireError::RepeatedHeader(label)),
        (value, None) => Ok(value),
    }
}

/// Split `Scheme credentials` (RFC 7235 §2.1) into the scheme, whose case the caller compares
/// without regard to case, and the credentials, trimmed.
pub(crate) fn split_scheme(value: &str) -> (&str, &str) {
    let value = value.trim();
    match value.split_once(' ') {
        Some((scheme, rest)) => (scheme, rest.trim_start()),
        None => (value, ""),
    }
}

/// Escape a value for an RFC 7230 quoted-string.
pub(crate) fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Whether a `Content-Type` value's media type is `application/x-www-form-urlencoded`,
/// whatever its parameters.
pub(crate) fn is_form_media_type(value: &str) -> bool {
    value
        .split(';')
        .next()
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case(FORM))
}

const FORM: &str = "application/x-www-form-urlencoded";

/// RFC 6749 §3.2: exactly one `Content-Type`, `application/x-www-form-urlencoded`, with at most
/// a UTF-8 charset parameter.
pub(crate) fn check_form_content_type(headers: &HeaderMap) -> Result<(), WireError> {
    let value = single(headers, CONTENT_TYPE, "Content-Type")
        .map_err(|_| WireError::ContentType)?
        .ok_or(WireError::ContentType)?
        .to_str()
        .map_err(|_| WireError::ContentType)?;
    if !is_form_media_type(value) {
        return Err(WireError::ContentType);
    }
    for param in value.split(';').skip(1) {
        let (name, val) = param.split_once('=').unwrap_or((param, ""));
        if name.trim().eq_ignore_ascii_case("charset") {
            let val = val.trim().trim_matches('"');
            if !val.eq_ignore_ascii_case("utf-8") && !val.eq_ignore_ascii_case("utf8") {
                return Err(WireError::Charset);
            }
        }
    }
    Ok(())
}

#[cfg(any(feature = "jwt", feature = "introspection", feature = "tls"))]
/// The `max-age` of a `Cache-Control` value (RFC 9111 §5.2.2.1); 0 for `no-store` or
/// `no-cache`; `None` when it says neither.
pub(crate) fn cache_max_age(value: &str) -> Option<u64> {
    let mut found = None;
    for directive in value.split(',').map(str::trim) {
        let (name, arg) = directive.split_once('=').unwrap_or((directive, ""));
        match name.to_ascii_lowercase().as_str() {
            "no-store" | "no-cache" => return Some(0),
            "max-age" => found = arg.trim_matches('"').parse().ok(),
            _ => {}
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use http::header::AUTHORIZATION;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn split_scheme_cases() {
        let cases = [
            ("Bearer abc", ("Bearer", "abc")),
            ("  bearer    abc  ", ("bearer", "abc")),
            ("Basic", ("Basic", "")),
            ("Basic ", ("Basic", "")),
            ("", ("", "")),
            ("Bearer a b", ("Bearer", "a b")),
        ];
        for (input, expected) in cases {
            assert_eq!(split_scheme(input), expected, "{input:?}");
        }
    }

    #[test]
    fn single_header_cases() {
        assert_eq!(
            single(&headers(&[]), AUTHORIZATION, "Authorization"),
            Ok(None)
        );
        assert_eq!(
            single(
                &headers(&[("authorization", "x")]),
                AUTHORIZATION,
                "Authorization"
            )
            .map(|v| v.map(HeaderValue::as_bytes)),
            Ok(Some(&b"x"[..]))
        );
        assert_eq!(
            single(
                &headers(&[("authorization", "x"), ("authorization", "y")]),
                AUTHORIZATION,
                "Authorization"
            ),
            Err(WireError::RepeatedHeader("Authorization"))
        );
    }

    #[test]
    fn form_content_type_cases() {
        let cases: &[(&[&'static str], Result<(), WireError>)] = &[
            (&["application/x-www-form-urlencoded"], Ok(())),
            (
                &["Application/X-WWW-Form-Urlencoded ; charset=UTF-8"],
                Ok(()),
            ),
            (
                &["application/x-www-form-urlencoded; charset=\"utf8\""],
                Ok(()),
            ),
            (&["application/x-www-form-urlencoded; foo=bar"], Ok(())),
            (
                &["application/x-www-form-urlencoded; charset=latin1"],
                Err(WireError::Charset),
            ),
            (&["application/json"], Err(WireError::ContentType)),
            (&[], Err(WireError::ContentType)),
            (
                &[
                    "application/x-www-form-urlencoded",
                    "application/x-www-form-urlencoded",
                ],
                Err(WireError::ContentType),
            ),
        ];
        for (values, expected) in cases {
            let map = headers(
                &values
                    .iter()
                    .map(|v| ("content-type", *v))
                    .collect::<Vec<_>>(),
            );
            assert_eq!(&check_form_content_type(&map), expected, "{values:?}");
        }
    }

    #[test]
    fn quote_escapes_backslash_and_quote() {
        assert_eq!(quote(r#"a"b\c"#), r#"a\"b\\c"#);
    }
}
