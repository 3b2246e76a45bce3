//! Purging: the [`PurgeStore`] concern, and how long a store keeps what it holds, the same on
//! every backend. The Redis scripts and the PostgreSQL statements state these rules in their own
//! language; the memory store calls them.

#[cfg(any(feature = "redis", feature = "postgres"))]
use super::{NewAccessToken, NewRefreshToken};
use async_trait::async_trait;

use crate::{clock::UnixTime, error::StoreError};

/// Deleting what has lapsed: expired or revoked tokens, codes past their retention, lapsed
/// short-lived records. Run it now and then (a shared store also expires keys on its own clock).
#[async_trait]
pub trait PurgeStore: Send + Sync + 'static {
    /// Delete what has expired or been revoked as of `now`. Returns how many entries went.
    async fn purge_expired(&self, now: UnixTime) -> Result<u64, StoreError>;
}

/// How long a redeemed or expired authorization code is kept, so that a second use can still be
/// recognised (and revoke what the first use issued).
pub(crate) const CODE_RETENTION_SECS: u64 = 24 * 3600;

/// How long a grant revoked before it was created (a code's second use racing its first) is
/// remembered, so the late creation is born revoked.
pub(crate) const TOMBSTONE_SECS: u64 = 24 * 3600;

/// The earliest time a grant may go, given the tokens just issued under it: when the last of
/// them has expired. Later tokens only ever move it later. (The memory store drops a grant with
/// its last token instead.)
#[cfg(any(feature = "redis", feature = "postgres"))]
pub(crate) fn grant_purge_at(
    access: &NewAccessToken,
    refresh: Option<&NewRefreshToken>,
) -> UnixTime {
    refresh.map_or(access.expires_at, |r| r.expires_at.max(access.expires_at))
}

/// Whether a token may be deleted at `now`: it expired, or its family was revoked or reached its
/// absolute end.
pub(crate) fn token_purgeable(
    token_expires_at: UnixTime,
    family_revoked: bool,
    family_ends_at: Option<UnixTime>,
    now: UnixTime,
) -> bool {
    token_expires_at <= now || family_revoked || family_ends_at.is_some_and(|end| end <= now)
}

/// Whether an authorization code may be deleted at `now`: past its retention.
pub(crate) fn code_purgeable(expires_at: UnixTime, now: UnixTime) -> bool {
    expires_at.saturating_add(CODE_RETENTION_SECS) <= now
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_purge_cases() {
        // (token expiry, revoked, family end, purgeable at 100)
        let cases = [
            (101, false, None, false),
            (100, false, None, true),
            (50, false, None, true),
            (200, true, None, true),
            (200, false, Some(100), true),
            (200, false, Some(150), false),
        ];
        for (exp, revoked, end, expected) in cases {
            assert_eq!(
                token_purgeable(exp, revoked, end, 100),
                expected,
                "{exp} {revoked} {end:?}"
            );
        }
    }

    #[test]
    fn a_code_is_kept_for_its_retention() {
        assert!(!code_purgeable(100, 100 + CODE_RETENTION_SECS - 1));
        assert!(code_purgeable(100, 100 + CODE_RETENTION_SECS));
        assert!(!code_purgeable(u64::MAX, u64::MAX - 1));
    }
}
