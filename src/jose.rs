//! Signing keys and JWT access tokens (RFC 9068), behind the `jwt` feature: the one module of the
//! crate that knows the JOSE library (jsonwebtoken with its RustCrypto backend).
//!
//! A [`KeySet`] has one active signing key and any number of verification-only public keys, so
//! rotation is: publish the next key (as verification-only), switch to it, retire the old one
//! after the longest access-token lifetime. Key ids are RFC 7638 thumbprints. Private keys never
//! appear in `Debug` output.
//!
//! ```
//! use tower_oauth2::jose::{KeySet, SigningKey};
//!
//! let keys = KeySet::new(SigningKey::generate_es256());
//! let jwks = keys.jwks();
//! assert_eq!(jwks["keys"][0]["alg"], "ES256");
//! assert_eq!(jwks["keys"][0]["use"], "sig");
//! ```
//!
//! ES256 (default) and EdDSA (Ed25519). RS256 is not offered for signing: the RustCrypto `rsa`
//! crate the backend uses carries RUSTSEC-2023-0071 (a timing side channel in private-key
//! operations), with no fixed release.

use std::{fmt, sync::Arc};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::error::ConfigError;

/// A private signing key, with its public JWK and key id.
#[derive(Clone)]
pub struct SigningKey {
    alg: Algorithm,
    encoding: Arc<EncodingKey>,
    public: PublicKey,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.alg)
            .field("kid", &self.public.kid)
            .field("private", &"<redacted>")
            .finish()
    }
}

/// A public verification key: its JWK (RFC 7517) and key id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    kid: String,
    jwk: Value,
}

impl PublicKey {
    /// The key id: the RFC 7638 SHA-256 thumbprint.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The JWK, with `kid`, `alg` and `use: sig`.
    pub fn jwk(&self) -> &Value {
        &self.jwk
    }

    fn new(alg: &str, members: Value) -> Self {
        // RFC 7638 §3: the required members, lexicographically ordered, no whitespace.
        let canonical = match members["kty"].as_str() {
            Some("EC") => format!(
                r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
                members["crv"].as_str().unwrap_or(""),
                members["x"].as_str().unwrap_or(""),
                members["y"].as_str().unwrap_or("")
            ),
            _ => format!(
                r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#,
                members["crv"].as_str().unwrap_or(""),
                members["x"].as_str().unwrap_or("")
            ),
        };
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
        let mut jwk = members;
        jwk["kid"] = json!(kid);
        jwk["alg"] = json!(alg);
        jwk["use"] = json!("sig");
        Self { kid, jwk }
    }
}

