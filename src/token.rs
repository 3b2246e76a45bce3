//! Token generation and hashing.
//!
//! A token is 32 bytes (256 bits) from the thread-local CSPRNG (ChaCha12, seeded and reseeded
//! from the operating system), written as URL-safe base64 without padding, after the three hex
//! digits of its [`Route`]: 46 characters from the RFC 6750 `b64token` set that survive form
//! encoding unescaped. The route names the grant a token belongs to, so a store that spreads
//! grants over several servers (Redis Cluster) finds a token's grant without asking around; it
//! is drawn at random for each grant and reveals nothing. Stores keep only [`TokenHash`]es, the
//! SHA-256 of the whole token, compared in constant time.
//!
//! ```
//! use tower_oauth2::token::{generate, generate_for, GrantId, TokenHash};
//!
//! let token = generate();
//! assert_eq!(token.expose().len(), 46);
//! assert_eq!(TokenHash::of(token.expose()), token.hash());
//! assert!(!format!("{token:?}").contains(token.expose()));
//!
//! // The tokens of a grant carry its route, and so do their hashes.
//! let grant = GrantId::generate();
//! let access = generate_for(grant.route());
//! assert_eq!(TokenHash::of(access.expose()).route(), Some(grant.route()));
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

/// Characters in a generated token: its route's three hex digits, then 43 of base64url.
pub const TOKEN_LEN: usize = ROUTE_DIGITS + 43;

/// Hex digits of a route at the start of a token.
const ROUTE_DIGITS: usize = 3;

/// Which of 4096 shards a grant and all its tokens (and the code it came from) belong to: a store
/// spread over several servers keeps one grant's records together by it (Redis Cluster's hash
/// tag), and finds them from a token alone. Drawn at random per grant; not a secret, and not
/// part of what makes a token unguessable (its 256 random bits are that).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Route(u16);

impl Route {
    /// How many routes there are.
    pub const COUNT: u16 = 1 << (4 * ROUTE_DIGITS);

    /// A random route.
    pub fn random() -> Self {
        Self((rand::rng().next_u32() % u32::from(Self::COUNT)) as u16)
    }

    /// Route number `n` (`0..COUNT`); `None` past the end.
    pub fn new(n: u16) -> Option<Self> {
        (n < Self::COUNT).then_some(Self(n))
    }

    /// Its number, `0..COUNT`.
    pub fn get(self) -> u16 {
        self.0
    }

    /// Every route, in order.
    pub fn all() -> impl Iterator<Item = Self> {
        (0..Self::COUNT).map(Self)
    }

    /// Three lower-case hex digits, as a token starts with.
    pub fn to_hex(self) -> String {
        format!("{:03x}", self.0)
    }

    /// Parse three hex digits (lower case, as [`to_hex`](Self::to_hex) writes them).
    pub fn parse_hex(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() != ROUTE_DIGITS || !b.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
            return None;
        }
        u16::from_str_radix(s, 16).ok().map(Self)
    }

    /// The route a presented token names: a generated token's first three digits, or for a
    /// JWT this server signed, those of its `jti` (which is a generated token, and the
    /// payload's first claim). `None` for anything else (a token of an earlier version, or not
    /// one of ours); a wrong route only makes a lookup find nothing, since the hash is of the
    /// whole token.
    pub fn of_token(token: &str) -> Option<Self> {
        if token.len() == TOKEN_LEN {
            return Self::parse_hex(token.get(..ROUTE_DIGITS)?);
        }
        Self::of_jwt(token)
    }

    /// A JWT's route: its payload starts `{"jti":"` and a route's digits, which the payload's
    /// first 16 base64url characters hold: the first 8 are always `eyJqdGki` (`{"jti"`), the
    /// next 8 decode to `:"`, the three digits and one more byte. Nothing else is decoded
    /// (this runs on every bearer check), nor verified: a route is only where to look.
    fn of_jwt(token: &str) -> Option<Self> {
        let (_, payload) = token.split_once('.')?;
        let head = payload.as_bytes().get(..16)?;
        if &head[..8] != b"eyJqdGki" {
            return None;
        }
        let mut bytes = [0u8; 6];
        for (group, out) in head[8..].chunks_exact(4).zip(bytes.chunks_exact_mut(3)) {
            let mut n = 0u32;
            for &c in group {
                n = n << 6 | u32::from(base64url_value(c)?);
            }
            out.copy_from_slice(&n.to_be_bytes()[1..]);
        }
        if &bytes[..2] != b":\"" {
            return None;
        }
        Self::parse_hex(std::str::from_utf8(&bytes[2..5]).ok()?)
    }
}

/// The value of one base64url character.
fn base64url_value(c: u8) -> Option<u8> {
    Some(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'-' => 62,
        b'_' => 63,
        _ => return None,
    })
}

impl fmt::Debug for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Route({:03x})", self.0)
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:03x}", self.0)
    }
}

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

/// A token this server composed itself (a signed JWT whose `jti` names `route`), hashed as any
/// other.
#[cfg(feature = "jwt")]
pub(crate) fn issued(value: String, route: Route) -> SecretToken {
    let hash = TokenHash::of(&value);
    debug_assert_eq!(hash.route(), Some(route));
    SecretToken {
        value,
        hash: hash.routed(route),
    }
}

