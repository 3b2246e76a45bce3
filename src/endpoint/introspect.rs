//! RFC 7662 token introspection.

use std::sync::Arc;

use http::StatusCode;
use serde::Serialize;

use super::{
    response::{self, EndpointResponse},
    revoke::access_first,
};
use crate::{
    client::Client,
    config::IntrospectionAccess,
    error::ErrorKind,
    error::OAuthError,
    resource::Resources,
    server::AuthServer,
    store::{GrantRecord, RefreshTokenState},
    token::TokenHash,
    wire::form::Form,
};

#[derive(Serialize)]
struct Active<'a> {
    active: bool,
    #[serde(skip_serializing_if = "str::is_empty")]
    scope: &'a str,
    client_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<&'a str>,
    token_type: &'static str,
    exp: u64,
    iat: u64,
    /// RFC 7662 §2.2 `aud`: the resources (RFC 8707) the token is for; one as a string,
    /// several as an array (RFC 7519 §4.1.3), none: absent.
    #[serde(skip_serializing_if = "Aud::is_none")]
    aud: Aud<'a>,
}

/// An `aud` claim.
#[derive(Serialize)]
#[serde(untagged)]
enum Aud<'a> {
    None,
    One(&'a str),
    Many(Vec<&'a str>),
}

impl<'a> Aud<'a> {
    fn of(resources: &'a Resources) -> Self {
        match resources.len() {
            0 => Self::None,
            1 => Self::One(resources.as_str()),
            _ => Self::Many(resources.iter().collect()),
        }
    }

    fn is_none(&self) -> bool {
        matches!(self, Self::None)
    }
}

impl<'a> Active<'a> {
    fn new(
        grant: &'a GrantRecord,
        scope: &'a str,
        audience: &'a Resources,
        token_type: &'static str,
        iat: u64,
        exp: u64,
    ) -> Self {
        Self {
            active: true,
            scope,
            client_id: &grant.client_id,
            username: grant.subject.as_deref(),
            sub: grant.subject.as_deref(),
            token_type,
            exp,
            iat,
            aud: Aud::of(audience),
        }
    }
}

pub(super) async fn introspect(
    server: &AuthServer,
    client: &Arc<Client>,
    form: &Form,
) -> Result<EndpointResponse, OAuthError> {
    // RFC 7662 §2.1: the endpoint requires authorization, so that tokens cannot be scanned.
    if !client.is_confidential() {
        return Err(OAuthError::new(
            ErrorKind::InvalidClient,
            "introspection requires client authentication",
        ));
    }
    let allowed = match server.config().introspection {
        IntrospectionAccess::AllowedClients => client.may_introspect(),
        IntrospectionAccess::AnyConfidentialClient => true,
    };
    if !allowed {
        return Err(OAuthError::new(
            ErrorKind::Forbidden,
            "this client may not introspect tokens",
        ));
    }
    let token = form
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("missing token"))?;
    let hash = TokenHash::of(token);
    let now = server.now();
    let store = &server.inner.store;
    let access_first = access_first(form);
    for access in [access_first, !access_first] {
        let body = if access {
            store
                .find_access_token(&hash)
                .await?
                .filter(|r| r.expires_at > now)
                .map(|r| {
                    response::to_json(&Active::new(
                        &r.grant,
                        r.scope.as_str(),
                        &r.audience,
                        "Bearer",
                        r.issued_at,
                        r.expires_at,
                    ))
                })
        } else {
            store
                .find_refresh_token(&hash)
                .await?
                .filter(|r| {
                    r.state == RefreshTokenState::Active
                        && r.expires_at > now
                        && r.grant.expires_at.is_none_or(|e| e > now)
                })
                .map(|r| {
                    response::to_json(&Active::new(
                        &r.grant,
                        r.grant.scope.as_str(),
                        &r.grant.resources,
                        "refresh_token",
                        r.issued_at,
                        r.expires_at,
                    ))
                })
        };
        if let Some(body) = body {
            return Ok(response::json(StatusCode::OK, body));
        }
    }
    // RFC 7662 §2.2: nothing more than this for a token that is not active, whatever the reason.
    Ok(response::json(
        StatusCode::OK,
        br#"{"active":false}"#.to_vec(),
    ))
}
