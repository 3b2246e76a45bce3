//! Redirect URIs (RFC 6749 §3.1.2): what a registered one may be, how a presented one is
//! compared with it, and how parameters are added to one without losing its own query.

use super::form::encode;

/// The parts of an absolute URI this module compares.
#[derive(Debug, PartialEq, Eq)]
struct Parts<'a> {
    /// Lower-cased by the comparison where it matters; as written here.
    scheme: &'a str,
    host: &'a str,
    port: Option<&'a str>,
    /// Everything after the authority: path and query.
    rest: &'a str,
}

fn parts(uri: &str) -> Option<Parts<'_>> {
    let (scheme, after) = uri.split_once("://")?;
    let valid_scheme = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !valid_scheme {
        return None;
    }
    let end = after.find(['/', '?']).unwrap_or(after.len());
    let (authority, rest) = after.split_at(end);
    // No user information: a redirect URI names a place, not an account.
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let close = v6.find(']')?;
            let host = &authority[..close + 2];
            match &v6[close + 1..] {
                "" => (host, None),
                p => (host, Some(p.strip_prefix(':')?)),
            }
        }
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    // A port is a number a socket can have (0–65535, RFC 3986 §3.2.3 by way of TCP).
    if host.is_empty()
        || port.is_some_and(|p| !p.bytes().all(|b| b.is_ascii_digit()) || p.parse::<u16>().is_err())
    {
        return None;
    }
    Some(Parts {
        scheme,
        host,
        port,
        rest,
    })
}

/// Why a URI cannot be registered as a redirect URI.
pub(crate) fn registration_problem(uri: &str) -> Option<&'static str> {
    if uri.contains('#') {
        return Some("a redirect URI must not have a fragment (RFC 6749 §3.1.2)");
    }
    if uri.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Some("a redirect URI must not contain spaces or control characters");
    }
    // It goes into a Location header, which carries ASCII only: a URI with other characters
    // would be validated and then sent nowhere. Percent-encode them (RFC 3987 §3.1).
    if !uri.is_ascii() {
        return Some("a redirect URI must be ASCII: percent-encode other characters");
    }
    if parts(uri).is_none() && private_use(uri).is_none() {
        let single_slash = uri.split_once(':').is_some_and(|(scheme, rest)| {
            !scheme.is_empty()
                && scheme.bytes().all(|b| b.is_ascii_alphanumeric())
                && rest.starts_with('/')
                && !rest.starts_with("//")
        });
        if single_slash {
            return Some(
                "a private-use scheme is a reverse domain name, with a dot: com.example.app:/callback (RFC 8252 §7.1)",
            );
        }
        return Some("a redirect URI must be absolute: scheme://host[:port][/path][?query]");
    }
    None
}

/// The host of a redirect URI (a private-use URI's scheme, which names its app), as the
/// sector of pairwise subjects (OpenID Connect Core §8.1).
pub(crate) fn host_of(uri: &str) -> Option<&str> {
    parts(uri).map(|p| p.host).or_else(|| private_use(uri))
}

/// The scheme of a private-use URI (RFC 8252 §7.1: a reverse domain name, so it holds a dot)
/// written `scheme:/path`.
fn private_use(uri: &str) -> Option<&str> {
    let (scheme, rest) = uri.split_once(':')?;
    let valid = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme.contains('.')
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    (valid && rest.starts_with('/') && !rest.starts_with("//")).then_some(scheme)
}

/// What kind of place a (valid) redirect URI sends to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SchemeKind {
    Https,
    /// `http` on `127.0.0.1`, `[::1]` or `localhost`.
    HttpLoopback,
    /// `http` elsewhere.
    Http,
    /// A scheme with a dot in it (RFC 8252 §7.1).
    PrivateUse,
    Other,
}

