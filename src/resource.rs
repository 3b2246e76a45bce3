//! Resource indicators (RFC 8707): which protected resources a grant was approved for, and
//! which of them an access token may be presented to (its audience).
//!
//! A client names a resource with `resource=<absolute URI>` (repeatable) at the authorization
//! endpoint, the pushed authorization request endpoint and the token endpoint. The server
//! knows which resources exist ([`Config::resources`](crate::config::Config::resources), or a
//! [`ResourcePolicy`](crate::client::ResourcePolicy) the app implements) and, per client, which of them it may ask for
//! ([`ClientBuilder::resource`](crate::client::ClientBuilder::resource)); anything else is
//! `invalid_target`. The grant remembers the set approved; a token request may narrow it to a
//! subset, never widen it.
//!
//! [`Resources`] is such a set: normalised (RFC 3986 §6.2.2: scheme and host lower-cased, a
//! default port dropped), sorted, without repeats, and cheap to clone.
//!
//! ```
//! use tower_oauth2::resource::Resources;
//!
//! let granted = Resources::parse(["https://API.example:443/mcp", "https://api.example/other"])
//!     .unwrap();
//! assert!(granted.contains("https://api.example/mcp"));
//! let asked = Resources::parse(["https://api.example/mcp"]).unwrap();
//! assert!(asked.is_subset_of(&granted));
//! assert_eq!(granted.iter().collect::<Vec<_>>(), [
//!     "https://api.example/mcp",
//!     "https://api.example/other",
//! ]);
//! assert!(Resources::parse(["https://api.example/mcp#frag"]).is_err());
//! assert!(Resources::parse(["/relative"]).is_err());
//! ```

use std::{fmt, sync::Arc};

/// The most `resource` parameters one request may carry: what a grant stores is bounded.
pub const MAX_RESOURCES: usize = 16;

/// The longest one resource indicator may be, in bytes.
pub const MAX_RESOURCE_BYTES: usize = 2048;

/// A normalised set of resource identifiers (RFC 8707). Cloning is a reference-count
/// increment; the empty set (no audience) allocates nothing.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Resources(Option<Arc<str>>);

/// A string that cannot be a resource indicator, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidResource(pub &'static str);

impl fmt::Display for InvalidResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for InvalidResource {}

/// One resource indicator in normal form, or why it is not one.
pub fn normalize(uri: &str) -> Result<String, InvalidResource> {
    if uri.len() > MAX_RESOURCE_BYTES {
        return Err(InvalidResource("a resource indicator is too long"));
    }
    if let Some(problem) = crate::wire::uri::resource_problem(uri) {
        return Err(InvalidResource(problem));
    }
    crate::wire::uri::normalized(uri).ok_or(InvalidResource(
        "a resource indicator must be an absolute URI",
    ))
}

impl Resources {
    /// The empty set: a token for no resource in particular.
    pub fn empty() -> Self {
        Self(None)
    }

    /// The set of these resource indicators, each checked (an absolute URI without a
    /// fragment, at most [`MAX_RESOURCE_BYTES`]) and normalised; at most [`MAX_RESOURCES`].
    pub fn parse<I, T>(uris: I) -> Result<Self, InvalidResource>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        let mut all = Vec::new();
        for uri in uris {
            if all.len() == MAX_RESOURCES {
                return Err(InvalidResource("too many resource indicators"));
            }
            all.push(normalize(uri.as_ref())?);
        }
        Ok(Self::from_normalized(all))
    }

    fn from_normalized(mut all: Vec<String>) -> Self {
        if all.is_empty() {
            return Self(None);
        }
        all.sort_unstable();
        all.dedup();
        Self(Some(Arc::from(all.join(" "))))
    }

    /// The set a store wrote with [`as_str`](Self::as_str): trusted to be in normal form.
    pub fn from_stored(stored: &str) -> Self {
        if stored.is_empty() {
            return Self(None);
        }
        Self(Some(Arc::from(stored)))
    }

    /// Whether the set is empty (no audience).
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// The normal form: sorted and joined by single spaces (`""` when empty), as stores keep
    /// it. (A URI has no spaces.)
    pub fn as_str(&self) -> &str {
        self.0.as_deref().unwrap_or("")
    }

    /// The resources, in sorted order.
    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        self.as_str().split(' ').filter(|t| !t.is_empty())
    }

    /// How many resources the set has.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether `resource` (normalised first) is in the set.
    pub fn contains(&self, resource: &str) -> bool {
        if self.is_empty() {
            return false;
        }
        match normalize(resource) {
            Ok(n) => self.iter().any(|r| r == n),
            Err(_) => false,
        }
    }

    /// Whether every resource of `self` is in `other`.
    pub fn is_subset_of(&self, other: &Resources) -> bool {
        self.0 == other.0 || self.iter().all(|r| other.iter().any(|o| o == r))
    }
}

#[cfg(any(feature = "jwt", feature = "introspection"))]
impl Resources {
    /// The resource identifiers among a token's `aud`, normalised (an `aud` that is not a URI,
    /// say a client id, is left out).
    pub(crate) fn of_aud(aud: &crate::wire::uri::Audience) -> Self {
        let uris = aud
            .values()
            .iter()
            .filter(|a| normalize(a).is_ok())
            .take(MAX_RESOURCES);
        Self::parse(uris).unwrap_or_default()
    }
}

impl fmt::Display for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_form() {
        let cases = [
            ("HTTPS://Api.Example:443/mcp", "https://api.example/mcp"),
            ("http://127.0.0.1:80/x?y=Z", "http://127.0.0.1/x?y=Z"),
            ("http://127.0.0.1:3200/mcp", "http://127.0.0.1:3200/mcp"),
            ("URN:example:Thing", "urn:example:Thing"),
            ("https://api.example", "https://api.example"),
        ];
        for (given, expected) in cases {
            assert_eq!(normalize(given).unwrap(), expected, "{given}");
        }
        for bad in [
            "",
            "mcp",
            "/mcp",
            "//host/mcp",
            "https://api.example/mcp#x",
            "https://api.example/a b",
            "https:///mcp",
            "https://user@api.example/",
            "https://api.example:99999/",
            "https://api.example/é",
        ] {
            assert!(normalize(bad).is_err(), "{bad:?}");
        }
        assert!(
            normalize(&format!(
                "https://a.example/{}",
                "x".repeat(MAX_RESOURCE_BYTES)
            ))
            .is_err()
        );
    }

    #[test]
    fn sets() {
        let a = Resources::parse([
            "https://b.example/",
            "https://A.example/",
            "https://a.example/",
        ])
        .unwrap();
        assert_eq!(a.as_str(), "https://a.example/ https://b.example/");
        assert_eq!(a.len(), 2);
        assert_eq!(Resources::from_stored(a.as_str()), a);
        assert!(Resources::empty().is_subset_of(&a));
        assert!(!a.is_subset_of(&Resources::empty()));
        assert!(!Resources::empty().contains("https://a.example/"));
        let many: Vec<String> = (0..=MAX_RESOURCES)
            .map(|i| format!("https://r{i}.example/"))
            .collect();
        assert!(Resources::parse(&many).is_err());
        assert!(Resources::parse(&many[..MAX_RESOURCES]).is_ok());
        assert_eq!(
            format!("{a:?}"),
            r#"["https://a.example/", "https://b.example/"]"#
        );
    }
}
