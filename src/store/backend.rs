//! What the shared backends (Redis, PostgreSQL) have in common: their listener's thread, the
//! bound on every call, where their connections come from, and URLs fit for logs.

use std::time::Duration;

use crate::error::StoreError;

/// Run a store's announcement listener on a thread of its own, with a single-threaded runtime:
/// an announcement is then applied as soon as it arrives, not after whatever the app's runtime
/// has queued (under load, that queue is milliseconds long — enough for a revoked token to be
/// served again after its revocation was acknowledged).
pub(crate) fn spawn_listener(name: &str, task: impl Future<Output = ()> + Send + 'static) {
    let spawned = std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime.block_on(task),
                Err(e) => tracing::error!(error = %e, "no runtime for the invalidation listener"),
            }
        });
    if let Err(e) = spawned {
        // The cache then stays bypassed: slower, never wrong.
        tracing::error!(error = %e, "the invalidation listener's thread could not start");
    }
}

/// Run one backend call, bounded by `timeout` (connecting and waiting for a connection
/// included): past it, [`StoreError::Timeout`].
pub(crate) async fn within<T>(
    timeout: Duration,
    call: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(timeout, call)
        .await
        .map_err(|_| StoreError::Timeout)?
}

/// Where a shared store's connections come from: a URL the store connects to, or a connection
/// (pool, manager) the app already has. Its `Debug` never shows a password in the URL.
#[derive(Clone)]
pub(crate) enum Source<C> {
    /// Connected from this URL.
    Url(String),
    /// The app's own.
    Given(C),
}

impl<C> std::fmt::Debug for Source<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Url(url) => f.write_str(&redact_url(url)),
            Self::Given(_) => f.write_str("<the app's own connection>"),
        }
    }
}

/// A URL with any password replaced (`redis://user:***@host`).
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    // The userinfo ends at the last '@' before the path.
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            let password = if userinfo.contains(':') { ":***" } else { "" };
            format!("{scheme}://{user}{password}{}", &rest[at..])
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_are_redacted_from_urls() {
        let cases = [
            ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379"),
            ("redis://:s3cret@host:6379/0", "redis://:***@host:6379/0"),
            ("redis://user:s3cret@host", "redis://user:***@host"),
            ("redis://user@host", "redis://user@host"),
            ("rediss://u:p@ss@host/x@y", "rediss://u:***@host/x@y"),
            ("not a url", "not a url"),
        ];
        for (url, shown) in cases {
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }
}
