//! [`Scope`]: a set of scope tokens (RFC 6749 §3.3), cheap to clone.
//!
//! A scope is parsed strictly — each token is `1*( %x21 / %x23-5B / %x5D-7E )` — and kept in a
//! normal form (sorted, without repeats) so that two equal sets compare and print equally.
//!
//! ```
//! use tower_oauth2::Scope;
//!
//! let granted: Scope = "read write offline_access".parse().unwrap();
//! let asked: Scope = "write read".parse().unwrap();
//! assert!(asked.is_subset_of(&granted));
//! assert_eq!(asked.to_string(), "read write");
//! assert!("bad\"quote".parse::<Scope>().is_err());
//! ```

use std::{fmt, str::FromStr, sync::Arc};

/// A normalised set of scope tokens. Cloning is a reference-count increment.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Scope(Option<Arc<str>>);

/// A scope string that breaks the RFC 6749 §3.3 grammar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidScope;

impl fmt::Display for InvalidScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("scope contains characters outside the RFC 6749 §3.3 grammar")
    }
}

impl std::error::Error for InvalidScope {}

fn valid_token(token: &str) -> bool {
    // RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
    !token.is_empty()
        && token
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

impl Scope {
    /// The empty scope.
    pub fn empty() -> Self {
        Self(None)
    }

    /// Parse a space-delimited scope string. Runs of spaces are tolerated; any other character
    /// outside the grammar is an error.
    pub fn parse(s: &str) -> Result<Self, InvalidScope> {
        let mut tokens: Vec<&str> = Vec::new();
        for token in s.split(' ').filter(|t| !t.is_empty()) {
            if !valid_token(token) {
                return Err(InvalidScope);
            }
            tokens.push(token);
        }
        Ok(Self::from_valid_tokens(tokens))
    }

    /// Build a scope from tokens, checking each.
    pub fn from_tokens<I, T>(tokens: I) -> Result<Self, InvalidScope>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        let owned: Vec<T> = tokens.into_iter().collect();
        let mut refs = Vec::with_capacity(owned.len());
        for t in &owned {
            let t = t.as_ref();
            if !valid_token(t) {
                return Err(InvalidScope);
            }
            refs.push(t);
        }
        Ok(Self::from_valid_tokens(refs))
    }

    fn from_valid_tokens(mut tokens: Vec<&str>) -> Self {
        if tokens.is_empty() {
            return Self(None);
        }
        tokens.sort_unstable();
        tokens.dedup();
        Self(Some(Arc::from(tokens.join(" "))))
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// The normal form: tokens sorted and joined by single spaces (`""` when empty).
    pub fn as_str(&self) -> &str {
        self.0.as_deref().unwrap_or("")
    }

    /// The tokens, in sorted order.
    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        self.as_str().split(' ').filter(|t| !t.is_empty())
    }

    /// How many tokens the set has.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether `token` is in the set.
    pub fn contains(&self, token: &str) -> bool {
        self.iter().any(|t| t == token)
    }

    /// Whether every token of `self` is in `other`. Linear in both: the two are sorted.
    pub fn is_subset_of(&self, other: &Scope) -> bool {
        if self.0.is_none() || self.0 == other.0 {
            return true;
        }
        self.missing_from(other).next().is_none()
    }

    /// The tokens of `self` that are missing from `granted`, in order; linear in both.
    pub fn missing_from<'a>(&'a self, granted: &'a Scope) -> impl Iterator<Item = &'a str> + 'a {
        let mut granted = granted.iter().peekable();
        self.iter().filter(move |t| {
            // Both sorted: skip the granted tokens that sort before this one.
            while granted.next_if(|g| g < t).is_some() {}
            granted.next_if_eq(t).is_none()
        })
    }

    /// The tokens present in both sets; linear in both.
    pub fn intersection(&self, other: &Scope) -> Scope {
        let missing: Vec<&str> = self.missing_from(other).collect();
        let mut missing = missing.into_iter().peekable();
        let common = self.iter().filter(|t| missing.next_if_eq(t).is_none());
        Self::from_valid_tokens(common.collect())
    }
}

