//! OpenID Connect relying parties nobody here wrote, against the real quickstart process:
//! - the `openidconnect` crate (v4): discovery (with the RP-Initiated Logout metadata), the code
//!   flow with PKCE, state and nonce, the ID token verified with its own JOSE code against the
//!   published keys (signature, issuer, audience, expiry, nonce, `at_hash`), userinfo, a refresh
//!   whose new ID token it verifies again, and logout;
//! - panva's `openid-client` (v6, npm, `tests/interop/node/openid.mjs`) does the same, with its
//!   non-repudiation checks on (the ID token's signature verified, not only its claims).
//!
//! The user signs in over HTTP, as the browser would post the quickstart's login page.

use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, CsrfToken, IssuerUrl, LogoutRequest, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PostLogoutRedirectUrl, ProviderMetadataWithLogout,
    RedirectUrl, Scope, TokenResponse,
    core::{CoreAuthenticationFlow, CoreClient, CoreUserInfoClaims},
    reqwest,
};

use crate::support::{
    form, http,
    node::{clients, node},
    quickstart,
};

/// The quickstart's login page, signed in as test/test: the redirect it answers with.
async fn sign_in(authorize: &str) -> openidconnect::url::Url {
    let page = http(
        ::http::Request::get(authorize)
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap(),
    )
    .await;
    assert_eq!(page.status, 200, "{}", String::from_utf8_lossy(&page.body));
    let cookie = page.cookie();
    let html = String::from_utf8_lossy(&page.body).into_owned();
    let field = |name: &str| {
        let marker = format!("name=\"{name}\" value=\"");
        let start = html.find(&marker).unwrap() + marker.len();
        html[start..start + html[start..].find('"').unwrap()].to_owned()
    };
    let login = authorize
        .split("/oauth/authorize")
        .next()
        .unwrap()
        .to_owned()
        + "/oauth/authorize/login";
    let mut req = form(
        &login,
        None,
        &format!(
            "handle={}&csrf={}&username=test&password=test&action=approve",
            field("handle"),
            field("csrf")
        ),
    );
    req.headers_mut().insert("cookie", cookie.parse().unwrap());
    let r = http(req).await;
    assert_eq!(r.status, 303);
    openidconnect::url::Url::parse(r.header("location").unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openidconnect_crate_signs_a_user_in_verifies_refreshes_and_logs_out() {
    let qs = quickstart::start(&[]);
    let port = qs.addr.port();
    let http_client = reqwest::ClientBuilder::new()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // Discovery and RFC 8414 metadata: one document, field for field.
    let doc = |path: &'static str| {
        let http_client = http_client.clone();
        async move {
            let url = format!("http://localhost:{port}{path}");
            let r = http_client.get(url).send().await.unwrap();
            assert_eq!(r.status(), 200);
            serde_json::from_slice::<serde_json::Value>(&r.bytes().await.unwrap()).unwrap()
        }
    };
    let openid_configuration = doc("/.well-known/openid-configuration").await;
    assert_eq!(
        openid_configuration,
        doc("/.well-known/oauth-authorization-server").await
    );
    assert_eq!(
        openid_configuration["userinfo_endpoint"],
        format!("http://localhost:{port}/oauth/userinfo")
    );
    let issuer = IssuerUrl::new(format!("http://localhost:{port}")).unwrap();
    let metadata = ProviderMetadataWithLogout::discover_async(issuer, &http_client)
        .await
        .expect("discovery");
    let end_session = metadata
        .additional_metadata()
        .end_session_endpoint
        .clone()
        .expect("end_session_endpoint");
    let client =
        CoreClient::from_provider_metadata(metadata, ClientId::new("quickstart-spa".into()), None)
            .set_redirect_uri(
                RedirectUrl::new(format!("http://127.0.0.1:{port}/callback")).unwrap(),
            );

    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();
    let callback = sign_in(url.as_str()).await;
    let params: std::collections::HashMap<_, _> = callback.query_pairs().into_owned().collect();
    assert_eq!(params["state"], *state.secret());
    assert_eq!(params["iss"], format!("http://localhost:{port}"));

    let tokens = client
        .exchange_code(AuthorizationCode::new(params["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http_client)
        .await
        .expect("code exchange");
    let id_token = tokens.id_token().expect("an ID token");
    let id_verifier = client.id_token_verifier();
    let claims = id_token
        .claims(&id_verifier, &nonce)
        .expect("the ID token verifies");
    assert_eq!(claims.subject().as_str(), "test");
    assert!(claims.auth_time().is_some());
    // The access token is the one the ID token was issued with.
    let expected = claims.access_token_hash().expect("at_hash");
    let actual = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&id_verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(&actual, expected);
    // A nonce other than the request's is refused.
    assert!(
        id_token
            .claims(&id_verifier, &Nonce::new("other".into()))
            .is_err()
    );

    let userinfo: CoreUserInfoClaims = client
        .user_info(
            tokens.access_token().clone(),
            Some(claims.subject().clone()),
        )
        .unwrap()
        .request_async(&http_client)
        .await
        .expect("userinfo");
    assert_eq!(userinfo.email().unwrap().as_str(), "test@example.com");
    assert_eq!(
        userinfo.name().unwrap().get(None).unwrap().as_str(),
        "Test User"
    );

    // A refresh: a new ID token, same user and authentication time (Core §12.2).
    let refreshed = client
        .exchange_refresh_token(tokens.refresh_token().unwrap())
        .unwrap()
        .request_async(&http_client)
        .await
        .expect("refresh");
    let again = refreshed
        .id_token()
        .expect("a new ID token")
        .claims(&id_verifier, |_: Option<&Nonce>| Ok(()))
        .expect("the refreshed ID token verifies");
    assert_eq!(again.subject(), claims.subject());
    assert_eq!(again.auth_time(), claims.auth_time());
    assert!(again.nonce().is_none());

    // RP-initiated logout: the hint names the session, so back at once, with state.
    let logout_url = LogoutRequest::from(end_session)
        .set_id_token_hint(refreshed.id_token().unwrap())
        .set_client_id(ClientId::new("quickstart-spa".into()))
        .set_post_logout_redirect_uri(
            PostLogoutRedirectUrl::new(format!("http://127.0.0.1:{port}/")).unwrap(),
        )
        .set_state(CsrfToken::new("bye".into()))
        .http_get_url();
    let r = http_client.get(logout_url).send().await.unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(
        r.headers()["location"],
        format!("http://127.0.0.1:{port}/?state=bye").as_str()
    );
    // The session's grant is gone.
    let dead = client
        .exchange_refresh_token(refreshed.refresh_token().unwrap())
        .unwrap()
        .request_async(&http_client)
        .await;
    assert!(dead.is_err(), "the refresh token outlived the logout");
    assert!(qs.stderr().contains("LoggedOut"));
}

#[test]
fn openid_client_signs_a_user_in_verifies_refreshes_and_logs_out() {
    let Some(dir) = clients() else { return };
    let qs = quickstart::start(&[]);
    let issuer = format!("http://localhost:{}", qs.addr.port());
    let stdout = node(&dir, "openid.mjs", &[&issuer]);
    let seen: serde_json::Value = serde_json::from_str(stdout.trim()).expect(&stdout);
    assert_eq!(seen["alg"], "RS256");
    assert_eq!(seen["claims"]["sub"], "test");
    assert_eq!(seen["claims"]["iss"], issuer);
    assert_eq!(seen["claims"]["aud"], "quickstart-spa");
    assert!(seen["claims"]["nonce"].is_string());
    assert_eq!(seen["userinfo"]["email"], "test@example.com");
    assert_eq!(seen["refreshed"]["sub"], "test");
    assert!(seen["refreshed"].get("nonce").is_none());
    assert_eq!(seen["refreshAfterLogout"], "invalid_grant");
}
