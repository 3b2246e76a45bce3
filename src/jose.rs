//! Signing keys and JWT access tokens (RFC 9068), behind the `jwt` feature: the one module of the
//! crate that knows the JOSE library (jsonwebtoken with its AWS-LC backend) and key material.
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
//! ES256 (default), EdDSA (Ed25519) and RS256 (RSA, 2048 to 8192 bits, from PEM). The crypto
//! is AWS-LC (`aws-lc-rs`, jsonwebtoken's `aws_lc_rs` backend, installed explicitly): constant-time
//! RSA with no open advisory (the RustCrypto `rsa` crate carries RUSTSEC-2023-0071), and an ES256
//! verification about five times faster than the pure-Rust P-256 on the same machine.

use std::{collections::HashMap, fmt, sync::Arc};

use aws_lc_rs::{
    encoding::AsDer,
    rsa::KeyPair as RsaKeyPair,
    signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header,
    jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet},
};
use serde::{Deserialize, Serialize};
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
        let m = |name: &str| members[name].as_str().unwrap_or("").to_owned();
        // RFC 7638 §3: the required members, lexicographically ordered, no whitespace.
        let canonical = match members["kty"].as_str() {
            Some("EC") => format!(
                r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
                m("crv"),
                m("x"),
                m("y")
            ),
            Some("RSA") => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, m("e"), m("n")),
            _ => format!(r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#, m("crv"), m("x")),
        };
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
        let mut jwk = members;
        jwk["kid"] = json!(kid);
        jwk["alg"] = json!(alg);
        jwk["use"] = json!("sig");
        Self { kid, jwk }
    }
}

fn rejected(what: &'static str) -> impl Fn(aws_lc_rs::error::KeyRejected) -> ConfigError {
    move |_| ConfigError::Key(what)
}

impl SigningKey {
    /// A new ES256 (P-256) key, for development and tests; production keys come from
    /// [`from_pem`](Self::from_pem) or [`from_jwk`](Self::from_jwk) so that every instance signs
    /// with the same one.
    pub fn generate_es256() -> Self {
        let made = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .map_err(|_| ConfigError::Key("no P-256 key could be generated"))
            .and_then(|key| Self::from_ecdsa(&key));
        match made {
            Ok(k) => k,
            // Only a broken system random number generator gets here.
            Err(e) => panic!("{e}"),
        }
    }

    /// A new Ed25519 key (EdDSA), for development and tests.
    pub fn generate_ed25519() -> Self {
        let made = Ed25519KeyPair::generate()
            .map_err(|_| ConfigError::Key("no Ed25519 key could be generated"))
            .and_then(|key| Self::from_ed25519(&key));
        match made {
            Ok(k) => k,
            Err(e) => panic!("{e}"),
        }
    }

    /// A new 2048-bit RSA key (RS256), for development and tests (generating one takes a while).
    pub fn generate_rs256() -> Self {
        let made = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
            .map_err(|_| ConfigError::Key("no RSA key could be generated"))
            .and_then(|key| {
                let der = key
                    .as_der()
                    .map_err(|_| ConfigError::Key("the RSA key could not be encoded"))?;
                let pem = pem::encode(&pem::Pem::new("PRIVATE KEY", der.as_ref().to_vec()));
                Self::from_rsa(&key, &pem)
            });
        match made {
            Ok(k) => k,
            Err(e) => panic!("{e}"),
        }
    }

