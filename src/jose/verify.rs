//! Verifying access tokens: the keys of a JWK Set, and an RFC 9068 token checked against them.

use std::collections::HashMap;

use jsonwebtoken::{
    Algorithm, DecodingKey,
    jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet},
};
use serde::Deserialize;

use super::install_backend;

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

/// Whether a published key may verify signatures: its `use` (RFC 7517 §4.2), when given, is
/// `sig`, and its `key_ops` (§4.3), when given, include `verify`. A key published for
/// encryption never verifies a token.
fn for_verifying(jwk: &Jwk) -> bool {
    use jsonwebtoken::jwk::{KeyOperations, PublicKeyUse};
    let usable = jwk
        .common
        .public_key_use
        .as_ref()
        .is_none_or(|u| *u == PublicKeyUse::Signature);
    let operable = jwk
        .common
        .key_operations
        .as_ref()
        .is_none_or(|ops| ops.contains(&KeyOperations::Verify));
    usable && operable
}

pub(super) fn keyring_of(set: &JwkSet) -> Keyring {
    install_backend();
    let mut keys = Keyring::new();
    for jwk in set.keys.iter().filter(|k| for_verifying(k)) {
        let (Some(kid), Some(alg)) = (jwk.common.key_id.clone(), key_algorithm(jwk)) else {
            continue;
        };
        if let Ok(key) = DecodingKey::from_jwk(jwk) {
            keys.insert(kid, VerifyingKey { key, alg });
        }
    }
    keys
}

/// The keys of a JWK Set document (RFC 7517 §5) that can verify tokens: those with a `kid`, an
/// asymmetric algorithm that fits the key's type, and no `use` or `key_ops` that says
/// otherwise. Others are skipped.
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
    /// `client_credentials` when no user is behind the token (see the issuing side).
    #[serde(default)]
    pub(crate) gty: Option<String>,
    #[serde(default)]
    pub(crate) aud: crate::wire::uri::Audience,
}

/// Why a token was not accepted.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Unverified {
    /// Not an RFC 9068 access token, or its `kid` is not among the keys.
    UnknownKey,
    /// Bad in itself: algorithm, signature, issuer, or no audience where one is required.
    Invalid,
    /// Good, but for other resources: its `aud` does not name the one asked for.
    WrongAudience,
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
    // The audience is judged here, below: compared as resource identifiers, and told apart
    // from a bad token.
    rules.validate_aud = false;
    match audience {
        Some(_) => rules.set_required_spec_claims(&["exp", "iss", "aud"]),
        None => rules.set_required_spec_claims(&["exp", "iss"]),
    }
    rules.validate_exp = false;
    rules.validate_nbf = false;
    let claims = jsonwebtoken::decode::<VerifiedClaims>(token, &key.key, &rules)
        .map(|data| data.claims)
        .map_err(|_| Unverified::Invalid)?;
    match audience {
        Some(wanted) if !claims.aud.names(wanted) => Err(Unverified::WrongAudience),
        _ => Ok(claims),
    }
}

/// The claims of an ID token this server issued, as an `id_token_hint` presents them.
#[derive(Deserialize)]
pub(crate) struct HintClaims {
    pub(crate) sub: String,
    #[serde(default)]
    pub(crate) aud: crate::wire::uri::Audience,
    #[serde(default)]
    pub(crate) sid: Option<String>,
}

/// Verify an ID token this server issued (an `id_token_hint`, OpenID Connect Core §3.1.2.1,
/// RP-Initiated Logout §2): the signature with the key its header names, the algorithm the
/// key's, `iss` the `issuer`. An access token (`typ: at+jwt`) is not one. Expiry is not
/// judged: a hint may have expired (both specifications allow it).
pub(crate) fn verify_id_token(token: &str, keys: &Keyring, issuer: &str) -> Option<HintClaims> {
    let header = jsonwebtoken::decode_header(token).ok()?;
    if header.typ.is_some_and(|t| {
        t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")
    }) {
        return None;
    }
    let key = keys.get(header.kid.as_deref()?)?;
    if header.alg != key.alg {
        return None;
    }
    let mut rules = jsonwebtoken::Validation::new(key.alg);
    rules.set_issuer(&[issuer]);
    rules.validate_aud = false;
    rules.set_required_spec_claims(&["iss", "sub", "aud"]);
    rules.validate_exp = false;
    rules.validate_nbf = false;
    jsonwebtoken::decode::<HintClaims>(token, &key.key, &rules)
        .ok()
        .map(|data| data.claims)
}
