//! RFC 6749 §4.1 with PKCE (RFC 7636): minting codes, exchanging them, single use.

use crate::support::*;
use tower_oauth2::{AuthServer, AuthorizationRequest, Client, error::ErrorKind};

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const CB: &str = "https%3A%2F%2Fapp.example%2Fcb";

async fn code(h: &Harness, req: AuthorizationRequest) -> String {
    h.server.issue_authorization_code(req).await.unwrap()
}

fn app_request() -> AuthorizationRequest {
    AuthorizationRequest::new("app", "alice")
        .redirect_uri("https://app.example/cb")
        .scope("read")
        .code_challenge(CHALLENGE, Some("S256"))
}

#[tokio::test]
async fn code_exchange_with_pkce_s256() {
    let h = harness();
    let c = code(&h, app_request()).await;
    assert_eq!(c.len(), 46);
    let v = h
        .token(
            Some(APP),
            &format!(
                "grant_type=authorization_code&code={c}&redirect_uri={CB}&code_verifier={VERIFIER}"
            ),
        )
        .await
        .assert_token();
    assert_eq!(v["scope"], "read");
    assert!(v["refresh_token"].as_str().is_some());
    let info = h
        .server
        .validate_access_token(v["access_token"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.grant.subject.as_deref(), Some("alice"));
    assert_eq!(h.event_names(), ["token_issued"]);
}

#[tokio::test]
async fn wrong_or_missing_verifier_fails_and_leaves_the_code_usable() {
    let h = harness();
    let c = code(&h, app_request()).await;
    let wrong = "x".repeat(43);
    let exchange = format!("grant_type=authorization_code&code={c}&redirect_uri={CB}");
    h.assert_token_errors(&[
        (
            Some(APP),
            &format!("{exchange}&code_verifier={wrong}"),
            400,
            "invalid_grant",
        ),
        (Some(APP), &exchange, 400, "invalid_grant"),
        (
            Some(APP),
            &format!("{exchange}&code_verifier=short"),
            400,
            "invalid_grant",
        ),
    ])
    .await;
    assert_eq!(h.store().counts().grants, 0);
    h.token(
        Some(APP),
        &format!(
            "grant_type=authorization_code&code={c}&redirect_uri={CB}&code_verifier={VERIFIER}"
        ),
    )
    .await
    .assert_token();
}

#[tokio::test]
async fn plain_pkce_only_when_enabled() {
    let h = harness();
    let plain = "a".repeat(50);
    let err = h
        .server
        .issue_authorization_code(
            AuthorizationRequest::new("spa", "alice")
                .redirect_uri("https://spa.example/cb")
                .code_challenge(&plain, Some("plain")),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_request");
    // The method defaults to plain when absent (RFC 7636 §4.3): refused too.
    let err = h
        .server
        .issue_authorization_code(
            AuthorizationRequest::new("spa", "alice")
                .redirect_uri("https://spa.example/cb")
                .code_challenge(&plain, None),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_request");

    let h = harness_with(|c| c.pkce.allow_plain = true);
    let c = code(
        &h,
        AuthorizationRequest::new("spa", "alice")
            .redirect_uri("https://spa.example/cb")
            .code_challenge(&plain, Some("plain")),
    )
    .await;
    h.token(None, &format!("grant_type=authorization_code&code={c}&redirect_uri=https%3A%2F%2Fspa.example%2Fcb&client_id=spa&code_verifier={plain}"))
        .await
        .assert_token();
}

#[tokio::test]
async fn public_clients_must_use_pkce() {
    let h = harness();
    let err = h
        .server
        .issue_authorization_code(
            AuthorizationRequest::new("spa", "alice").redirect_uri("https://spa.example/cb"),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_request");
    // Confidential clients too, by default (OAuth 2.1, RFC 9700 §2.1.1).
    let without =
        || AuthorizationRequest::new("app", "alice").redirect_uri("https://app.example/cb");
    let err = h
        .server
        .issue_authorization_code(without())
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.description()),
        ("invalid_request", Some("code challenge required"))
    );
    // Unless the policy says otherwise for all of them…
    let h = harness_with(|c| c.pkce.required_for_confidential_clients = false);
    code(&h, without()).await;
    // …or a legacy confidential client is let off by name; the others still need it.
    let legacy = Client::confidential("legacy", "legacy-secret")
        .redirect_uri("https://legacy.example/cb")
        .pkce_optional(true)
        .build()
        .unwrap();
    assert!(legacy.pkce_optional());
    let server = AuthServer::builder()
        .clients(clients().with(legacy))
        .build()
        .unwrap();
    server
        .issue_authorization_code(AuthorizationRequest::new("legacy", "alice"))
        .await
        .unwrap();
    let err = server
        .issue_authorization_code(without())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_request");
    // A public client can never be let off.
    let err = Client::public("careless")
        .redirect_uri("https://careless.example/cb")
        .pkce_optional(true)
        .build()
        .unwrap_err();
    assert!(matches!(err, tower_oauth2::ConfigError::Pkce(_)), "{err:?}");
}

#[tokio::test]
async fn malformed_challenge_is_refused() {
    let h = harness();
    for bad in [
        "short",
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-c=",
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cMM",
    ] {
        let err = h
            .server
            .issue_authorization_code(
                AuthorizationRequest::new("spa", "alice")
                    .redirect_uri("https://spa.example/cb")
                    .code_challenge(bad, Some("S256")),
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), "invalid_request", "{bad}");
    }
}

#[tokio::test]
async fn verifier_without_challenge_is_a_downgrade_and_fails() {
    // A code minted without a challenge (PKCE not required of confidential clients here).
    let h = harness_with(|c| c.pkce.required_for_confidential_clients = false);
    let c = code(
        &h,
        AuthorizationRequest::new("app", "alice").redirect_uri("https://app.example/cb"),
    )
    .await;
    h.token(
        Some(APP),
        &format!(
            "grant_type=authorization_code&code={c}&redirect_uri={CB}&code_verifier={VERIFIER}"
        ),
    )
    .await
    .assert_error(400, "invalid_grant");
}

#[tokio::test]
async fn redirect_uri_must_match_exactly() {
    let h = harness();
    let c = code(&h, app_request()).await;
    for uri in [
        "",
        "&redirect_uri=https%3A%2F%2Fapp.example%2Fcb%2F",
        "&redirect_uri=https%3A%2F%2Fevil.example%2Fcb",
    ] {
        h.token(
            Some(APP),
            &format!("grant_type=authorization_code&code={c}&code_verifier={VERIFIER}{uri}"),
        )
        .await
        .assert_error(400, "invalid_grant");
    }
    // At authorization: unregistered → refused; omitted with one registered URI → fine.
    let err = h
        .server
        .issue_authorization_code(
            AuthorizationRequest::new("app", "alice").redirect_uri("https://evil.example/cb"),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_request");
    let c = code(
        &h,
        AuthorizationRequest::new("app", "alice").code_challenge(CHALLENGE, Some("S256")),
    )
    .await;
    h.token(
        Some(APP),
        &format!("grant_type=authorization_code&code={c}&code_verifier={VERIFIER}"),
    )
    .await
    .assert_token();
    // Omitted with two registered URIs → refused.
    let err = h
        .server
        .issue_authorization_code(
            AuthorizationRequest::new("spa", "alice").code_challenge(CHALLENGE, Some("S256")),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_request");
}

#[tokio::test]
async fn second_use_of_a_code_fails_and_revokes_what_the_first_issued() {
    let h = harness();
    let c = code(&h, app_request()).await;
    let body = format!(
        "grant_type=authorization_code&code={c}&redirect_uri={CB}&code_verifier={VERIFIER}"
    );
    let v = h.token(Some(APP), &body).await.assert_token();
    let at = v["access_token"].as_str().unwrap();
    assert!(h.accepted(at).await);
    h.token(Some(APP), &body)
        .await
        .assert_error(400, "invalid_grant");
    assert!(!h.accepted(at).await);
    h.refresh(APP, v["refresh_token"].as_str().unwrap())
        .await
        .assert_error(400, "invalid_grant");
    assert_eq!(h.event_names(), ["token_issued", "reuse_detected"]);
}

#[tokio::test]
async fn codes_are_short_lived_and_bound_to_their_client() {
    let h = harness();
    let c = code(&h, app_request()).await;
    let body = format!(
        "grant_type=authorization_code&code={c}&redirect_uri={CB}&code_verifier={VERIFIER}"
    );
    h.token(Some(("other", "other-secret")), &body)
        .await
        .assert_error(400, "invalid_grant");
    h.advance(60);
    let r = h.token(Some(APP), &body).await;
    r.assert_error(400, "invalid_grant");
    assert_eq!(r.json()["error_description"], "authorization code expired");
    h.assert_token_errors(&[
        (
            Some(APP),
            "grant_type=authorization_code&code=nope",
            400,
            "invalid_grant",
        ),
        (
            Some(APP),
            "grant_type=authorization_code",
            400,
            "invalid_request",
        ),
    ])
    .await;
}

#[tokio::test]
async fn minting_checks_the_client_and_scope() {
    let h = harness();
    let err = h
        .server
        .issue_authorization_code(AuthorizationRequest::new("ghost", "alice"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidClient);
    let err = h
        .server
        .issue_authorization_code(AuthorizationRequest::new("cc-only", "alice"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "unauthorized_client");
    let err = h
        .server
        .issue_authorization_code(app_request().scope("admin"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_scope");
}
