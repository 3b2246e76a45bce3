//! The rotation grace window's memory of a response.
//!
//! Inside the grace window a retry with the refresh token just rotated away gets **the same
//! response** the first use got — the same access and refresh token — instead of a fresh pair.
//! So even with retries there is only ever one live successor, and a thief replaying a stolen
//! token inside the window gains nothing the legitimate client does not also hold: whichever of
//! them uses the successor second triggers reuse detection.
//!
//! Stores keep only hashes, so the response is kept *sealed*: encrypted with ChaCha20-Poly1305
//! under a key derived from the presented refresh token itself (domain-separated from the
//! SHA-256 the store keys by). Only someone who holds that refresh token can open it; a store
//! dump reveals nothing. Each key seals exactly one message (a token is rotated once).

use chacha20poly1305::{ChaCha20Poly1305, Key, KeyInit, Nonce, aead::Aead};
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::TokenResponse;
use crate::{clock::UnixTime, scope::Scope};

const KEY_CONTEXT: &[u8] = b"tower-oauth2 grace-window seal v1\0";
const NONCE_LEN: usize = 12;

fn cipher(refresh_token: &str) -> ChaCha20Poly1305 {
    let mut h = Sha256::new();
    h.update(KEY_CONTEXT);
    h.update(refresh_token.as_bytes());
    let key: [u8; 32] = h.finalize().into();
    ChaCha20Poly1305::new(Key::from_slice(&key))
}

/// The parts of a response that a retry must get back unchanged.
pub(super) struct Kept<'a> {
    pub(super) access_token: &'a str,
    pub(super) access_expires_at: UnixTime,
    pub(super) refresh_token: &'a str,
    pub(super) scope: &'a Scope,
    /// The ID token of an OpenID grant's refresh; empty when none.
    pub(super) id_token: &'a str,
}

pub(super) fn seal(presented: &str, kept: &Kept<'_>) -> Option<Vec<u8>> {
    let mut plain = Vec::with_capacity(16 + kept.access_token.len() + kept.refresh_token.len());
    plain.extend_from_slice(&kept.access_expires_at.to_be_bytes());
    for part in [kept.access_token, kept.refresh_token, kept.id_token] {
        plain.extend_from_slice(&u16::try_from(part.len()).ok()?.to_be_bytes());
        plain.extend_from_slice(part.as_bytes());
    }
    plain.extend_from_slice(kept.scope.as_str().as_bytes());
    let mut nonce = [0u8; NONCE_LEN];
    rand::rng().fill_bytes(&mut nonce);
    let mut out = nonce.to_vec();
    out.extend(
        cipher(presented)
            .encrypt(Nonce::from_slice(&nonce), plain.as_slice())
            .ok()?,
    );
    Some(out)
}

/// Open a sealed response for the holder of `presented`, with `expires_in` counted from `now`.
pub(super) fn open(presented: &str, sealed: &[u8], now: UnixTime) -> Option<TokenResponse> {
    if sealed.len() < NONCE_LEN {
        return None;
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    let plain = cipher(presented)
        .decrypt(Nonce::from_slice(nonce), ciphertext)
        .ok()?;
    let (expires, mut rest) = plain.split_first_chunk::<8>()?;
    let mut take = || -> Option<String> {
        let (len, tail) = rest.split_first_chunk::<2>()?;
        let len = usize::from(u16::from_be_bytes(*len));
        let part = tail.get(..len)?;
        rest = &tail[len..];
        String::from_utf8(part.to_vec()).ok()
    };
    let access_token = take()?;
    let refresh_token = take()?;
    let id_token = take()?;
    let scope = Scope::parse(std::str::from_utf8(rest).ok()?).ok()?;
    Some(TokenResponse {
        access_token,
        expires_in: u64::from_be_bytes(*expires).saturating_sub(now),
        refresh_token: Some(refresh_token),
        scope,
        id_token: (!id_token.is_empty()).then_some(id_token),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_presented_token_opens_the_seal() {
        let scope = Scope::parse("read").unwrap();
        let kept = Kept {
            access_token: "at",
            access_expires_at: 1_000,
            refresh_token: "rt",
            scope: &scope,
            id_token: "",
        };
        let sealed = seal("old-refresh", &kept).unwrap();
        let opened = open("old-refresh", &sealed, 400).unwrap();
        assert_eq!(opened.access_token, "at");
        assert_eq!(opened.refresh_token.as_deref(), Some("rt"));
        assert_eq!(opened.expires_in, 600);
        assert_eq!(opened.scope, scope);
        assert!(open("other-refresh", &sealed, 400).is_none());
        assert!(open("old-refresh", &sealed[..10], 400).is_none());
    }
}