/// The kind of a URI that passed [`registration_problem`].
pub(crate) fn scheme_kind(uri: &str) -> SchemeKind {
    match parts(uri) {
        Some(p) if p.scheme.eq_ignore_ascii_case("https") => SchemeKind::Https,
        Some(p) if is_http_loopback(&p) => SchemeKind::HttpLoopback,
        Some(p) if p.scheme.eq_ignore_ascii_case("http") => SchemeKind::Http,
        Some(p) if p.scheme.contains('.') => SchemeKind::PrivateUse,
        Some(_) => SchemeKind::Other,
        None if private_use(uri).is_some() => SchemeKind::PrivateUse,
        None => SchemeKind::Other,
    }
}

/// Whether `uri` is an `http` URI on a loopback host: `127.0.0.1`, `[::1]` or `localhost`.
fn is_http_loopback(p: &Parts<'_>) -> bool {
    p.scheme.eq_ignore_ascii_case("http")
        && (p.host == "127.0.0.1" || p.host == "[::1]" || p.host.eq_ignore_ascii_case("localhost"))
}

/// Whether a presented redirect URI matches a registered one: character for character, except
/// that for an `http` loopback URI any port matches (RFC 8252 §7.3: native apps listen on an
/// ephemeral port). Scheme, host, path and query must still be the registered ones.
pub(crate) fn matches(registered: &str, presented: &str) -> bool {
    if registered == presented {
        return true;
    }
    let (Some(r), Some(p)) = (parts(registered), parts(presented)) else {
        return false;
    };
    is_http_loopback(&r)
        && r.scheme == p.scheme
        && r.host == p.host
        && r.rest == p.rest
        && !presented.contains('#')
}

/// Whether two resource identifiers (RFC 8707, RFC 9728) name the same resource: equal as
/// strings once the scheme and host are lower-cased and a default port (`:443` for https,
/// `:80` for http) dropped (RFC 3986 §6.2.2). Path and query compare exactly.
#[cfg(any(feature = "jwt", feature = "introspection"))]
pub(crate) fn same_resource(a: &str, b: &str) -> bool {
    a == b || normalized(a).is_some_and(|n| Some(&n) == normalized(b).as_ref())
}

/// A resource identifier in normal form (RFC 3986 §6.2.2): scheme and host lower-cased, a
/// default port dropped; an absolute URI without an authority (`urn:…`) has only its scheme
/// lower-cased. `None` for what is not an absolute URI.
pub(crate) fn normalized(uri: &str) -> Option<String> {
    let Some(p) = parts(uri) else {
        let (scheme, rest) = uri.split_once(':')?;
        let valid = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
            && !rest.is_empty()
            && !rest.starts_with("//");
        return valid.then(|| format!("{}:{rest}", scheme.to_ascii_lowercase()));
    };
    let scheme = p.scheme.to_ascii_lowercase();
    let default = matches!(
        (scheme.as_str(), p.port),
        ("https", Some("443")) | ("http", Some("80"))
    );
    let port = p.port.filter(|_| !default).map(|port| format!(":{port}"));
    Some(format!(
        "{scheme}://{}{}{}",
        p.host.to_ascii_lowercase(),
        port.unwrap_or_default(),
        p.rest
    ))
}

/// Why a string cannot be a resource indicator (RFC 8707 §2: an absolute URI without a
/// fragment), if it cannot.
pub(crate) fn resource_problem(uri: &str) -> Option<&'static str> {
    if uri.contains('#') {
        return Some("a resource indicator must not have a fragment (RFC 8707 §2)");
    }
    if !uri.is_ascii() || uri.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Some("a resource indicator must be an ASCII URI without spaces");
    }
    if normalized(uri).is_none() {
        return Some("a resource indicator must be an absolute URI (RFC 8707 §2)");
    }
    None
}

