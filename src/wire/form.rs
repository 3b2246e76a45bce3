//! `application/x-www-form-urlencoded` (the WHATWG URL standard's serialisation, which RFC 6749
//! Appendix B names): strict decoding, client-style encoding, and a parsed [`Form`] in which each
//! name appears once (RFC 6749 §3.1, §3.2).

use super::WireError;

/// The most parameters one form may carry. A token, revocation, introspection or authorization
/// request has a dozen at most; the cap keeps parsing and the repeat check bounded whatever the
/// body holds, before the client is even authenticated.
pub(crate) const MAX_PARAMETERS: usize = 100;

/// The parameters a request may repeat: `resource` (RFC 8707 §2, one per target).
pub(crate) const REPEATABLE: [&str; 1] = ["resource"];

/// Decoded form parameters. Each name appears once, except the [`REPEATABLE`] ones.
#[derive(Default, PartialEq, Eq)]
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

/// The `&`-separated, non-empty `name[=value]` segments of a form, undecoded.
fn segments(input: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    input
        .split(|&b| b == b'&')
        .filter(|s| !s.is_empty())
        .map(|segment| match segment.iter().position(|&b| b == b'=') {
            Some(i) => (&segment[..i], &segment[i + 1..]),
            None => (segment, &[][..]),
        })
}

impl Form {
    /// Parse a body. Invalid percent-encoding, non-UTF-8 text, repeated names (other than
    /// the [`REPEATABLE`] ones) and more than
    /// [`MAX_PARAMETERS`] parameters are errors. Linear in the body: the repeat check runs over
    /// at most [`MAX_PARAMETERS`] names.
    pub(crate) fn parse(body: &[u8]) -> Result<Self, WireError> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (name, value) in segments(body) {
            if pairs.len() == MAX_PARAMETERS {
                return Err(WireError::TooManyParameters);
            }
            pairs.push((decode(name)?, decode(value)?));
        }
        if let Some(name) = first_repeated(&pairs) {
            return Err(WireError::Repeated(printable(name)));
        }
        Ok(Self { pairs })
    }

    /// Parse a body as [`parse`](Self::parse) does, except that repeated names are not an
    /// error: they are returned beside the form (whose [`get`](Self::get) sees the first
    /// occurrence), for an endpoint whose answer depends on which parameter repeats.
    pub(crate) fn parse_with_repeats(body: &[u8]) -> Result<(Self, Vec<String>), WireError> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (name, value) in segments(body) {
            if pairs.len() == MAX_PARAMETERS {
                return Err(WireError::TooManyParameters);
            }
            pairs.push((decode(name)?, decode(value)?));
        }
        let mut names: Vec<&str> = pairs.iter().map(|(n, _)| n.as_str()).collect();
        names.sort_unstable();
        let mut repeated: Vec<String> = names
            .windows(2)
            .filter(|w| w[0] == w[1] && !REPEATABLE.contains(&w[0]))
            .map(|w| w[0].to_owned())
            .collect();
        repeated.dedup();
        Ok((Self { pairs }, repeated))
    }

    /// A parameter's value. Parameters sent without a value are treated as omitted
    /// (RFC 6749 §3.1).
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, v)| n == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Every non-empty value of a (repeatable) parameter, in the order sent.
    pub(crate) fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(n, v)| n == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// The names and values, in the order they were sent.
    #[cfg(any(test, fuzzing))]
    pub(crate) fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

/// A name that appears more than once, if any. Small forms (every real request) are checked
/// pair by pair, larger ones through a sorted list: at most `MAX_PARAMETERS` names either way.
fn first_repeated(pairs: &[(String, String)]) -> Option<&str> {
    const SMALL: usize = 16;
    if pairs.len() <= SMALL {
        return pairs
            .iter()
            .enumerate()
            .find(|(i, (name, _))| {
                !REPEATABLE.contains(&name.as_str()) && pairs[..*i].iter().any(|(n, _)| n == name)
            })
            .map(|(_, (name, _))| name.as_str());
    }
    let mut names: Vec<&str> = pairs.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    names
        .windows(2)
        .find(|w| w[0] == w[1] && !REPEATABLE.contains(&w[0]))
        .map(|w| w[0])
}

/// A repeated name is echoed in the error only when short and plain.
fn printable(name: &str) -> Option<Box<str>> {
    let plain = name.len() <= 40
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    plain.then(|| name.into())
}

/// The value of the one parameter called `name` in a form or query string, without parsing the
/// rest: `Ok(None)` when absent, an error when it appears twice or does not decode. Other
/// parameters are the application's and may repeat (multi-selects) or use any encoding.
pub(crate) fn find_unique(input: &[u8], name: &str) -> Result<Option<String>, WireError> {
    let mut found = None;
    for (n, value) in segments(input) {
        // A name is compared decoded (`access%5Ftoken` is `access_token`); one that does not
        // decode is not this name.
        if decode(n).is_ok_and(|n| n == name) {
            if found.is_some() {
                return Err(WireError::Repeated(printable(name)));
            }
            found = Some(decode(value)?);
        }
    }
    Ok(found)
}