impl FromStr for Scope {
    type Err = InvalidScope;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scope({:?})", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_order_and_repeats() {
        let s = Scope::parse("b a  b c").unwrap();
        assert_eq!(s.as_str(), "a b c");
        assert_eq!(s, Scope::parse("c b a").unwrap());
    }

    #[test]
    fn rejects_characters_outside_the_grammar() {
        for bad in ["a\"b", "a\\b", "é", "a\tb", "a\u{7f}"] {
            assert_eq!(Scope::parse(bad), Err(InvalidScope), "{bad:?}");
        }
    }

    #[test]
    fn containment_is_by_whole_tokens() {
        let granted = Scope::parse("read write").unwrap();
        assert!(Scope::parse("read").unwrap().is_subset_of(&granted));
        assert!(!Scope::parse("rea").unwrap().is_subset_of(&granted));
        assert!(Scope::empty().is_subset_of(&granted));
        assert!(!Scope::parse("admin").unwrap().is_subset_of(&Scope::empty()));
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    fn token() -> impl Strategy<Value = String> {
        // RFC 6749 §3.3 scope-token characters.
        "[!#-\\[\\]-~]{1,10}"
    }

    proptest! {
        #[test]
        fn parse_display_round_trip(tokens in proptest::collection::vec(token(), 0..6)) {
            let scope = Scope::parse(&tokens.join(" ")).unwrap();
            prop_assert_eq!(Scope::parse(scope.as_str()).unwrap(), scope.clone());
            for t in &tokens {
                prop_assert!(scope.contains(t));
            }
        }

        #[test]
        fn set_operations_match_their_definitions(
            a in proptest::collection::vec(token(), 0..8),
            b in proptest::collection::vec(token(), 0..8),
        ) {
            let (sa, sb) = (Scope::parse(&a.join(" ")).unwrap(), Scope::parse(&b.join(" ")).unwrap());
            let in_b = |t: &&str| sb.iter().any(|u| u == *t);
            let missing: Vec<&str> = sa.iter().filter(|t| !in_b(t)).collect();
            prop_assert_eq!(sa.missing_from(&sb).collect::<Vec<_>>(), missing.clone());
            prop_assert_eq!(sa.is_subset_of(&sb), missing.is_empty());
            let common: Vec<&str> = sa.iter().filter(|t| in_b(t)).collect();
            let both = sa.intersection(&sb);
            prop_assert_eq!(both.as_str(), common.join(" "));
            prop_assert_eq!(sa.len(), sa.iter().count());
        }

        #[test]
        fn order_and_repeats_do_not_matter(mut tokens in proptest::collection::vec(token(), 1..6)) {
            let a = Scope::parse(&tokens.join(" ")).unwrap();
            tokens.reverse();
            tokens.push(tokens[0].clone());
            prop_assert_eq!(a, Scope::parse(&tokens.join("  ")).unwrap());
        }

        #[test]
        fn containment_is_set_inclusion(
            a in proptest::collection::btree_set(token(), 0..6),
            b in proptest::collection::btree_set(token(), 0..6),
        ) {
            let sa = Scope::from_tokens(&a).unwrap();
            let sb = Scope::from_tokens(&b).unwrap();
            prop_assert_eq!(sa.is_subset_of(&sb), a.is_subset(&b));
            let union = Scope::from_tokens(a.union(&b)).unwrap();
            prop_assert!(sa.is_subset_of(&union) && sb.is_subset_of(&union));
            prop_assert_eq!(sa.intersection(&sb), Scope::from_tokens(a.intersection(&b)).unwrap());
            prop_assert_eq!(sa.missing_from(&sb).count(), a.difference(&b).count());
        }

        #[test]
        fn anything_outside_the_grammar_is_refused(s in "\\PC*[\"\\\\\\t\u{7f}é]\\PC*") {
            prop_assert!(Scope::parse(&s).is_err());
        }
    }
}
