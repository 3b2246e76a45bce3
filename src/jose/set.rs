//! The key set a server signs with and publishes (its JWKS).

use std::{
    fmt,
    sync::{Arc, OnceLock},
};

use jsonwebtoken::Header;
use serde::Serialize;
use serde_json::{Value, json};

use super::{
    install_backend,
    keys::{PublicKey, SigningKey},
    verify::{Keyring, keyring_of},
};

/// The keys a server signs and is verified with: one active signing key, and the public keys of
/// the next and the retiring ones. For OpenID Connect, signing keys of other algorithms too
/// ([`with_signing_key`](Self::with_signing_key)): ID tokens are RS256 unless the client
/// registered another algorithm.
#[derive(Clone)]
pub struct KeySet {
    active: SigningKey,
    /// Signing keys for other algorithms (one each), for ID tokens and userinfo responses.
    signers: Vec<SigningKey>,
    others: Vec<PublicKey>,
    /// The public keys as verification keys, made once (for ID token hints).
    ring: Arc<OnceLock<Keyring>>,
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySet")
            .field("active", &self.active)
            .field("signers", &self.signers)
            .field("others", &self.others)
            .finish_non_exhaustive()
    }
}

impl KeySet {
    /// A set whose active key is `active`.
    pub fn new(active: SigningKey) -> Self {
        install_backend();
        Self {
            active,
            signers: Vec::new(),
            others: Vec::new(),
            ring: Arc::default(),
        }
    }

    /// Also sign with `key` where its algorithm is asked for (an OpenID client's
    /// `id_token_signed_response_alg`, say RS256 beside an ES256 active key), and publish it.
    /// One key per algorithm: a second one for an algorithm already held replaces the first
    /// (the active key's algorithm stays the active key's).
    #[must_use]
    pub fn with_signing_key(mut self, key: SigningKey) -> Self {
        if key.alg == self.active.alg {
            return self;
        }
        self.others.retain(|k| k.kid != key.public.kid);
        self.signers.retain(|k| k.alg != key.alg);
        self.signers.push(key);
        self.ring = Arc::default();
        self
    }

    /// The algorithms this set signs with: the active key's first.
    pub fn signing_algorithms(&self) -> Vec<&'static str> {
        std::iter::once(&self.active)
            .chain(&self.signers)
            .map(SigningKey::algorithm)
            .collect()
    }

    /// The signing key for `alg` (`RS256`, `ES256`, `EdDSA`), if the set has one.
    fn signer(&self, alg: &str) -> Option<&SigningKey> {
        std::iter::once(&self.active)
            .chain(&self.signers)
            .find(|k| k.algorithm() == alg)
    }

    /// The public keys as verification keys, made at the first call and kept.
    pub(crate) fn verifying_keys(&self) -> &Keyring {
        self.ring.get_or_init(|| self.keyring())
    }

    /// Sign `claims` as a JWT with the key for `alg`, with `typ` in the header when given
    /// (`None` for an ID token, which has none). `None` when the set has no key for `alg`.
    pub(crate) fn sign_as(
        &self,
        alg: &str,
        typ: Option<&str>,
        claims: &impl Serialize,
    ) -> Option<Result<String, jsonwebtoken::errors::Error>> {
        let key = self.signer(alg)?;
        let mut header = Header::new(key.alg);
        header.typ = typ.map(str::to_owned);
        header.kid = Some(key.public.kid.clone());
        Some(jsonwebtoken::encode(&header, claims, &key.encoding))
    }
    /// Also publish `key` for verification: the next key before it becomes active, or the
    /// previous one until the longest access-token lifetime has passed.
    #[must_use]
    pub fn with_verification_key(mut self, key: PublicKey) -> Self {
        let signs = std::iter::once(&self.active)
            .chain(&self.signers)
            .any(|k| k.public.kid == key.kid);
        if !signs && !self.others.iter().any(|k| k.kid == key.kid) {
            self.others.push(key);
            self.ring = Arc::default();
        }
        self
    }

    /// The active signing key.
    pub fn active(&self) -> &SigningKey {
        &self.active
    }

    /// The JWK Set (RFC 7517 §5): the active key's public half, then the other signing keys',
    /// then the verification-only ones.
    pub fn jwks(&self) -> Value {
        let keys: Vec<&Value> = std::iter::once(&self.active.public.jwk)
            .chain(self.signers.iter().map(|k| &k.public.jwk))
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