/// Strict decoding: `+` is a space, `%` must be followed by two hex digits, and the result must
/// be UTF-8.
pub(crate) fn decode(input: &[u8]) -> Result<String, WireError> {
    // Most values have nothing to decode: check the UTF-8 and copy them whole. (A fold rather
    // than `any`, so the compiler can vectorise it.)
    let escaped = input
        .iter()
        .fold(false, |found, &b| found | (b == b'%') | (b == b'+'));
    if !escaped {
        return std::str::from_utf8(input)
            .map(str::to_owned)
            .map_err(|_| WireError::NotUtf8);
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
                    _ => return Err(WireError::PercentEncoding),
                }
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| WireError::NotUtf8)
}

/// Encoding as clients write it (the inverse of [`decode`]).
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
        let cases: &[(&[u8], WireError)] = &[
            (b"a=%zz", WireError::PercentEncoding),
            (b"a=%4", WireError::PercentEncoding),
            (b"a=%ff", WireError::NotUtf8),
            (b"a=1&a=2", WireError::Repeated(Some("a".into()))),
            (b"a=&a=1", WireError::Repeated(Some("a".into()))),
            (b"%C3%A9=1&%C3%A9=2", WireError::Repeated(None)),
        ];
        for (body, expected) in cases {
            assert_eq!(Form::parse(body).as_ref(), Err(expected), "{body:?}");
        }
    }

    #[test]
    fn the_parameter_count_is_capped() {
        let names = |n: usize| {
            (0..n)
                .map(|i| format!("p{i}=v"))
                .collect::<Vec<_>>()
                .join("&")
        };
        assert_eq!(
            Form::parse(names(MAX_PARAMETERS).as_bytes())
                .unwrap()
                .pairs()
                .count(),
            MAX_PARAMETERS
        );
        assert_eq!(
            Form::parse(names(MAX_PARAMETERS + 1).as_bytes()),
            Err(WireError::TooManyParameters)
        );
    }

    #[test]
    fn resource_may_repeat() {
        let f = Form::parse(b"resource=https%3A%2F%2Fa.example%2F&x=1&resource=urn%3Ab&resource=")
            .unwrap();
        assert_eq!(
            f.get_all("resource").collect::<Vec<_>>(),
            ["https://a.example/", "urn:b"]
        );
        let (_, repeated) =
            Form::parse_with_repeats(b"resource=a&resource=b&state=1&state=2").unwrap();
        assert_eq!(repeated, ["state"]);
        let large: String = (0..40).map(|i| format!("p{i}=1&resource=r{i}&")).collect();
        assert_eq!(
            Form::parse(large.as_bytes())
                .unwrap()
                .get_all("resource")
                .count(),
            40
        );
    }

    #[test]
    fn a_repeat_is_found_in_a_large_form_too() {
        let mut body = (0..60).map(|i| format!("p{i}=v")).collect::<Vec<_>>();
        body.push("p7=again".into());
        assert_eq!(
            Form::parse(body.join("&").as_bytes()),
            Err(WireError::Repeated(Some("p7".into())))
        );
    }

    #[test]
    fn find_unique_looks_at_one_name_only() {
        let cases: &[(&str, Result<Option<&str>, WireError>)] = &[
            ("", Ok(None)),
            ("a=1&b=2", Ok(None)),
            ("access_token=t", Ok(Some("t"))),
            ("x=1&x=2&access_token=t", Ok(Some("t"))),
            ("x=%zz&access_token=t", Ok(Some("t"))),
            ("access%5Ftoken=t", Ok(Some("t"))),
            ("access_token=", Ok(Some(""))),
            (
                "access_token=a&access_token=b",
                Err(WireError::Repeated(Some("access_token".into()))),
            ),
            ("access_token=%zz", Err(WireError::PercentEncoding)),
        ];
        for (input, expected) in cases {
            let got = find_unique(input.as_bytes(), "access_token");
            assert_eq!(
                got,
                expected.clone().map(|o| o.map(str::to_owned)),
                "{input}"
            );
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
        fn an_accepted_form_has_unique_names_and_survives_a_round_trip(
            bytes in proptest::collection::vec(
                prop_oneof![Just(b'&'), Just(b'='), Just(b'a'), Just(b'b'), Just(b'%'), Just(b'+'), any::<u8>()],
                0..200,
            )
        ) {
            if let Ok(form) = Form::parse(&bytes) {
                let pairs: Vec<_> = form.pairs().collect();
                prop_assert!(pairs.len() <= MAX_PARAMETERS);
                let mut names: Vec<_> = pairs.iter().map(|(n, _)| *n).collect();
                names.sort_unstable();
                names.dedup();
                prop_assert_eq!(names.len(), pairs.len());
                let again = pairs
                    .iter()
                    .map(|(n, v)| format!("{}={}", encode(n), encode(v)))
                    .collect::<Vec<_>>()
                    .join("&");
                prop_assert_eq!(Form::parse(again.as_bytes()), Ok(form));
            }
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
            prop_assume!(!REPEATABLE.contains(&name.as_str()));
            let body = format!("{name}={a}&{name}={b}");
            prop_assert_eq!(Form::parse(body.as_bytes()), Err(WireError::Repeated(Some(name.into()))));
        }
    }
}