fn random_32() -> [u8; 32] {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

impl SigningKey {
    /// A new ES256 (P-256) key, for development and tests; production keys come from
    /// [`from_pem`](Self::from_pem) so that every instance signs with the same one.
    pub fn generate_es256() -> Self {
        loop {
            // A random scalar is a valid key except with negligible probability.
            if let Ok(key) = p256::SecretKey::from_slice(&random_32()) {
                if let Ok(k) = Self::from_p256(&key) {
                    return k;
                }
            }
        }
    }

    /// A new Ed25519 key (EdDSA), for development and tests.
    pub fn generate_ed25519() -> Self {
        let key = ed25519_dalek::SigningKey::from_bytes(&random_32());
        match Self::from_ed25519(&key) {
            Ok(k) => k,
            // Encoding a valid key cannot fail.
            Err(e) => panic!("an Ed25519 key could not be encoded: {e}"),
        }
    }

    /// A key from a PKCS#8 PEM private key: P-256 for `ES256`, Ed25519 for `EdDSA`.
    pub fn from_pem(pem: &str) -> Result<Self, ConfigError> {
        use p256::pkcs8::DecodePrivateKey;
        if let Ok(key) = p256::SecretKey::from_pkcs8_pem(pem) {
            return Self::from_p256(&key);
        }
        if let Ok(key) = ed25519_dalek::SigningKey::from_pkcs8_pem(pem) {
            return Self::from_ed25519(&key);
        }
        Err(ConfigError::Key(
            "not a PKCS#8 PEM P-256 or Ed25519 private key",
        ))
    }

    /// A key from a private JWK (RFC 7517/7518/8037): `kty` `EC` on `P-256` with `d`, `x`, `y`,
    /// or `kty` `OKP` on `Ed25519` with `d`, `x`. The public members must be the private key's.
    pub fn from_jwk(jwk: &Value) -> Result<Self, ConfigError> {
        let member = |name: &str| {
            jwk[name]
                .as_str()
                .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
                .ok_or(ConfigError::Key("a private JWK lacks a base64url member"))
        };
        let d = member("d")?;
        let key = match (jwk["kty"].as_str(), jwk["crv"].as_str()) {
            (Some("EC"), Some("P-256")) => {
                let secret = p256::SecretKey::from_slice(&d)
                    .map_err(|_| ConfigError::Key("the JWK's d is not a P-256 private key"))?;
                Self::from_p256(&secret)?
            }
            (Some("OKP"), Some("Ed25519")) => {
                let bytes: [u8; 32] = d
                    .try_into()
                    .map_err(|_| ConfigError::Key("the JWK's d is not an Ed25519 private key"))?;
                Self::from_ed25519(&ed25519_dalek::SigningKey::from_bytes(&bytes))?
            }
            _ => {
                return Err(ConfigError::Key(
                    "a private JWK must be EC P-256 (ES256) or OKP Ed25519 (EdDSA)",
                ));
            }
        };
        // The public half given must be the private key's own.
        for name in ["x", "y"] {
            if let Some(given) = jwk[name].as_str() {
                if key.public.jwk[name].as_str() != Some(given) {
                    return Err(ConfigError::Key(
                        "the JWK's public members do not match its d",
                    ));
                }
            }
        }
        Ok(key)
    }

    fn from_p256(key: &p256::SecretKey) -> Result<Self, ConfigError> {
        use p256::{elliptic_curve::sec1::ToEncodedPoint, pkcs8::EncodePrivateKey};
        let der = key
            .to_pkcs8_der()
            .map_err(|_| ConfigError::Key("the P-256 key could not be encoded"))?;
        let point = key.public_key().to_encoded_point(false);
        let (Some(x), Some(y)) = (point.x(), point.y()) else {
            return Err(ConfigError::Key("the P-256 public key is the identity"));
        };
        let public = PublicKey::new(
            "ES256",
            json!({"kty": "EC", "crv": "P-256", "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y)}),
        );
        Ok(Self {
            alg: Algorithm::ES256,
            encoding: Arc::new(EncodingKey::from_ec_der(der.as_bytes())),
            public,
        })
    }

    fn from_ed25519(key: &ed25519_dalek::SigningKey) -> Result<Self, ConfigError> {
        use ed25519_dalek::pkcs8::EncodePrivateKey;
        let der = key
            .to_pkcs8_der()
            .map_err(|_| ConfigError::Key("the Ed25519 key could not be encoded"))?;
        let x = URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes());
        let public = PublicKey::new("EdDSA", json!({"kty": "OKP", "crv": "Ed25519", "x": x}));
        Ok(Self {
            alg: Algorithm::EdDSA,
            encoding: Arc::new(EncodingKey::from_ed_der(der.as_bytes())),
            public,
        })
    }

    /// Its public half.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// The JWS algorithm: `ES256` or `EdDSA`.
    pub fn algorithm(&self) -> &'static str {
        match self.alg {
            Algorithm::EdDSA => "EdDSA",
            _ => "ES256",
        }
    }
}

/// Choose jsonwebtoken's backend explicitly, before its first use: a build where another crate
/// enables its other backend too would otherwise panic at the first signature or verification.
/// An app that installed one itself keeps it.
pub(crate) fn install_backend() {
    let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
}

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

/// The claims of an RFC 9068 access token.
#[derive(Serialize)]
pub(crate) struct AccessClaims<'a> {
    pub(crate) iss: &'a str,
    pub(crate) sub: &'a str,
    pub(crate) aud: &'a [String],
    pub(crate) exp: u64,
    pub(crate) iat: u64,
    pub(crate) jti: &'a str,
    pub(crate) client_id: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub(crate) scope: &'a str,
    /// The app's own claims ([`ClaimsHook`]), without any of the names above.
    #[serde(flatten)]
    pub(crate) extra: serde_json::Map<String, Value>,
}

/// The claims this server sets itself, and a few whose meaning the app must not fake: an app's
/// claims hook cannot add or change these.
pub const RESERVED_CLAIMS: [&str; 11] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "client_id",
    "scope",
    "cnf",
    "typ",
];

/// What an app's [`ClaimsHook`] is told about the token being issued.
#[derive(Debug)]
#[non_exhaustive]
pub struct ClaimsContext<'a> {
    /// The client it is for.
    pub client_id: &'a str,
    /// The user, when there is one.
    pub subject: Option<&'a str>,
    /// The scope it carries.
    pub scope: &'a crate::Scope,
}

/// Adds an app's claims to JWT access tokens (say `roles`, `groups`, `tenant`, RFC 9068 §2.2.3).
/// It cannot change the registered ones: names in [`RESERVED_CLAIMS`] are dropped, with a
/// warning. A closure `Fn(&ClaimsContext<'_>) -> serde_json::Map<String, Value>` is one.
pub trait ClaimsHook: Send + Sync + 'static {
    /// The extra claims for this token.
    fn claims(&self, ctx: &ClaimsContext<'_>) -> serde_json::Map<String, Value>;
}

impl<F> ClaimsHook for F
where
    F: Fn(&ClaimsContext<'_>) -> serde_json::Map<String, Value> + Send + Sync + 'static,
{
    fn claims(&self, ctx: &ClaimsContext<'_>) -> serde_json::Map<String, Value> {
        self(ctx)
    }
}

/// The app's claims for a token, the reserved names taken out.
pub(crate) fn extra_claims(
    hook: Option<&dyn ClaimsHook>,
    ctx: &ClaimsContext<'_>,
) -> serde_json::Map<String, Value> {
    let Some(hook) = hook else {
        return serde_json::Map::new();
    };
    let mut extra = hook.claims(ctx);
    for name in RESERVED_CLAIMS {
        if extra.remove(name).is_some() {
            tracing::warn!(
                claim = name,
                "the claims hook may not set a registered claim; dropped"
            );
        }
    }
    extra
}
