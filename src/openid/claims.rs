//! The user's claims: where they come from (the app's [`ClaimsSource`]) and which of them a
//! grant's scopes release (OpenID Connect Core §5.4).

use std::{future::Future, sync::Arc};

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::OpenId;
use crate::scope::Scope;

/// The scopes of OpenID Connect Core §5.4 and the claims each releases.
pub const STANDARD_SCOPES: [(&str, &[&str]); 4] = [
    (
        "profile",
        &[
            "name",
            "family_name",
            "given_name",
            "middle_name",
            "nickname",
            "preferred_username",
            "profile",
            "picture",
            "website",
            "gender",
            "birthdate",
            "zoneinfo",
            "locale",
            "updated_at",
        ],
    ),
    ("email", &["email", "email_verified"]),
    ("address", &["address"]),
    ("phone", &["phone_number", "phone_number_verified"]),
];

/// The claims an ID token or a userinfo response carries for the protocol's sake: never the
/// claims source's to set.
pub(crate) const PROTOCOL_CLAIMS: [&str; 13] = [
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "acr",
    "amr",
    "azp",
    "at_hash",
    "sid",
    "c_hash",
];

/// Who the claims are asked for.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClaimsRequest {
    /// The user, as the app knows them (never a pairwise identifier).
    pub subject: Arc<str>,
    /// The client the claims go to.
    pub client_id: Arc<str>,
    /// The scopes granted: only their claims leave the server, whatever the source returns.
    pub scope: Scope,
}

/// Where the user's claims come from: the app's user directory. An async closure
/// `Fn(ClaimsRequest) -> impl Future<Output = serde_json::Map<String, Value>>` is one.
///
/// Return every claim you have for the user: the server keeps only those the granted scopes
/// release (Core §5.4: `profile`, `email`, `address`, `phone`; and the app's own scopes named
/// with [`OpenId::scope_claims`]), and never lets the source set `sub`, `iss`, `aud` or the
/// other protocol claims.
#[async_trait]
pub trait ClaimsSource: Send + Sync + 'static {
    /// The user's claims.
    async fn claims(&self, request: ClaimsRequest) -> Map<String, Value>;
}

#[async_trait]
impl<F, Fut> ClaimsSource for F
where
    F: Fn(ClaimsRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Map<String, Value>> + Send,
{
    async fn claims(&self, request: ClaimsRequest) -> Map<String, Value> {
        self(request).await
    }
}

/// The claims of `all` that `scope` releases under `openid`'s mapping; protocol claims never.
pub(crate) fn allowed_claims(
    openid: &OpenId,
    scope: &Scope,
    all: Map<String, Value>,
) -> Map<String, Value> {
    let released = |name: &str| {
        STANDARD_SCOPES
            .iter()
            .any(|(s, claims)| scope.contains(s) && claims.contains(&name))
            || openid
                .scope_claims
                .iter()
                .any(|(s, claims)| scope.contains(s) && claims.iter().any(|c| c == name))
    };
    all.into_iter()
        .filter(|(name, _)| !PROTOCOL_CLAIMS.contains(&name.as_str()) && released(name))
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_the_scopes_claims_leave() {
        let openid = OpenId::new().scope_claims("groups", ["groups"]);
        let all = json!({
            "name": "Ada", "email": "ada@example.com", "phone_number": "+1",
            "groups": ["admin"], "sub": "forged", "secret_note": "x"
        });
        let Value::Object(all) = all else {
            unreachable!()
        };
        let pick = |scope: &str| {
            let mut names: Vec<String> =
                allowed_claims(&openid, &Scope::parse(scope).unwrap(), all.clone())
                    .keys()
                    .cloned()
                    .collect();
            names.sort();
            names
        };
        assert_eq!(pick("openid"), Vec::<String>::new());
        assert_eq!(pick("openid profile"), ["name"]);
        assert_eq!(pick("openid email groups"), ["email", "groups"]);
        assert_eq!(
            pick("openid profile email phone"),
            ["email", "name", "phone_number"]
        );
    }
}
