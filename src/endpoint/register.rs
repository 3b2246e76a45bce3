//! The registration endpoint (RFC 7591) and its client configuration endpoint (RFC 7592):
//! `POST {path}` registers; `GET`, `PUT` and `DELETE {path}/{client_id}` read, replace and
//! delete a registration with its registration access token.

use http::{
    HeaderMap, HeaderValue, Method, Request, StatusCode,
    header::{ALLOW, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE},
};
use http_body::Body;
use serde_json::{Map, Value};

use super::{
    body,
    future::endpoint_service,
    response::{self, EndpointResponse},
};
use crate::{
    error::{BoxError, ErrorKind, OAuthError},
    events::Event,
    registration::Refusal,
    server::AuthServer,
    wire::header::{single, split_scheme},
};

/// The registration endpoint (RFC 7591 §3) and client configuration endpoint (RFC 7592 §2),
/// from [`AuthServer::registration_endpoint`]. Mount it at the configured path and at
/// `path/{client_id}`, e.g. with axum:
///
/// ```
/// # use tower_oauth2::{AuthServer, InMemoryClients, registration::Registration};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let server = AuthServer::builder()
/// #     .configure(|c| c.issuer = Some("https://auth.example".into()))
/// #     .registration(Registration::new())
/// #     .build()?;
/// let app = axum::Router::new()
///     .route_service("/oauth/register", server.registration_endpoint())
///     .route_service("/oauth/register/{client_id}", server.registration_endpoint());
/// # let _: axum::Router = app;
/// # Ok(())
/// # }
/// ```
///
/// Without [`AuthServerBuilder::registration`](crate::AuthServerBuilder::registration) it
/// answers 404.
#[derive(Clone, Debug)]
pub struct RegistrationEndpoint {
    server: AuthServer,
}

impl RegistrationEndpoint {
    /// The endpoint for `server`.
    pub fn new(server: AuthServer) -> Self {
        Self { server }
    }
}

endpoint_service!(RegistrationEndpoint, |server, req| handle(server, req));

fn json_response(status: StatusCode, body: &Map<String, Value>) -> EndpointResponse {
    response::json(status, response::to_json(body))
}

/// The `Bearer` credentials of a request: `Ok(None)` when there are none.
fn bearer(headers: &HeaderMap) -> Result<Option<String>, OAuthError> {
    let Some(value) = single(headers, AUTHORIZATION, "Authorization")? else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| OAuthError::invalid_request("malformed Authorization header"))?;
    let (scheme, token) = split_scheme(value);
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || token.contains(' ') {
        return Err(OAuthError::invalid_request(
            "use Authorization: Bearer <token>",
        ));
    }
    Ok(Some(token.to_owned()))
}

/// RFC 7591 §3.1: the metadata is a JSON document.
fn check_json(headers: &HeaderMap) -> Result<(), OAuthError> {
    let json = single(headers, CONTENT_TYPE, "Content-Type")?
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
    if json {
        Ok(())
    } else {
        Err(OAuthError::invalid_client_metadata(
            "send the client metadata as Content-Type: application/json",
        ))
    }
}

async fn handle<B>(server: AuthServer, req: Request<B>) -> EndpointResponse
where
    B: Body,
    B::Error: Into<BoxError>,
{
    let Some(registry) = server.inner.registry.clone() else {
        return response::json(
            StatusCode::NOT_FOUND,
            b"{\"error\":\"invalid_request\",\"error_description\":\"registration is not enabled\"}".to_vec(),
        );
    };
    let (parts, body) = req.into_parts();
    let limit = server.config().max_body_bytes;
    let answer = async {
        let target = registry.client_in_path(parts.uri.path()).map_err(|()| {
            Refusal::Error(OAuthError::invalid_request(
                "not a registration or client configuration URL",
            ))
        })?;
        let token = bearer(&parts.headers)?;
        match (target, &parts.method) {
            (None, &Method::POST) => {
                check_json(&parts.headers)?;
                let bytes = body::read_capped(&parts.headers, body, limit).await?;
                let done = registry.register(&bytes, token.as_deref()).await?;
                for client_id in done.expired {
                    server.emit(Event::ClientExpired { client_id });
                }
                server.emit(Event::ClientRegistered {
                    client_id: done.client_id,
                    confidential: done.confidential,
                    with_initial_access_token: token.is_some(),
                });
                Ok(json_response(StatusCode::CREATED, &done.body))
            }
            (None, _) => Err(method_not_allowed("POST")),
            (Some(id), &Method::GET) => {
                let body = registry.read(id, token.as_deref()).await?;
                Ok(json_response(StatusCode::OK, &body))
            }
            (Some(id), &Method::PUT) => {
                check_json(&parts.headers)?;
                let bytes = body::read_capped(&parts.headers, body, limit).await?;
                let body = registry.update(id, token.as_deref(), &bytes).await?;
                server.emit(Event::ClientUpdated {
                    client_id: id.into(),
                });
                Ok(json_response(StatusCode::OK, &body))
            }
            (Some(id), &Method::DELETE) => {
                registry.delete(id, token.as_deref()).await?;
                server.emit(Event::ClientDeleted {
                    client_id: id.into(),
                });
                let mut res = response::json(StatusCode::NO_CONTENT, Vec::new());
                res.headers_mut().remove(CONTENT_TYPE);
                Ok(res)
            }
            (Some(_), _) => Err(method_not_allowed("GET, PUT, DELETE")),
        }
    }
    .await;
    answer.unwrap_or_else(|refusal| refused(&server, refusal))
}