/// Generate a new 256-bit token on a random route (a code, a handle: what starts a grant or
/// belongs to none).
pub fn generate() -> SecretToken {
    generate_for(Route::random())
}

/// Generate a new 256-bit token on `route`: a token of a grant goes on the grant's
/// ([`GrantId::route`]).
pub fn generate_for(route: Route) -> SecretToken {
    let mut bytes = [0u8; TOKEN_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    let mut value = String::with_capacity(TOKEN_LEN);
    value.push_str(&route.to_hex());
    URL_SAFE_NO_PAD.encode_string(bytes, &mut value);
    let hash = TokenHash::of(&value);
    SecretToken { value, hash }
}

/// The SHA-256 of a token: what stores keep and look up, with the token's [`Route`] when it
/// names one (the route is where to look, not part of the identity: equality and hashing are of
/// the digest alone).
///
/// Equality is constant-time. `Debug` shows only a short prefix, enough to correlate log lines.
#[derive(Clone, Copy)]
pub struct TokenHash([u8; 32], Option<Route>);

impl TokenHash {
    /// Hash a presented token.
    pub fn of(token: &str) -> Self {
        let bytes = token.as_bytes();
        let route = Route::of_token(token);
        if bytes.len() <= MAX_ONE_BLOCK {
            return Self(sha256_one_block(bytes), route);
        }
        Self(Sha256::digest(bytes).into(), route)
    }

    /// Wrap raw hash bytes read back from a store (no route).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes, None)
    }

    /// The route of the token hashed, when it names one ([`Route::of_token`]).
    pub fn route(&self) -> Option<Route> {
        self.1
    }

    /// The same hash on `route` (a store that knows a token's grant knows its route).
    pub fn routed(self, route: Route) -> Self {
        Self(self.0, Some(route))
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
        Some(Self(bytes, None))
    }
}

/// The longest message SHA-256 pads into a single 64-byte block (our tokens are 46 bytes).
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

/// Bits of a grant id below its route.
const GRANT_ROUTE_SHIFT: u32 = 128 - 4 * ROUTE_DIGITS as u32;

impl GrantId {
    /// A new random grant id, on a random route.
    pub fn generate() -> Self {
        Self::generate_in(Route::random())
    }

    /// A new random grant id on `route` (a grant from a code goes on the code's route, so a
    /// store can redeem the one and create the other in one atomic step).
    pub fn generate_in(route: Route) -> Self {
        let random = rand::rng().next_u64() as u128 | ((rand::rng().next_u64() as u128) << 64);
        let low = random & ((1u128 << GRANT_ROUTE_SHIFT) - 1);
        Self(low | (u128::from(route.0) << GRANT_ROUTE_SHIFT))
    }

    /// Its route: the top twelve bits, which its tokens carry in the clear.
    pub fn route(self) -> Route {
        Route((self.0 >> GRANT_ROUTE_SHIFT) as u16)
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

    #[test]
    fn routes_ride_in_tokens_and_grant_ids() {
        for n in [0, 1, 0xabc, Route::COUNT - 1] {
            let route = Route::new(n).unwrap();
            let id = GrantId::generate_in(route);
            assert_eq!(id.route(), route);
            assert_eq!(id.to_string()[..3], route.to_hex());
            let token = generate_for(route);
            assert_eq!(token.expose().len(), TOKEN_LEN);
            assert!(token.expose().starts_with(&route.to_hex()));
            assert_eq!(token.hash().route(), Some(route));
            assert_eq!(Route::parse_hex(&route.to_hex()), Some(route));
        }
        assert_eq!(Route::new(Route::COUNT), None);
        assert_eq!(Route::all().count(), usize::from(Route::COUNT));
        // What names no route: an old 43-character token, other lengths, upper-case digits.
        assert_eq!(Route::of_token(&"a".repeat(43)), None);
        assert_eq!(Route::of_token(&format!("ABC{}", "a".repeat(43))), None);
        assert_eq!(Route::of_token("abc"), None);
        assert_eq!(Route::of_token(""), None);
        // The route is where to look, not identity.
        let t = generate();
        assert_eq!(TokenHash::from_bytes(*t.hash().as_bytes()), t.hash());
    }

    #[test]
    fn a_jwt_names_its_jti_route() {
        let jti = generate_for(Route::new(0x5e1).unwrap());
        let payload = URL_SAFE_NO_PAD.encode(format!(
            r#"{{"jti":"{}","iss":"https://as.example","exp":1}}"#,
            jti.expose()
        ));
        let jwt = format!("eyJhbGciOiJFUzI1NiJ9.{payload}.c2ln");
        assert_eq!(Route::of_token(&jwt), Route::new(0x5e1));
        // A jti elsewhere than first, one that is not ours, a payload that is not base64url.
        let later = URL_SAFE_NO_PAD.encode(format!(r#"{{"iss":"x","jti":"{}"}}"#, jti.expose()));
        assert_eq!(Route::of_token(&format!("e30.{later}.c2ln")), None);
        let other = URL_SAFE_NO_PAD.encode(r#"{"jti":"xyz-not-ours"}"#);
        assert_eq!(Route::of_token(&format!("e30.{other}.c2ln")), None);
        assert_eq!(Route::of_token("e30.%%%%%%%%%%%%%%%%%%%%.c2ln"), None);
        assert_eq!(Route::of_token("e30.e30"), None);
    }
}