    /// A key from a PEM private key: PKCS#8 (`PRIVATE KEY`) holding a P-256 key for `ES256`, an
    /// Ed25519 key for `EdDSA` or an RSA key of 2048 to 8192 bits for `RS256`; or the
    /// type-specific SEC 1 `EC PRIVATE KEY` (P-256) and PKCS#1 `RSA PRIVATE KEY` that `openssl`
    /// writes.
    pub fn from_pem(pem: &str) -> Result<Self, ConfigError> {
        let parsed =
            pem::parse(pem).map_err(|_| ConfigError::Key("not a PEM-encoded private key"))?;
        let der = parsed.contents();
        match parsed.tag() {
            "PRIVATE KEY" => {
                if let Ok(key) = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der) {
                    return Self::from_ecdsa(&key);
                }
                if let Ok(key) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
                    return Self::from_ed25519(&key);
                }
                if let Ok(key) = RsaKeyPair::from_pkcs8(der) {
                    return Self::from_rsa(&key, pem);
                }
                Err(ConfigError::Key(
                    "the PKCS#8 key is not P-256, Ed25519, or RSA of 2048 to 8192 bits",
                ))
            }
            "EC PRIVATE KEY" => {
                let key = EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                    .map_err(rejected("the EC PRIVATE KEY is not a P-256 key"))?;
                Self::from_ecdsa(&key)
            }
            "RSA PRIVATE KEY" => {
                let key = RsaKeyPair::from_der(der).map_err(rejected(
                    "the RSA PRIVATE KEY is not RSA of 2048 to 8192 bits",
                ))?;
                Self::from_rsa(&key, pem)
            }
            _ => Err(ConfigError::Key(
                "the PEM is not a PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY",
            )),
        }
    }

    /// A key from a private JWK (RFC 7517/7518/8037): `kty` `EC` on `P-256` with `d`, `x`, `y`,
    /// or `kty` `OKP` on `Ed25519` with `d`, `x`. The public members must be the private key's.
    /// (RSA keys are given as PEM.)
    pub fn from_jwk(jwk: &Value) -> Result<Self, ConfigError> {
        let member = |name: &str| {
            jwk[name]
                .as_str()
                .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
                .ok_or(ConfigError::Key("a private JWK lacks a base64url member"))
        };
        let d = member("d")?;
        match (jwk["kty"].as_str(), jwk["crv"].as_str()) {
            (Some("EC"), Some("P-256")) => {
                let mut point = vec![0x04];
                point.extend(member("x")?);
                point.extend(member("y")?);
                let key = EcdsaKeyPair::from_private_key_and_public_key(
                    &ECDSA_P256_SHA256_FIXED_SIGNING,
                    &d,
                    &point,
                )
                .map_err(rejected(
                    "the JWK is not a P-256 key whose x and y are its d's",
                ))?;
                Self::from_ecdsa(&key)
            }
            (Some("OKP"), Some("Ed25519")) => {
                let key = Ed25519KeyPair::from_seed_and_public_key(&d, &member("x")?)
                    .map_err(rejected("the JWK is not an Ed25519 key whose x is its d's"))?;
                Self::from_ed25519(&key)
            }
            _ => Err(ConfigError::Key(
                "a private JWK must be EC P-256 (ES256) or OKP Ed25519 (EdDSA)",
            )),
        }
    }

    fn from_ecdsa(key: &EcdsaKeyPair) -> Result<Self, ConfigError> {
        let der = key
            .to_pkcs8v1()
            .map_err(|_| ConfigError::Key("the P-256 key could not be encoded"))?;
        // The uncompressed SEC 1 point: 0x04, then x and y of 32 bytes each.
        let point = key.public_key().as_ref();
        let (Some(x), Some(y)) = (point.get(1..33), point.get(33..65)) else {
            return Err(ConfigError::Key("the P-256 public key is malformed"));
        };
        let public = PublicKey::new(
            "ES256",
            json!({"kty": "EC", "crv": "P-256", "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y)}),
        );
        Ok(Self {
            alg: Algorithm::ES256,
            encoding: Arc::new(EncodingKey::from_ec_der(der.as_ref())),
            public,
        })
    }

    fn from_ed25519(key: &Ed25519KeyPair) -> Result<Self, ConfigError> {
        let der = key
            .to_pkcs8()
            .map_err(|_| ConfigError::Key("the Ed25519 key could not be encoded"))?;
        let x = URL_SAFE_NO_PAD.encode(key.public_key().as_ref());
        let public = PublicKey::new("EdDSA", json!({"kty": "OKP", "crv": "Ed25519", "x": x}));
        Ok(Self {
            alg: Algorithm::EdDSA,
            encoding: Arc::new(EncodingKey::from_ed_der(der.as_ref())),
            public,
        })
    }

    /// `pem` is the key's own PEM (PKCS#8 or PKCS#1), from which jsonwebtoken takes the PKCS#1
    /// form it signs with.
    fn from_rsa(key: &RsaKeyPair, pem: &str) -> Result<Self, ConfigError> {
        let encoding = EncodingKey::from_rsa_pem(pem.as_bytes())
            .map_err(|_| ConfigError::Key("the RSA key could not be encoded"))?;
        let public = key.public_key();
        let n = URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero());
        let e = URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero());
        let public = PublicKey::new("RS256", json!({"kty": "RSA", "n": n, "e": e}));
        Ok(Self {
            alg: Algorithm::RS256,
            encoding: Arc::new(encoding),
            public,
        })
    }

    /// Its public half.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// The JWS algorithm: `ES256`, `EdDSA` or `RS256`.
    pub fn algorithm(&self) -> &'static str {
        match self.alg {
            Algorithm::EdDSA => "EdDSA",
            Algorithm::RS256 => "RS256",
            _ => "ES256",
        }
    }
}

