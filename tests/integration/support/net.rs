//! Calling the endpoints and the layer: as tower services, and over real HTTP on loopback.

use std::{convert::Infallible, net::SocketAddr};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use tower::{ServiceExt, service_fn};
use tower_oauth2::{AuthServer, BearerLayer, Metadata, TokenInfo};

use super::reply::{Reply, reply};

/// An echo service behind `layer`: answers 200 with the token details it was handed.
pub async fn call_protected(layer: BearerLayer, req: Request<Full<Bytes>>) -> Reply {
    let svc = tower::ServiceBuilder::new()
        .layer(layer)
        .service(service_fn(|req: Request<Full<Bytes>>| async move {
            let info = req.extensions().get::<TokenInfo>().cloned();
            let body = match info {
                Some(i) => serde_json::json!({
                    "client_id": &*i.client_id,
                    "sub": i.subject.as_deref(),
                    "scope": i.scope.as_str(),
                    "exp": i.expires_at,
                }),
                None => serde_json::json!({ "missing": true }),
            };
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body.to_string()))))
        }));
    reply(svc.oneshot(req).await.unwrap()).await
}

/// Serve the whole app (all endpoints and a protected route) on loopback; returns its address.
pub async fn serve(server: &AuthServer) -> SocketAddr {
    use axum::{Extension, Json, Router, routing::get};
    let app = Router::new()
        .route(
            "/api/me",
            get(|Extension(t): Extension<TokenInfo>| async move {
                Json(serde_json::json!({
                    "client_id": &*t.client_id,
                    "user": t.subject.as_deref(),
                    "scope": t.scope.as_str(),
                }))
            }),
        )
        .route_layer(server.bearer_layer())
        .route_service("/oauth/token", server.token_endpoint())
        .route_service("/oauth/revoke", server.revocation_endpoint())
        .route_service("/oauth/introspect", server.introspection_endpoint())
        .route_service(
            "/.well-known/oauth-authorization-server",
            server.metadata_endpoint(Metadata::new("http://localhost")),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// Send a request over real HTTP/1.1 and read the whole reply.
pub async fn http(req: Request<Full<Bytes>>) -> Reply {
    use hyper_util::{client::legacy::Client as HttpClient, rt::TokioExecutor};
    let client = HttpClient::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    reply(client.request(req).await.expect("HTTP request failed")).await
}
