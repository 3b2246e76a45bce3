//! Our endpoints driven by a client nobody here wrote: the `oauth2` crate (v5), over real HTTP on
//! loopback — password grant then refresh with rotation (the client keeps the new refresh token),
//! client_credentials, authorization code with PKCE S256, revocation.

use crate::support::*;
use oauth2::{
    AuthorizationCode, ClientId, ClientSecret, PkceCodeChallenge, RedirectUrl, RefreshToken,
    ResourceOwnerPassword, ResourceOwnerUsername, RevocationUrl, Scope, StandardRevocableToken,
    TokenResponse, TokenUrl, basic::BasicClient, reqwest,
};

/// oauth2 insists on `https` for revocation (RFC 7009 §2 requires TLS). In a deployment TLS
/// ends in front of the app; here this adapter plays that part: it sends the exact request the
/// client built, to plain HTTP on loopback.
async fn tls_terminated(
    mut request: oauth2::HttpRequest,
) -> Result<oauth2::HttpResponse, reqwest::Error> {
    let uri = request.uri().to_string().replacen("https://", "http://", 1);
    *request.uri_mut() = uri.parse().unwrap();
    let response = http_client()
        .execute(reqwest::Request::try_from(request)?)
        .await?;
    let mut out = http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        out = out.header(name, value);
    }
    Ok(out.body(response.bytes().await?.to_vec()).unwrap())
}

fn http_client() -> reqwest::Client {
    // No redirects: an OAuth client must not follow them on the token endpoint.
    reqwest::ClientBuilder::new()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn password_then_refresh_with_rotation() {
    let h = harness();
    let addr = serve(&h.server).await;
    let client = BasicClient::new(ClientId::new("app".into()))
        .set_client_secret(ClientSecret::new("app-secret".into()))
        .set_token_uri(TokenUrl::new(format!("http://{addr}/oauth/token")).unwrap());
    let http = http_client();

    let first = client
        .exchange_password(
            &ResourceOwnerUsername::new("alice".into()),
            &ResourceOwnerPassword::new("wonderland".into()),
        )
        .request_async(&http)
        .await
        .unwrap();
    assert_eq!(first.expires_in().unwrap().as_secs(), 3600);
    let scopes: Vec<String> = first
        .scopes()
        .unwrap()
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(scopes, ["read", "write"]);
    assert!(h.accepted(first.access_token().secret()).await);

    // The client stores each new refresh token, as it must with rotation.
    let mut refresh = first.refresh_token().unwrap().clone();
    for _ in 0..3 {
        let next = client
            .exchange_refresh_token(&refresh)
            .request_async(&http)
            .await
            .unwrap();
        let rotated = next
            .refresh_token()
            .expect("rotation returns a new refresh token")
            .clone();
        assert_ne!(rotated.secret(), refresh.secret());
        assert!(h.accepted(next.access_token().secret()).await);
        refresh = rotated;
    }
    // Narrower scope through the client's API.
    let narrow = client
        .exchange_refresh_token(&refresh)
        .add_scope(Scope::new("read".into()))
        .request_async(&http)
        .await
        .unwrap();
    assert_eq!(narrow.scopes().unwrap().len(), 1);

    // A stale refresh token: the client surfaces the RFC 6749 error response.
    let err = client
        .exchange_refresh_token(&RefreshToken::new(
            first.refresh_token().unwrap().secret().clone(),
        ))
        .request_async(&http)
        .await
        .unwrap_err();
    match err {
        oauth2::RequestTokenError::ServerResponse(r) => {
            assert_eq!(r.error().as_ref(), "invalid_grant");
        }
        e => panic!("unexpected {e:?}"),
    }
}

#[tokio::test]
async fn client_credentials_and_wrong_secret() {
    let h = harness();
    let addr = serve(&h.server).await;
    let token_uri = TokenUrl::new(format!("http://{addr}/oauth/token")).unwrap();
    let client = BasicClient::new(ClientId::new("cc-only".into()))
        .set_client_secret(ClientSecret::new("cc-secret".into()))
        .set_token_uri(token_uri.clone());
    let t = client
        .exchange_client_credentials()
        .add_scope(Scope::new("read".into()))
        .request_async(&http_client())
        .await
        .unwrap();
    assert!(t.refresh_token().is_none());
    assert!(h.accepted(t.access_token().secret()).await);

    let wrong = BasicClient::new(ClientId::new("cc-only".into()))
        .set_client_secret(ClientSecret::new("nope".into()))
        .set_token_uri(token_uri);
    match wrong
        .exchange_client_credentials()
        .request_async(&http_client())
        .await
        .unwrap_err()
    {
        oauth2::RequestTokenError::ServerResponse(r) => {
            assert_eq!(r.error().as_ref(), "invalid_client")
        }
        e => panic!("unexpected {e:?}"),
    }
}

#[tokio::test]
async fn authorization_code_with_pkce_s256_and_revocation() {
    let h = harness();
    let addr = serve(&h.server).await;
    let client = BasicClient::new(ClientId::new("spa".into()))
        .set_token_uri(TokenUrl::new(format!("http://{addr}/oauth/token")).unwrap())
        .set_revocation_url(RevocationUrl::new(format!("https://{addr}/oauth/revoke")).unwrap())
        .set_redirect_uri(RedirectUrl::new("https://spa.example/cb".into()).unwrap());
    let http = http_client();
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    assert_eq!(challenge.method().as_str(), "S256");
    // The app's consent handler mints the code for the challenge the client sent.
    let code = h
        .server
        .issue_authorization_code(
            tower_oauth2::AuthorizationRequest::new("spa", "alice")
                .redirect_uri("https://spa.example/cb")
                .scope("read")
                .code_challenge(challenge.as_str(), Some(challenge.method().as_str())),
        )
        .await
        .unwrap();
    let t = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    assert!(h.accepted(t.access_token().secret()).await);
    let refresh = t.refresh_token().unwrap().clone();

    // Revoking the refresh token takes the whole family with it.
    client
        .revoke_token(StandardRevocableToken::RefreshToken(refresh.clone()))
        .unwrap()
        .request_async(&tls_terminated)
        .await
        .unwrap();
    assert!(!h.accepted(t.access_token().secret()).await);
    assert!(
        client
            .exchange_refresh_token(&refresh)
            .request_async(&http)
            .await
            .is_err()
    );
}
