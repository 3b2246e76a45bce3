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
//!
#![doc = include_str!("../../docs/jwt.md")]

mod claims;
mod keys;
mod set;
mod verify;

pub(crate) use self::{
    claims::{AccessClaims, extra_claims},
    verify::{Keyring, Unverified, access_token_kid, keyring, verify, verify_id_token},
};
pub use self::{
    claims::{ClaimsContext, ClaimsHook, RESERVED_CLAIMS},
    keys::{PublicKey, SigningKey},
    set::KeySet,
};

/// The left half of the hash of `value` that a JWS of `alg` uses, base64url: an ID token's
/// `at_hash` (OpenID Connect Core §3.1.3.6). SHA-256 for RS256 and ES256; SHA-512 for EdDSA
/// on Ed25519, the only curve these keys use.
pub(crate) fn half_hash(alg: &str, value: &str) -> String {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    use sha2::{Digest, Sha256, Sha512};
    let digest = match alg {
        "EdDSA" => Sha512::digest(value.as_bytes()).to_vec(),
        _ => Sha256::digest(value.as_bytes()).to_vec(),
    };
    URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2])
}

/// Choose jsonwebtoken's backend explicitly, before its first use: a build where another crate
/// enables its other backend too would otherwise panic at the first signature or verification.
/// An app that installed one itself keeps it.
pub(crate) fn install_backend() {
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
}
