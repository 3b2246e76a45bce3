//! Token generation and hashing.
//!
//! Tokens are 32 bytes (256 bits) from the thread-local CSPRNG (ChaCha12, seeded and reseeded
//! from the operating system), written as URL-safe base64 without padding: 43 characters from the
//! RFC 6750 `b64token` set that survive form encoding unescaped. Stores keep only
//! [`TokenHash`]es, the SHA-256 of a token, compared in constant time.
//!
//! ```
//! use tower_oauth2::token::{generate, TokenHash};
//!
//! let token = generate();
//! assert_eq!(token.expose().len(), 43);
//! assert_eq!(TokenHash::of(token.expose()), token.hash());
//! assert!(!format!("{token:?}").contains(token.expose()));
//! ```

use std::{
    fmt,
    hash::{Hash, Hasher},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What an access token is: an opaque random string (the default), or a signed JWT (RFC 9068,
/// feature `jwt`) that a resource server can check without calling back. Either way the store
/// records it by hash, so revocation and introspection work alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AccessTokenFormat {
    /// 256 random bits, base64url.
    #[default]
    Opaque,
    /// A JWT signed with the server's active key (`AuthServerBuilder::signing_keys`).
    Jwt,
}

/// Random bytes in a token.
pub const TOKEN_BYTES: usize = 32;

/// A freshly generated token: the only place its plaintext lives. `Debug` never shows it.
#[derive(Clone)]
pub struct SecretToken {
    value: String,
    hash: TokenHash,
}

impl SecretToken {
    /// The plaintext, to send to the client exactly once.
    pub fn expose(&self) -> &str {
        &self.value
    }

    /// The hash the store keeps.
    pub fn hash(&self) -> TokenHash {
        self.hash
    }
}

impl fmt::Debug for SecretToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretToken(<redacted>)")
    }
}

/// A token this server composed itself (a signed JWT), hashed as any other.
#[cfg(feature = "jwt")]
pub(crate) fn issued(value: String) -> SecretToken {
    let hash = TokenHash::of(&value);
    SecretToken { value, hash }
}

/// Generate a new 256-bit token.
pub fn generate() -> SecretToken {
    let mut bytes = [0u8; TOKEN_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    let value = URL_SAFE_NO_PAD.encode(bytes);
    let hash = TokenHash::of(&value);
    SecretToken { value, hash }
}

/// The SHA-256 of a token: what stores keep and look up.
///
/// Equality is constant-time. `Debug` shows only a short prefix, enough to correlate log lines.
#[derive(Clone, Copy)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    /// Hash a presented token.
    pub fn of(token: &str) -> Self {
        let bytes = token.as_bytes();
        if bytes.len() <= MAX_ONE_BLOCK {
            return Self(sha256_one_block(bytes));
        }
        Self(Sha256::digest(bytes).into())
    }

    /// Wrap raw hash bytes read back from a store.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hex, for stores that key by string.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    /// Parse the 64-digit hex form ([`to_hex`](Self::to_hex)), either case.
    pub fn parse_hex(s: &str) -> Option<Self> {
        let digits = s.as_bytes();
        if digits.len() != 64 {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
            let pair = std::str::from_utf8(pair).ok()?;
            *byte = u8::from_str_radix(pair, 16).ok()?;
        }
        Some(Self(bytes))
    }
}

/// The longest message SHA-256 pads into a single 64-byte block (our tokens are 43 bytes).
const MAX_ONE_BLOCK: usize = 55;

