//! Short-lived records: one small primitive every backend implements once, and typed records
//! over it.
//!
//! Everything the flows keep for minutes and use once — a pending authorization request
//! between its validation and the resource owner's decision, and next device codes, DPoP proof
//! `jti`s, registration rate counters, fetched client documents — is a [`RecordType`]: a kind
//! name and an encoding. [`Records`] stores any of them through the same five operations of a
//! [`RecordStore`], so a new kind of record needs a type, never a new backend method.
//!
//! | operation | atomicity |
//! | --- | --- |
//! | [`put_record`](RecordStore::put_record) with [`Put::IfAbsent`] | of concurrent puts on one key with no live record, exactly one writes |
//! | [`take_record`](RecordStore::take_record) | get and delete in one step: of concurrent takes, at most one gets the record |
//! | [`increment`](RecordStore::increment) | an atomic counter; the first increment of a window sets when it lapses |
//!
//! Expiry is judged against the `now` each call passes (the server's [`Clock`]), so tests move
//! time on every backend alike; a backend may also drop a record on its own once it lapsed.
//!
//! ```
//! use tower_oauth2::store::{MemoryStore, records::{Records, RecordKind, RecordType}};
//! use tower_oauth2::token::TokenHash;
//!
//! /// A typed record: a kind and an encoding.
//! #[derive(Debug, PartialEq)]
//! struct Nonce(String);
//!
//! impl RecordType for Nonce {
//!     const KIND: RecordKind = RecordKind::new("nonce");
//!     fn encode(&self) -> Vec<u8> {
//!         self.0.as_bytes().to_vec()
//!     }
//!     fn decode(bytes: &[u8]) -> Option<Self> {
//!         String::from_utf8(bytes.to_vec()).ok().map(Nonce)
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let store = MemoryStore::new();
//! let nonces = Records::<Nonce>::new(&store);
//! let id = TokenHash::of("n-1");
//! let now = 1_000;
//! assert!(nonces.put_if_absent(&id, &Nonce("first".into()), now + 60, now).await.unwrap());
//! assert!(!nonces.put_if_absent(&id, &Nonce("second".into()), now + 60, now).await.unwrap());
//! assert_eq!(nonces.take(&id, now).await.unwrap(), Some(Nonce("first".into())));
//! assert_eq!(nonces.take(&id, now).await.unwrap(), None, "taken once");
//! # });
//! ```
//!
//! [`Clock`]: crate::clock::Clock

use std::{fmt, marker::PhantomData, sync::Arc};

use async_trait::async_trait;

use crate::{clock::UnixTime, error::StoreError, token::TokenHash};

/// The kind of a short-lived record: a namespace in the store, so records of different kinds
/// never meet under one key. A short lowercase name (`[a-z0-9_]`), part of the stored key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecordKind(&'static str);

impl RecordKind {
    /// The kind named `name`.
    ///
    /// # Panics
    /// When `name` is empty, longer than 32 bytes, or holds anything but `[a-z0-9_]` (at compile
    /// time in a `const`).
    pub const fn new(name: &'static str) -> Self {
        let bytes = name.as_bytes();
        assert!(
            !bytes.is_empty() && bytes.len() <= 32,
            "a record kind is 1 to 32 bytes"
        );
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            assert!(
                b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_',
                "a record kind is [a-z0-9_]"
            );
            i += 1;
        }
        Self(name)
    }

    /// Its name.
    pub const fn name(self) -> &'static str {
        self.0
    }
}

/// Where a short-lived record is kept: its kind and the hash of its id (a secret handle, a
/// user code, a URL…), so no id is ever stored in the clear.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecordKey {
    /// The kind of record.
    pub kind: RecordKind,
    /// The hash of its id.
    pub id: TokenHash,
}

impl RecordKey {
    /// The key of the record of `kind` whose id hashes to `id`.
    pub fn new(kind: RecordKind, id: TokenHash) -> Self {
        Self { kind, id }
    }

    /// The key's stored form, `kind:hex(id)`: what the shared stores key their entries by.
    pub fn to_key_string(&self) -> String {
        format!("{}:{}", self.kind.name(), self.id.to_hex())
    }
}

impl fmt::Debug for RecordKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecordKey({}:…)", self.kind.name())
    }
}