#[cfg(any(feature = "jwt", feature = "introspection"))]
/// A token's `aud`: one string or several (RFC 7519 §4.1.3).
#[derive(serde::Deserialize, Default)]
#[serde(untagged)]
pub(crate) enum Audience {
    /// None given.
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

#[cfg(any(feature = "jwt", feature = "introspection"))]
impl Audience {
    /// Whether it names `resource`, compared as resource identifiers
    /// ([`same_resource`]).
    pub(crate) fn names(&self, resource: &str) -> bool {
        let same = |a: &String| same_resource(a, resource);
        match self {
            Self::None => false,
            Self::One(a) => same(a),
            Self::Many(all) => all.iter().any(same),
        }
    }

    /// Whether there is none.
    pub(crate) fn is_none(&self) -> bool {
        matches!(self, Self::None)
    }

    /// Its values.
    pub(crate) fn values(&self) -> &[String] {
        match self {
            Self::None => &[],
            Self::One(a) => std::slice::from_ref(a),
            Self::Many(all) => all,
        }
    }
}

/// `base` with `params` added to its query (form-encoded, RFC 6749 §3.1.2: the query a
/// registered URI already has is kept).
pub(crate) fn with_query(base: &str, params: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(base.len() + 64);
    out.push_str(base);
    let mut sep = if base.contains('?') {
        if base.ends_with('?') || base.ends_with('&') {
            ""
        } else {
            "&"
        }
    } else {
        "?"
    };
    for (name, value) in params {
        out.push_str(sep);
        out.push_str(&encode(name));
        out.push('=');
        out.push_str(&encode(value));
        sep = "&";
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presented_uris_against_registered_ones() {
        // (registered, presented, matches)
        let cases = [
            ("https://app.example/cb", "https://app.example/cb", true),
            ("https://app.example/cb", "https://app.example/cb/", false),
            ("https://app.example/cb", "https://APP.example/cb", false),
            (
                "https://app.example/cb",
                "https://app.example:443/cb",
                false,
            ),
            (
                "https://app.example/cb",
                "https://app.example/cb?x=1",
                false,
            ),
            (
                "https://app.example/cb?a=1",
                "https://app.example/cb?a=1",
                true,
            ),
            // Loopback: any port, nothing else.
            ("http://127.0.0.1/cb", "http://127.0.0.1:51234/cb", true),
            (
                "http://127.0.0.1:3000/callback",
                "http://127.0.0.1:8080/callback",
                true,
            ),
            (
                "http://127.0.0.1:3000/callback",
                "http://127.0.0.1/callback",
                true,
            ),
            ("http://[::1]/cb", "http://[::1]:4000/cb", true),
            ("http://localhost:3000/cb", "http://localhost:9/cb", true),
            (
                "http://127.0.0.1:3000/cb",
                "http://127.0.0.1:3000/other",
                false,
            ),
            (
                "http://127.0.0.1:3000/cb",
                "http://127.0.0.1:3000/cb?x=1",
                false,
            ),
            (
                "http://127.0.0.1:3000/cb",
                "http://localhost:3000/cb",
                false,
            ),
            (
                "http://127.0.0.1:3000/cb",
                "http://127.0.0.2:3000/cb",
                false,
            ),
            (
                "http://127.0.0.1:3000/cb",
                "https://127.0.0.1:3000/cb",
                false,
            ),
            (
                "http://127.0.0.1:3000/cb",
                "http://127.0.0.1:3000/cb#x",
                false,
            ),
            (
                "http://127.0.0.1:3000/cb",
                "http://127.0.0.1:3000@evil.example/cb",
                false,
            ),
            ("http://127.0.0.1:3000/cb", "http://127.0.0.1:abc/cb", false),
            ("http://127.0.0.1:3000/cb", "http://127.0.0.1:/cb", false),
            // Not loopback: no port freedom.
            (
                "https://127.0.0.1:3000/cb",
                "https://127.0.0.1:3001/cb",
                false,
            ),
            (
                "http://app.example:3000/cb",
                "http://app.example:3001/cb",
                false,
            ),
            (
                "http://localhost.evil.example/cb",
                "http://localhost.evil.example:1/cb",
                false,
            ),
        ];
        for (registered, presented, expected) in cases {
            assert_eq!(
                matches(registered, presented),
                expected,
                "{registered} vs {presented}"
            );
        }
    }

    #[test]
    fn what_may_be_registered() {
        for good in [
            "https://app.example/cb",
            "http://127.0.0.1:3000/callback",
            "http://[::1]/cb",
            "com.example.app://oauth/cb",
            "https://app.example/cb?tenant=1",
            "http://127.0.0.1:65535/cb",
            "https://xn--caf-dma.example/cb",
            "com.example.app:/oauth/cb",
        ] {
            assert_eq!(registration_problem(good), None, "{good}");
        }
        for (uri, kind) in [
            ("https://app.example/cb", SchemeKind::Https),
            ("HTTP://LOCALHOST:9/cb", SchemeKind::HttpLoopback),
            ("http://[::1]/cb", SchemeKind::HttpLoopback),
            ("http://app.example/cb", SchemeKind::Http),
            ("http://127.0.0.1.evil.example/cb", SchemeKind::Http),
            ("com.example.app:/cb", SchemeKind::PrivateUse),
            ("com.example.app://cb", SchemeKind::PrivateUse),
            ("ftp://app.example/cb", SchemeKind::Other),
        ] {
            assert_eq!(scheme_kind(uri), kind, "{uri}");
        }
        assert!(
            registration_problem("myapp:/cb")
                .unwrap()
                .contains("RFC 8252")
        );
        for bad in [
            "com.example.app:cb",
            "com.example.app://",
            "javascript:alert(1)",
        ] {
            assert!(registration_problem(bad).is_some(), "{bad}");
        }
        for bad in [
            "/cb",
            "app.example/cb",
            "https://app.example/cb#frag",
            "https://user@app.example/cb",
            "https:///cb",
            "https://app.example/c b",
            "1http://x/cb",
            "http://127.0.0.1:65536/cb",
            "http://127.0.0.1:99999999999999999999/cb",
            "http://127.0.0.1:/cb",
            "https://café.example/cb",
            "https://app.example/caf\u{e9}",
        ] {
            assert!(registration_problem(bad).is_some(), "{bad}");
        }
    }

    #[cfg(any(feature = "jwt", feature = "introspection"))]
    #[test]
    fn resource_identifiers_compare_after_scheme_host_and_port_normalisation() {
        let same = [
            ("https://api.example/mcp", "https://api.example/mcp"),
            ("https://API.Example/mcp", "https://api.example/mcp"),
            ("HTTPS://api.example:443/mcp", "https://api.example/mcp"),
            ("http://127.0.0.1:80/mcp", "http://127.0.0.1/mcp"),
        ];
        for (a, b) in same {
            assert!(same_resource(a, b), "{a} = {b}");
        }
        let different = [
            ("https://api.example/MCP", "https://api.example/mcp"),
            ("https://api.example/mcp/", "https://api.example/mcp"),
            ("https://api.example:8443/mcp", "https://api.example/mcp"),
            ("http://api.example/mcp", "https://api.example/mcp"),
            ("https://api.example:80/mcp", "https://api.example/mcp"),
            ("https://api.example/mcp?x=1", "https://api.example/mcp"),
            ("not a uri", "https://api.example/mcp"),
        ];
        for (a, b) in different {
            assert!(!same_resource(a, b), "{a} != {b}");
        }
    }

    #[test]
    fn parameters_keep_the_registered_query() {
        let params = [("code", "a b"), ("state", "x&y=z")];
        assert_eq!(
            with_query("https://app.example/cb", &params),
            "https://app.example/cb?code=a+b&state=x%26y%3Dz"
        );
        assert_eq!(
            with_query("https://app.example/cb?tenant=1", &params[..1]),
            "https://app.example/cb?tenant=1&code=a+b"
        );
        assert_eq!(
            with_query("https://app.example/cb?", &params[..1]),
            "https://app.example/cb?code=a+b"
        );
    }
}
