//! The claims of an access token, and the app's own claims through a [`ClaimsHook`].

use serde::Serialize;
use serde_json::Value;

/// The claims of an RFC 9068 access token.
#[derive(Serialize)]
pub(crate) struct AccessClaims<'a> {
    /// First, so a token's route (the `jti`'s first digits, `Route::of_token`) is read from the
    /// payload's first 16 characters without decoding the rest.
    pub(crate) jti: &'a str,
    pub(crate) iss: &'a str,
    pub(crate) sub: &'a str,
    pub(crate) aud: &'a [&'a str],
    pub(crate) exp: u64,
    pub(crate) iat: u64,
    pub(crate) client_id: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub(crate) scope: &'a str,
    /// `client_credentials` on a token with no user behind it (the client acts for itself, and
    /// `sub` is its id, RFC 9068 §2.2): said outright, so that a user whose id happens to equal
    /// a client id is never taken for a client. Auth0 names the claim the same way.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) gty: Option<&'static str>,
    /// The app's own claims ([`ClaimsHook`]), without any of the names above.
    #[serde(flatten)]
    pub(crate) extra: serde_json::Map<String, Value>,
}

/// The claims this server sets itself, and a few whose meaning the app must not fake: an app's
/// claims hook cannot add or change these.
pub const RESERVED_CLAIMS: [&str; 12] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "client_id",
    "scope",
    "cnf",
    "typ",
    "gty",
];

/// What an app's [`ClaimsHook`] is told about the token being issued.
#[derive(Debug)]
#[non_exhaustive]
pub struct ClaimsContext<'a> {
    /// The client it is for.
    pub client_id: &'a str,
    /// The user, when there is one.
    pub subject: Option<&'a str>,
    /// The scope it carries.
    pub scope: &'a crate::scope::Scope,
    /// The resources it is for (RFC 8707; its `aud`), empty when the request named none.
    pub audience: &'a crate::resource::Resources,
}

/// Adds an app's claims to JWT access tokens (say `roles`, `groups`, `tenant`, RFC 9068 §2.2.3).
/// It cannot change the registered ones: names in [`RESERVED_CLAIMS`] are dropped, with a
/// warning. A closure `Fn(&ClaimsContext<'_>) -> serde_json::Map<String, Value>` is one.
pub trait ClaimsHook: Send + Sync + 'static {
    /// The extra claims for this token.
    fn claims(&self, ctx: &ClaimsContext<'_>) -> serde_json::Map<String, Value>;
}

impl<F> ClaimsHook for F
where
    F: Fn(&ClaimsContext<'_>) -> serde_json::Map<String, Value> + Send + Sync + 'static,
{
    fn claims(&self, ctx: &ClaimsContext<'_>) -> serde_json::Map<String, Value> {
        self(ctx)
    }
}

/// The app's claims for a token, the reserved names taken out.
pub(crate) fn extra_claims(
    hook: Option<&dyn ClaimsHook>,
    ctx: &ClaimsContext<'_>,
) -> serde_json::Map<String, Value> {
    let Some(hook) = hook else {
        return serde_json::Map::new();
    };
    let mut extra = hook.claims(ctx);
    for name in RESERVED_CLAIMS {
        if extra.remove(name).is_some() {
            tracing::warn!(
                claim = name,
                "the claims hook may not set a registered claim; dropped"
            );
        }
    }
    extra
}