/// A short-lived record as the store keeps it: opaque bytes (the record type's encoding) and
/// when it lapses. Its `Debug` shows the size only: what it holds stays out of logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Record {
    /// The encoded record.
    pub data: Arc<[u8]>,
    /// When it lapses; from then on it is not found, and the store may drop it.
    pub expires_at: UnixTime,
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("bytes", &self.data.len())
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// How [`RecordStore::put_record`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    /// Write whatever is there.
    Always,
    /// Write only when no live record is under the key (a lapsed one counts as none): of
    /// concurrent puts, exactly one writes.
    IfAbsent,
    /// Write only when a live record is under the key, replacing it: what an update needs, so
    /// that an update racing a deletion never brings the record back.
    IfPresent,
}

/// The primitive behind every short-lived, single-use record: put with an expiry (optionally
/// only if absent), get, take (get and delete atomically), delete, and an atomic counter with an
/// expiry. Every backend implements it once; typed records ([`Records`]) sit on top.
///
/// A key holds either a record or a counter: give counters kinds of their own. Every method
/// judges expiry against `now`: a record whose `expires_at` is at or before `now` is absent.
#[async_trait]
pub trait RecordStore: Send + Sync + 'static {
    /// Keep `record` under `key` until its `expires_at`. Returns whether it was written (always
    /// `true` with [`Put::Always`]).
    async fn put_record(
        &self,
        key: &RecordKey,
        record: Record,
        mode: Put,
        now: UnixTime,
    ) -> Result<bool, StoreError>;

    /// The live record under `key`.
    async fn get_record(
        &self,
        key: &RecordKey,
        now: UnixTime,
    ) -> Result<Option<Record>, StoreError>;

    /// Remove the record under `key` and return it if it was live, atomically: of concurrent
    /// takes, at most one gets it.
    async fn take_record(
        &self,
        key: &RecordKey,
        now: UnixTime,
    ) -> Result<Option<Record>, StoreError>;

    /// Remove whatever is under `key` (record or counter). Returns whether anything was there.
    async fn delete_record(&self, key: &RecordKey) -> Result<bool, StoreError>;

    /// Move the live record under `key` to lapse at `expires_at` (never sooner than it would
    /// have), keeping its data, atomically. Returns whether a live record was there: a record
    /// deleted or lapsed is not brought back.
    async fn extend_record(
        &self,
        key: &RecordKey,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<bool, StoreError>;

    /// Add one to the counter under `key` and return its new value. A counter that is absent or
    /// lapsed as of `now` starts again at 1 and lapses at `expires_at`; later increments keep
    /// the expiry its first one set (a fixed window).
    async fn increment(
        &self,
        key: &RecordKey,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<u64, StoreError>;
}

/// A kind of short-lived record: its [`RecordKind`] and its encoding. Stored through
/// [`Records`].
pub trait RecordType: Sized {
    /// Its kind, unique among the record types an app uses.
    const KIND: RecordKind;
    /// Its stored form.
    fn encode(&self) -> Vec<u8>;
    /// Read the stored form back; `None` when it is not one (a record from an incompatible
    /// version), which is then treated as absent.
    fn decode(bytes: &[u8]) -> Option<Self>;
}

/// Typed access to the records of one [`RecordType`] in a [`RecordStore`].
pub struct Records<'s, T> {
    store: &'s dyn RecordStore,
    kind: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for Records<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Records").finish_non_exhaustive()
    }
}

impl<'s, T: RecordType> Records<'s, T> {
    /// The records of type `T` in `store`.
    pub fn new(store: &'s dyn RecordStore) -> Self {
        Self {
            store,
            kind: PhantomData,
        }
    }

    fn key(id: &TokenHash) -> RecordKey {
        RecordKey::new(T::KIND, *id)
    }

    /// Write `value` under `id` until `expires_at`, as `mode` says.
    async fn write(
        &self,
        id: &TokenHash,
        value: &T,
        expires_at: UnixTime,
        now: UnixTime,
        mode: Put,
    ) -> Result<bool, StoreError> {
        let record = Record {
            data: value.encode().into(),
            expires_at,
        };
        self.store
            .put_record(&Self::key(id), record, mode, now)
            .await
    }