/// SHA-256 of a message of at most [`MAX_ONE_BLOCK`] bytes: the padded block is built on the
/// stack and compressed once (with the CPU's SHA extensions where present), skipping the
/// streaming hasher's buffering — this runs on every bearer check.
fn sha256_one_block(message: &[u8]) -> [u8; 32] {
    const INITIAL: [u32; 8] = [
        0x6a09_e667,
        0xbb67_ae85,
        0x3c6e_f372,
        0xa54f_f53a,
        0x510e_527f,
        0x9b05_688c,
        0x1f83_d9ab,
        0x5be0_cd19,
    ];
    debug_assert!(message.len() <= MAX_ONE_BLOCK);
    let mut block = [0u8; 64];
    block[..message.len()].copy_from_slice(message);
    block[message.len()] = 0x80;
    block[56..].copy_from_slice(&(message.len() as u64 * 8).to_be_bytes());
    let mut state = INITIAL;
    sha2::compress256(
        &mut state,
        std::slice::from_ref(sha2::digest::generic_array::GenericArray::from_slice(
            &block,
        )),
    );
    let mut out = [0u8; 32];
    for (chunk, word) in out.chunks_exact_mut(4).zip(state) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

impl PartialEq for TokenHash {
    fn eq(&self, other: &Self) -> bool {
        // Constant time: every word is compared, no early exit, one branch on the combined
        // difference (four XOR-ORs instead of subtle's per-byte barriers; this is the map's key
        // comparison on every bearer check).
        let word = |b: &[u8; 32], i: usize| {
            u64::from_ne_bytes([
                b[i],
                b[i + 1],
                b[i + 2],
                b[i + 3],
                b[i + 4],
                b[i + 5],
                b[i + 6],
                b[i + 7],
            ])
        };
        let diff = (0..4).fold(0u64, |acc, w| {
            acc | (word(&self.0, w * 8) ^ word(&other.0, w * 8))
        });
        std::hint::black_box(diff) == 0
    }
}

impl Eq for TokenHash {}

impl Hash for TokenHash {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // The bytes are a SHA-256 output over server-generated randomness; the first eight are
        // already uniform, so hashing them again would only cost time.
        state.write_u64(u64::from_le_bytes(
            self.0[..8].try_into().unwrap_or_default(),
        ));
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({}…)", hex(&self.0[..4]))
    }
}

/// The identifier of a grant: the family of every access and refresh token that descends from
/// one authorization (a code exchange, a password or client-credentials grant). Not a secret.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GrantId(u128);

impl GrantId {
    /// A new random grant id.
    pub fn generate() -> Self {
        Self(rand::rng().next_u64() as u128 | ((rand::rng().next_u64() as u128) << 64))
    }

    /// The raw value.
    pub fn as_u128(self) -> u128 {
        self.0
    }

    /// From a raw value read back from a store.
    pub fn from_u128(v: u128) -> Self {
        Self(v)
    }

    /// Parse the 32-digit hex form.
    pub fn parse_hex(s: &str) -> Option<Self> {
        if s.len() != 32 {
            return None;
        }
        u128::from_str_radix(s, 16).ok().map(Self)
    }
}

impl fmt::Display for GrantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for GrantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GrantId({self})")
    }
}

/// Whether `s` is a syntactically valid RFC 6750 §2.1 `b64token`:
/// `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
pub fn is_b64token(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 0xf) as usize] as char);
    }
    s
}

/// Compare two byte strings in constant time (for equal lengths).
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Whether `presented` hashes (SHA-256) to `stored`, compared in constant time: how client
/// secrets and demo passwords are checked.
pub(crate) fn sha256_matches(presented: &str, stored: &[u8; 32]) -> bool {
    TokenHash::of(presented) == TokenHash::from_bytes(*stored)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_match_in_constant_time_only_when_equal() {
        let stored: [u8; 32] = Sha256::digest(b"s3cret").into();
        assert!(sha256_matches("s3cret", &stored));
        assert!(!sha256_matches("s3cre", &stored));
        assert!(!sha256_matches("", &stored));
        let long = "x".repeat(100); // past one block: the streaming path
        assert!(sha256_matches(
            &long,
            &Sha256::digest(long.as_bytes()).into()
        ));
    }

    #[test]
    fn one_block_hash_is_sha256() {
        // Every length either side of the one-block limit, against the streaming hasher and a
        // published vector.
        let text: String = (0..200)
            .map(|i| char::from(b'!' + (i % 90) as u8))
            .collect();
        for len in 0..=130 {
            let m = &text[..len];
            let expected: [u8; 32] = Sha256::digest(m.as_bytes()).into();
            assert_eq!(TokenHash::of(m).as_bytes(), &expected, "length {len}");
        }
        assert_eq!(
            TokenHash::of("abc").to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn tokens_are_unique_and_url_safe() {
        let a = generate();
        let b = generate();
        assert_ne!(a.expose(), b.expose());
        assert!(is_b64token(a.expose()));
        assert!(
            a.expose()
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
    }

    #[test]
    fn b64token_grammar() {
        assert!(is_b64token("abc-._~+/=="));
        assert!(!is_b64token("=="));
        assert!(!is_b64token("a b"));
        assert!(!is_b64token("a=b"));
        assert!(!is_b64token(""));
    }

    #[test]
    fn grant_id_round_trips_through_hex() {
        let id = GrantId::generate();
        assert_eq!(GrantId::parse_hex(&id.to_string()), Some(id));
    }
}
