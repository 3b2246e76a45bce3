//! Signing keys (ES256, EdDSA, RS256) and public keys as JWKs, with RFC 7638 key ids.

use std::{fmt, sync::Arc};

use aws_lc_rs::{
    encoding::AsDer,
    rsa::KeyPair as RsaKeyPair,
    signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::error::ConfigError;

/// A private signing key, with its public JWK and key id.
#[derive(Clone)]
pub struct SigningKey {
    pub(super) alg: Algorithm,
    pub(super) encoding: Arc<EncodingKey>,
    pub(super) public: PublicKey,
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
    pub(super) kid: String,
    pub(super) jwk: Value,
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
