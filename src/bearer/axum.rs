//! The axum extractor (feature `axum`): take [`TokenInfo`] as a handler argument.
//!
//! ```
//! use axum::{Router, routing::get};
//! use tower_oauth2::bearer::TokenInfo;
//!
//! async fn me(token: TokenInfo) -> String {
//!     format!("hello {}", token.subject.as_deref().unwrap_or("client"))
//! }
//! # fn app(server: tower_oauth2::AuthServer) -> Router {
//! Router::new().route("/api/me", get(me).route_layer(server.bearer_layer()))
//! # }
//! ```

use axum_core::{
    extract::FromRequestParts,
    response::{IntoResponse, Response},
};
use http::{StatusCode, request::Parts};

use super::TokenInfo;

/// The handler asked for [`TokenInfo`] on a route the bearer layer does not guard: a setup
/// mistake, answered with 500 so it is found at once rather than silently allowing access.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct MissingTokenInfo;

impl IntoResponse for MissingTokenInfo {
    fn into_response(self) -> Response {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "route is not guarded by the bearer layer",
        )
            .into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for TokenInfo {
    type Rejection = MissingTokenInfo;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<TokenInfo>()
            .cloned()
            .ok_or(MissingTokenInfo)
    }
}
