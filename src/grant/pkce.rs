//! PKCE (RFC 7636).

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};

use crate::{client::Client, config::PkcePolicy, store::CodeChallengeMethod, token::ct_eq};

/// Whether `client` must send a code challenge: the policy for its kind of client, unless it
/// is a confidential one let off by name (`ClientBuilder::pkce_optional`).
pub(crate) fn required(policy: &PkcePolicy, client: &Client) -> bool {
    if client.is_confidential() {
        policy.required_for_confidential_clients && !client.pkce_optional()
    } else {
        policy.required_for_public_clients
    }
}

/// RFC 7636 §4.1: 43–128 characters of `[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"`.
/// The same grammar bounds a challenge (a `plain` challenge is a verifier; an `S256` one is 43).
pub(crate) fn well_formed(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Whether `verifier` answers `challenge` (RFC 7636 §4.6), in constant time.
pub(crate) fn verify(verifier: &str, challenge: &str, method: CodeChallengeMethod) -> bool {
    if !well_formed(verifier) {
        return false;
    }
    match method {
        CodeChallengeMethod::S256 => {
            let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
            ct_eq(computed.as_bytes(), challenge.as_bytes())
        }
        CodeChallengeMethod::Plain => ct_eq(verifier.as_bytes(), challenge.as_bytes()),
    }
}

/// An `S256` challenge is BASE64URL without padding of 32 bytes: 43 characters.
pub(crate) fn well_formed_s256(s: &str) -> bool {
    s.len() == 43
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b_example() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(verify(verifier, challenge, CodeChallengeMethod::S256));
        assert!(!verify(verifier, challenge, CodeChallengeMethod::Plain));
        assert!(!verify("short", challenge, CodeChallengeMethod::S256));
    }
}
