//! Subject identifiers (OpenID Connect Core §8): the app's own, or one per sector.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};

/// How a client sees its users' `sub`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SubjectType {
    /// The app's own identifier, the same for every client (`public`, the default).
    #[default]
    Public,
    /// One per sector (the host of the client's redirect URIs, or its `sector_identifier`):
    /// `HMAC-SHA256(pairwise key, sector ‖ 0 ‖ subject)`, base64url. Stable across restarts and
    /// instances that share the key; clients of different sectors cannot correlate users.
    Pairwise,
}

impl SubjectType {
    /// Its name in metadata (`subject_type`, `subject_types_supported`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Pairwise => "pairwise",
        }
    }

    /// Parse a `subject_type` value.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "public" => Some(Self::Public),
            "pairwise" => Some(Self::Pairwise),
            _ => None,
        }
    }
}

/// The pairwise subject of `subject` in `sector` (Core §8.1): HMAC-SHA256 keyed with `key`.
pub(crate) fn pairwise_subject(key: &[u8], sector: &str, subject: &str) -> String {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(sector.as_bytes())
        .chain_update([0])
        .chain_update(subject.as_bytes())
        .finalize();
    let outer = Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize();
    URL_SAFE_NO_PAD.encode(outer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subject_is_hmac_sha256_of_sector_zero_subject() {
        let key = b"Jefe";
        let got = pairwise_subject(key, "what do ya want", "for nothing?");
        assert_eq!(got, reference_hmac(key, b"what do ya want\0for nothing?"));
        // A key longer than a block is hashed first (RFC 2104).
        let long = [0xaa_u8; 131];
        let hashed = Sha256::digest(long);
        assert_eq!(
            pairwise_subject(&long, "s", "u"),
            reference_hmac(&hashed, b"s\0u")
        );
    }

    /// HMAC-SHA256 as RFC 2104 writes it, for the test above, checked against RFC 4231 #2.
    fn reference_hmac(key: &[u8], message: &[u8]) -> String {
        let mut k = key.to_vec();
        k.resize(64, 0);
        let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
        let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
        let inner = Sha256::new()
            .chain_update(&ipad)
            .chain_update(message)
            .finalize();
        let outer = Sha256::new()
            .chain_update(&opad)
            .chain_update(inner)
            .finalize();
        URL_SAFE_NO_PAD.encode(outer)
    }

    #[test]
    fn the_reference_is_rfc_4231() {
        let expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        let got = URL_SAFE_NO_PAD
            .decode(reference_hmac(b"Jefe", b"what do ya want for nothing?"))
            .unwrap();
        let hex: String = got.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, expected);
    }

    #[test]
    fn sectors_see_different_stable_subjects() {
        let key = [7u8; 32];
        let a = pairwise_subject(&key, "app.example", "user-1");
        assert_eq!(a, pairwise_subject(&key, "app.example", "user-1"));
        assert_ne!(a, pairwise_subject(&key, "other.example", "user-1"));
        assert_ne!(a, pairwise_subject(&key, "app.example", "user-2"));
        assert_ne!(a, pairwise_subject(&[8u8; 32], "app.example", "user-1"));
    }
}