    /// Keep `value` under `id` until `expires_at`, replacing what was there.
    pub async fn put(
        &self,
        id: &TokenHash,
        value: &T,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        self.write(id, value, expires_at, now, Put::Always)
            .await
            .map(drop)
    }

    /// Keep `value` under `id` until `expires_at` unless a live record is there. Returns whether
    /// it was written: of concurrent calls, exactly one is.
    pub async fn put_if_absent(
        &self,
        id: &TokenHash,
        value: &T,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        self.write(id, value, expires_at, now, Put::IfAbsent).await
    }

    /// Replace the live record under `id` with `value`, lapsing at `expires_at`. Returns whether
    /// one was there (a deleted or lapsed record stays gone).
    pub async fn put_if_present(
        &self,
        id: &TokenHash,
        value: &T,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        self.write(id, value, expires_at, now, Put::IfPresent).await
    }

    /// Let the live record under `id` last until `expires_at` (never shorter). Returns whether
    /// one was there.
    pub async fn extend(
        &self,
        id: &TokenHash,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        self.store
            .extend_record(&Self::key(id), expires_at, now)
            .await
    }

    /// The live record under `id`.
    pub async fn get(&self, id: &TokenHash, now: UnixTime) -> Result<Option<T>, StoreError> {
        let found = self.store.get_record(&Self::key(id), now).await?;
        Ok(found.and_then(|r| T::decode(&r.data)))
    }

    /// The live record under `id` with when it lapses.
    pub async fn get_with_expiry(
        &self,
        id: &TokenHash,
        now: UnixTime,
    ) -> Result<Option<(T, UnixTime)>, StoreError> {
        let found = self.store.get_record(&Self::key(id), now).await?;
        Ok(found.and_then(|r| Some((T::decode(&r.data)?, r.expires_at))))
    }

    /// Remove the record under `id` and return it if it was live: of concurrent calls, at most
    /// one gets it.
    pub async fn take(&self, id: &TokenHash, now: UnixTime) -> Result<Option<T>, StoreError> {
        let taken = self.store.take_record(&Self::key(id), now).await?;
        Ok(taken.and_then(|r| T::decode(&r.data)))
    }

    /// Remove the record under `id`. Returns whether one was there.
    pub async fn delete(&self, id: &TokenHash) -> Result<bool, StoreError> {
        self.store.delete_record(&Self::key(id)).await
    }
}

/// A counter over a [`RecordStore`], in fixed windows: how many times something happened since
/// the window began (rate limits, attempts).
pub struct Counter<'s> {
    store: &'s dyn RecordStore,
    kind: RecordKind,
}

impl fmt::Debug for Counter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Counter")
            .field("kind", &self.kind.name())
            .finish_non_exhaustive()
    }
}

impl<'s> Counter<'s> {
    /// The counters of `kind` in `store`.
    pub fn new(store: &'s dyn RecordStore, kind: RecordKind) -> Self {
        Self { store, kind }
    }

    /// Count one more under `id` and return the count: a window that is absent or over as of
    /// `now` starts again at 1 and lasts `window` seconds.
    pub async fn hit(&self, id: &TokenHash, window: u64, now: UnixTime) -> Result<u64, StoreError> {
        let key = RecordKey::new(self.kind, *id);
        self.store
            .increment(&key, now.saturating_add(window), now)
            .await
    }

    /// Forget the count under `id`.
    pub async fn reset(&self, id: &TokenHash) -> Result<bool, StoreError> {
        self.store
            .delete_record(&RecordKey::new(self.kind, *id))
            .await
    }
}

/// Make a serde type a [`RecordType`] of kind `$kind`, stored as its JSON: what most records
/// are (a pending request, a device code, a stored client…).
macro_rules! json_record {
    ($ty:ty, $kind:literal) => {
        impl $crate::store::records::RecordType for $ty {
            const KIND: $crate::store::records::RecordKind =
                $crate::store::records::RecordKind::new($kind);

            fn encode(&self) -> Vec<u8> {
                serde_json::to_vec(self).unwrap_or_default()
            }

            fn decode(bytes: &[u8]) -> Option<Self> {
                serde_json::from_slice(bytes).ok()
            }
        }
    };
}
pub(crate) use json_record;