fn method_not_allowed(allow: &'static str) -> Refusal {
    Refusal::Error(OAuthError::new(
        ErrorKind::MethodNotAllowed,
        match allow {
            "POST" => "use POST to register",
            _ => "use GET, PUT or DELETE on a registration",
        },
    ))
}

fn refused(server: &AuthServer, refusal: Refusal) -> EndpointResponse {
    let realm = &server.config().realm;
    match refusal {
        Refusal::Error(e) => {
            let mut res = response::error(&e, realm, false);
            if e.kind() == ErrorKind::MethodNotAllowed {
                let allow = if e.description() == Some("use POST to register") {
                    "POST"
                } else {
                    "GET, PUT, DELETE"
                };
                res.headers_mut()
                    .insert(ALLOW, HeaderValue::from_static(allow));
            }
            if e.kind() == ErrorKind::InvalidToken {
                let challenge = format!(
                    "Bearer realm=\"{}\", error=\"invalid_token\"",
                    crate::wire::header::quote(realm)
                );
                if let Ok(v) = HeaderValue::from_str(&challenge) {
                    res.headers_mut().insert(WWW_AUTHENTICATE, v);
                }
            }
            res
        }
        Refusal::Limited {
            bound,
            retry_after,
            description,
        } => {
            server.emit(Event::RegistrationLimited { bound });
            let mut body = Map::new();
            body.insert("error".into(), "temporarily_unavailable".into());
            body.insert("error_description".into(), description.into());
            let mut res = json_response(StatusCode::TOO_MANY_REQUESTS, &body);
            res.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(retry_after));
            res
        }
    }
}

impl AuthServer {
    /// The registration endpoint (RFC 7591) and client configuration endpoint (RFC 7592) as a
    /// tower `Service`; see [`AuthServerBuilder::registration`](crate::AuthServerBuilder::registration).
    pub fn registration_endpoint(&self) -> RegistrationEndpoint {
        RegistrationEndpoint::new(self.clone())
    }

    /// Report every client registration that lapsed (unused or idle) and was not reported yet
    /// — an [`Event::ClientExpired`] each — freeing its place among
    /// [`Registration::max_clients`](crate::registration::Registration::max_clients); the
    /// number reported. Lapsed registrations are reported anyway when a new registration takes
    /// their place; call this (say, daily) to hear of them sooner. One store read per place
    /// (`max_clients` of them). Without registration, 0.
    pub async fn sweep_registrations(&self) -> Result<u64, crate::error::StoreError> {
        let Some(registry) = &self.inner.registry else {
            return Ok(0);
        };
        let expired = registry.sweep().await?;
        let count = expired.len() as u64;
        for client_id in expired {
            self.emit(Event::ClientExpired { client_id });
        }
        Ok(count)
    }

    /// A client obtained a token: a registered one's registration moves on.
    pub(crate) async fn client_used(&self, client: &crate::client::Client) {
        if let Some(registry) = &self.inner.registry {
            if let Err(e) = registry.used(client).await {
                tracing::warn!(error = %e, client_id = client.id(), "could not extend a registration in use");
            }
        }
    }
}