/// Choose jsonwebtoken's backend explicitly, before its first use: a build where another crate
/// enables its other backend too would otherwise panic at the first signature or verification.
/// An app that installed one itself keeps it.
pub(crate) fn install_backend() {
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
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

/// A key tokens may be verified with, and the one algorithm it is for.
#[derive(Clone)]
pub(crate) struct VerifyingKey {
    key: DecodingKey,
    alg: Algorithm,
}

/// Verification keys by `kid`.
pub(crate) type Keyring = HashMap<String, VerifyingKey>;

/// The algorithm a published key is for: its `alg` when given, else the one its type implies.
/// Only asymmetric algorithms: a key from a key set is public, so never an HMAC secret.
fn key_algorithm(jwk: &Jwk) -> Option<Algorithm> {
    let implied = match &jwk.algorithm {
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => Algorithm::ES256,
            EllipticCurve::P384 => Algorithm::ES384,
            _ => return None,
        },
        AlgorithmParameters::OctetKeyPair(_) => Algorithm::EdDSA,
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::OctetKey(_) => return None,
    };
    use jsonwebtoken::jwk::KeyAlgorithm as K;
    let stated = match jwk.common.key_algorithm {
        None => return Some(implied),
        Some(K::ES256) => Algorithm::ES256,
        Some(K::ES384) => Algorithm::ES384,
        Some(K::EdDSA) => Algorithm::EdDSA,
        Some(K::RS256) => Algorithm::RS256,
        Some(K::RS384) => Algorithm::RS384,
        Some(K::RS512) => Algorithm::RS512,
        Some(K::PS256) => Algorithm::PS256,
        Some(K::PS384) => Algorithm::PS384,
        Some(K::PS512) => Algorithm::PS512,
        // HMAC, encryption algorithms: never for verifying with a published key.
        Some(_) => return None,
    };
    let rsa = |a: Algorithm| {
        matches!(
            a,
            Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512
        )
    };
    // The stated one must fit the key's type (an RSA key stated as ES256 is refused).
    (stated == implied || (implied == Algorithm::RS256 && rsa(stated))).then_some(stated)
}

fn keyring_of(set: &JwkSet) -> Keyring {
    install_backend();
    let mut keys = Keyring::new();
    for jwk in &set.keys {
        let (Some(kid), Some(alg)) = (jwk.common.key_id.clone(), key_algorithm(jwk)) else {
            continue;
        };
        if let Ok(key) = DecodingKey::from_jwk(jwk) {
            keys.insert(kid, VerifyingKey { key, alg });
        }
    }
    keys
}

/// The keys of a JWK Set document (RFC 7517 §5) that can verify tokens: those with a `kid` and
/// an asymmetric algorithm that fits the key's type. Others are skipped.
pub(crate) fn keyring(jwks: &[u8]) -> Result<Keyring, serde_json::Error> {
    Ok(keyring_of(&serde_json::from_slice(jwks)?))
}

/// The claims an access token is judged by (RFC 9068 §2.2).
#[derive(Deserialize)]
pub(crate) struct VerifiedClaims {
    #[serde(default)]
    pub(crate) sub: Option<String>,
    #[serde(default)]
    pub(crate) client_id: Option<String>,
    #[serde(default)]
    pub(crate) scope: Option<String>,
    pub(crate) exp: u64,
    #[serde(default)]
    pub(crate) iat: Option<u64>,
    #[serde(default)]
    pub(crate) nbf: Option<u64>,
}

/// Why a token was not accepted.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Unverified {
    /// Not an RFC 9068 access token, or its `kid` is not among the keys.
    UnknownKey,
    /// Bad in itself: algorithm, signature, issuer or audience.
    Invalid,
}

/// The `kid` of an RFC 9068 access token: `None` when `token` is not a JWT whose header says
/// `typ: at+jwt` (or its full media type, case-insensitively, §4) and names a key.
pub(crate) fn access_token_kid(token: &str) -> Option<String> {
    let header = jsonwebtoken::decode_header(token).ok()?;
    let typ_ok = header.typ.as_deref().is_some_and(|t| {
        t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")
    });
    header.kid.filter(|_| typ_ok)
}

/// Verify an RFC 9068 access token with the key its header names in `keys`: the algorithm must
/// be the key's, whatever the header claims; the signature must hold; `iss` must be `issuer`
/// exactly, and `aud` must contain `audience` when one is given. Times are the caller's to
/// judge, on its own clock.
pub(crate) fn verify(
    token: &str,
    keys: &Keyring,
    issuer: &str,
    audience: Option<&str>,
) -> Result<VerifiedClaims, Unverified> {
    let kid = access_token_kid(token).ok_or(Unverified::UnknownKey)?;
    let key = keys.get(&kid).ok_or(Unverified::UnknownKey)?;
    let header = jsonwebtoken::decode_header(token).map_err(|_| Unverified::Invalid)?;
    if header.alg != key.alg {
        return Err(Unverified::Invalid);
    }
    let mut rules = jsonwebtoken::Validation::new(key.alg);
    rules.set_issuer(&[issuer]);
    match audience {
        Some(aud) => {
            rules.set_audience(&[aud]);
            rules.set_required_spec_claims(&["exp", "iss", "aud"]);
        }
        None => {
            rules.validate_aud = false;
            rules.set_required_spec_claims(&["exp", "iss"]);
        }
    }
    rules.validate_exp = false;
    rules.validate_nbf = false;
    jsonwebtoken::decode::<VerifiedClaims>(token, &key.key, &rules)
        .map(|data| data.claims)
        .map_err(|_| Unverified::Invalid)
}

/// The claims of an RFC 9068 access token.
#[derive(Serialize)]
pub(crate) struct AccessClaims<'a> {
    /// First, so a token's route (the `jti`'s first digits, `Route::of_token`) is read from the
    /// payload's first 16 characters without decoding the rest.
    pub(crate) jti: &'a str,
    pub(crate) iss: &'a str,
    pub(crate) sub: &'a str,
    pub(crate) aud: &'a [String],
    pub(crate) exp: u64,
    pub(crate) iat: u64,
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
