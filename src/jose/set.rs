//! The key set a server signs with and publishes (its JWKS).

use jsonwebtoken::Header;
use serde::Serialize;
use serde_json::{Value, json};

use super::{
    install_backend,
    keys::{PublicKey, SigningKey},
    verify::{Keyring, keyring_of},
};

/// The keys a server signs and is verified with: one active signing key, and the public keys of
/// the next and the retiring ones.
#[derive(Clone, Debug)]
pub struct KeySet {
    active: SigningKey,
    others: Vec<PublicKey>,
}

impl KeySet {
    /// A set whose active key is `active`.
    pub fn new(active: SigningKey) -> Self {
        install_backend();
        Self {
            active,
            others: Vec::new(),
        }
    }

    /// Also publish `key` for verification: the next key before it becomes active, or the
    /// previous one until the longest access-token lifetime has passed.
    #[must_use]
    pub fn with_verification_key(mut self, key: PublicKey) -> Self {
        if key.kid != self.active.public.kid && !self.others.iter().any(|k| k.kid == key.kid) {
            self.others.push(key);
        }
        self
    }

    /// The active signing key.
    pub fn active(&self) -> &SigningKey {
        &self.active
    }

    /// The JWK Set (RFC 7517 §5): the active key's public half, then the others.
    pub fn jwks(&self) -> Value {
        let keys: Vec<&Value> = std::iter::once(&self.active.public.jwk)
            .chain(self.others.iter().map(|k| &k.jwk))
            .collect();
        json!({ "keys": keys })
    }

    /// The public keys, for verifying the tokens this set signed.
    pub(crate) fn keyring(&self) -> Keyring {
        match serde_json::from_value(self.jwks()) {
            Ok(set) => keyring_of(&set),
            // The set's own JWKs always parse; an empty ring would only refuse every token.
            Err(_) => Keyring::new(),
        }
    }

    /// Sign `claims` as an RFC 9068 access token (`typ: at+jwt`, `alg`, `kid`).
    pub(crate) fn sign(
        &self,
        claims: &impl Serialize,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(self.active.alg);
        header.typ = Some("at+jwt".to_owned());
        header.kid = Some(self.active.public.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.active.encoding)
    }
}
