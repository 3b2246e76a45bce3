//! Resource indicators (RFC 8707) through the public API: `resource` at the authorization
//! endpoint, PAR and the token endpoint (every grant), `invalid_target` at each, what the app's
//! consent page sees, narrowing at the code exchange and at a refresh, the default resource,
//! the audience of opaque and JWT access tokens in introspection and the JWT itself, and the
//! audience check of the local bearer layer and of both remote validators over real HTTP.

use base64::Engine;
use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use serde_json::{Value, json};
use tower::ServiceExt;
use tower_oauth2::{
    AccessTokenFormat, AuthServer, BearerLayer, Client, GrantType, InMemoryClients, Metadata,
    bearer::{IntrospectionValidator, JwtValidator},
    client::ResourcePolicy,
    endpoint::{AuthorizationContext, Decision, Interaction},
    jose::{KeySet, SigningKey},
    user::DemoUsers,
};

use crate::support::{Reply, call_protected, form, reply};

const ISS: &str = "https://auth.example";
const MCP: &str = "https://mcp.example/mcp";
const OTHER: &str = "https://mcp.example/other";
const MCP_ENC: &str = "https%3A%2F%2Fmcp.example%2Fmcp";
const OTHER_ENC: &str = "https%3A%2F%2Fmcp.example%2Fother";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const NOT_MEANT: &str = "The access token is not meant for this resource";

/// Approves as `alice` when the request carries `x-test: approve`; otherwise a page naming the
/// client, the scope and the resources the request is for, as a consent page would.
async fn consent(ctx: AuthorizationContext) -> Interaction {
    if ctx.headers().get("x-test").is_some_and(|v| v == "approve") {
        return Interaction::Decided(Decision::approve("alice"));
    }
    let request = ctx.request();
    let body = format!(
        "{} asks for {} at [{}]",
        request.client_id(),
        request.scope(),
        request.resources().iter().collect::<Vec<_>>().join(", ")
    );
    Interaction::Respond(http::Response::new(Full::new(Bytes::from(body))))
}

fn clients() -> InMemoryClients {
    InMemoryClients::new()
        .with(
            Client::public("mcp-client")
                .grant_types([GrantType::AuthorizationCode, GrantType::RefreshToken])
                .scope("read write")
                .redirect_uri("http://127.0.0.1/callback")
                .build()
                .unwrap(),
        )
        .with(
            Client::confidential("app", "app-secret")
                .grant_types([
                    GrantType::ClientCredentials,
                    GrantType::Password,
                    GrantType::RefreshToken,
                ])
                .scope("read write")
                .build()
                .unwrap(),
        )
        .with(
            // May ask for the MCP server only.
            Client::confidential("narrow", "narrow-secret")
                .grant_types([GrantType::ClientCredentials])
                .scope("read")
                .resource("HTTPS://MCP.example:443/mcp")
                .build()
                .unwrap(),
        )
        .with(
            Client::confidential("rs", "rs-secret")
                .grant_types([GrantType::ClientCredentials])
                .introspect(true)
                .build()
                .unwrap(),
        )
}

fn builder(configure: impl FnOnce(&mut tower_oauth2::Config)) -> tower_oauth2::AuthServerBuilder {
    AuthServer::builder()
        .clients(clients())
        .users(DemoUsers::new().with("alice", "wonderland"))
        .allow_grant_type(GrantType::Password)
        .authorization_handler(consent)
        .configure(|c| {
            c.issuer = Some(ISS.into());
            c.resources = vec![MCP.into(), OTHER.into()];
            configure(c);
        })
}

fn server() -> AuthServer {
    builder(|_| {}).build().unwrap()
}

async fn authorize(server: &AuthServer, extra: &str, approve: bool) -> Reply {
    let mut req = Request::get(format!(
        "/oauth/authorize?response_type=code&client_id=mcp-client\
         &redirect_uri=http%3A%2F%2F127.0.0.1%3A8123%2Fcallback&state=s1\
         &code_challenge={CHALLENGE}&code_challenge_method=S256{extra}"
    ));
    if approve {
        req = req.header("x-test", "approve");
    }
    let req = req.body(Full::new(Bytes::new())).unwrap();
    reply(server.authorization_endpoint().oneshot(req).await.unwrap()).await
}

/// The parameters of a redirect.
fn redirect_params(r: &Reply) -> Vec<(String, String)> {
    assert_eq!(r.status, 302, "{}", String::from_utf8_lossy(&r.body));
    let location = r.header("location").expect("a Location header");
    let (base, query) = location.split_once('?').unwrap();
    assert_eq!(base, "http://127.0.0.1:8123/callback");
    url_decode_pairs(query)
}

fn url_decode_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .map(|p| {
            let (n, v) = p.split_once('=').unwrap_or((p, ""));
            let v = v.replace('+', " ");
            let mut out = Vec::new();
            let b = v.as_bytes();
            let mut i = 0;
            while i < b.len() {
                if b[i] == b'%' {
                    out.push(u8::from_str_radix(&v[i + 1..i + 3], 16).unwrap());
                    i += 3;
                } else {
                    out.push(b[i]);
                    i += 1;
                }
            }
            (n.to_owned(), String::from_utf8(out).unwrap())
        })
        .collect()
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

async fn token(server: &AuthServer, auth: Option<(&str, &str)>, body: &str) -> Reply {
    reply(
        server
            .token_endpoint()
            .oneshot(form("/oauth/token", auth, body))
            .await
            .unwrap(),
    )
    .await
}

async fn introspect(server: &AuthServer, token: &str) -> Value {
    let r = reply(
        server
            .introspection_endpoint()
            .oneshot(form(
                "/oauth/introspect",
                Some(("rs", "rs-secret")),
                &format!("token={token}"),
            ))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200);
    r.json()
}

/// A code for `mcp-client`, approved, for `extra`'s resources.
async fn code(server: &AuthServer, extra: &str) -> String {
    let params = redirect_params(&authorize(server, extra, true).await);
    param(&params, "code").expect("a code").to_owned()
}

/// The `aud` introspection reports for the access token `body` gets.
async fn aud_of(server: &AuthServer, auth: Option<(&str, &str)>, body: &str) -> Value {
    let v = token(server, auth, body).await.assert_token();
    introspect(server, &text(&v, "access_token")).await["aud"].clone()
}

fn exchange_body(code: &str, extra: &str) -> String {
    format!(
        "grant_type=authorization_code&client_id=mcp-client&code={code}\
         &redirect_uri=http%3A%2F%2F127.0.0.1%3A8123%2Fcallback&code_verifier={VERIFIER}{extra}"
    )
}

fn text(v: &Value, name: &str) -> String {
    v[name]
        .as_str()
        .unwrap_or_else(|| panic!("{name} in {v}"))
        .to_owned()
}

#[tokio::test]
async fn the_consent_page_names_the_resources_asked_for_in_normal_form() {
    let server = server();
    let r = authorize(
        &server,
        "&scope=read&resource=HTTPS%3A%2F%2FMCP.Example%3A443%2Fmcp&resource=https%3A%2F%2Fmcp.example%2Fother",
        false,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        String::from_utf8_lossy(&r.body),
        format!("mcp-client asks for read at [{MCP}, {OTHER}]")
    );
    // Repeating the same resource is one resource.
    let r = authorize(
        &server,
        &format!("&resource={MCP_ENC}&resource={MCP_ENC}"),
        false,
    )
    .await;
    assert_eq!(
        String::from_utf8_lossy(&r.body),
        format!("mcp-client asks for read write at [{MCP}]")
    );
    // None: no resource, and the page says so.
    let r = authorize(&server, "", false).await;
    assert_eq!(
        String::from_utf8_lossy(&r.body),
        "mcp-client asks for read write at []"
    );
}

#[tokio::test]
async fn an_unknown_or_malformed_resource_is_invalid_target_at_the_redirect_uri() {
    let server = server();
    for (resource, why) in [
        ("https%3A%2F%2Fevil.example%2Fmcp", "unknown"),
        ("https%3A%2F%2Fmcp.example%2Fmcp%23frag", "fragment"),
        ("%2Fmcp", "relative"),
        ("https%3A%2F%2Fmcp.example%2FMCP", "path case matters"),
    ] {
        let r = authorize(
            &server,
            &format!("&resource={MCP_ENC}&resource={resource}"),
            true,
        )
        .await;
        let params = redirect_params(&r);
        assert_eq!(param(&params, "error"), Some("invalid_target"), "{why}");
        assert_eq!(param(&params, "state"), Some("s1"), "{why}");
        assert_eq!(param(&params, "iss"), Some(ISS), "{why}");
        assert_eq!(param(&params, "code"), None, "{why}");
        assert!(param(&params, "error_description").is_some(), "{why}");
    }
    // Too many: bounded, whatever they name.
    let many: String = (0..17)
        .map(|i| format!("&resource=https%3A%2F%2Fr{i}.example%2F"))
        .collect();
    let params = redirect_params(&authorize(&server, &many, true).await);
    assert_eq!(param(&params, "error"), Some("invalid_target"));
    // A server with no resources configured knows none.
    let bare = builder(|c| c.resources.clear()).build().unwrap();
    let params = redirect_params(&authorize(&bare, &format!("&resource={MCP_ENC}"), true).await);
    assert_eq!(param(&params, "error"), Some("invalid_target"));
}

#[tokio::test]
async fn pushed_requests_carry_their_resources_and_refuse_unknown_ones() {
    let server = server();
    let push = |body: String| {
        let server = server.clone();
        async move {
            reply(
                server
                    .pushed_authorization_endpoint()
                    .oneshot(form("/oauth/par", Some(("app", "app-secret")), &body))
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    let r = push(format!(
        "response_type=code&client_id=mcp-client&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcallback\
         &code_challenge={CHALLENGE}&code_challenge_method=S256&resource=https%3A%2F%2Fevil.example%2F"
    ))
    .await;
    // `app` is not `mcp-client`: refused for that first.
    r.assert_error(400, "invalid_request");
    let server = AuthServer::builder()
        .clients(
            clients().with(
                Client::confidential("web", "web-secret")
                    .grant_types([GrantType::AuthorizationCode])
                    .redirect_uri("https://web.example/cb")
                    .build()
                    .unwrap(),
            ),
        )
        .authorization_handler(consent)
        .configure(|c| {
            c.issuer = Some(ISS.into());
            c.resources = vec![MCP.into(), OTHER.into()];
        })
        .build()
        .unwrap();
    let push = |extra: &str| {
        let server = server.clone();
        let body = format!(
            "response_type=code&redirect_uri=https%3A%2F%2Fweb.example%2Fcb\
             &code_challenge={CHALLENGE}&code_challenge_method=S256{extra}"
        );
        async move {
            reply(
                server
                    .pushed_authorization_endpoint()
                    .oneshot(form("/oauth/par", Some(("web", "web-secret")), &body))
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    let r = push("&resource=https%3A%2F%2Fevil.example%2F").await;
    r.assert_error(400, "invalid_target");
    let r = push(&format!("&resource={MCP_ENC}&resource={OTHER_ENC}")).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let request_uri = text(&r.json(), "request_uri");
    let req = Request::get(format!(
        "/oauth/authorize?client_id=web&request_uri={}",
        request_uri.replace(':', "%3A")
    ))
    .body(Full::new(Bytes::new()))
    .unwrap();
    let page = reply(server.authorization_endpoint().oneshot(req).await.unwrap()).await;
    assert_eq!(
        String::from_utf8_lossy(&page.body),
        format!("web asks for  at [{MCP}, {OTHER}]")
    );
}

#[tokio::test]
async fn the_code_exchange_may_narrow_to_some_of_the_approved_resources_never_more() {
    let server = server();
    let both = format!("&resource={MCP_ENC}&resource={OTHER_ENC}");
    // Outside the approval: refused, and the code is not used up.
    let c = code(&server, &format!("&resource={MCP_ENC}")).await;
    token(
        &server,
        None,
        &exchange_body(&c, &format!("&resource={OTHER_ENC}")),
    )
    .await
    .assert_error(400, "invalid_target");
    assert_eq!(aud_of(&server, None, &exchange_body(&c, "")).await, MCP);
    // Some of them: a token for those alone.
    let c = code(&server, &both).await;
    let v = token(
        &server,
        None,
        &exchange_body(&c, &format!("&resource={OTHER_ENC}")),
    )
    .await
    .assert_token();
    let at = introspect(&server, &text(&v, "access_token")).await;
    assert_eq!(at["aud"], OTHER);
    // The refresh token stands for the whole grant.
    let rt = introspect(&server, &text(&v, "refresh_token")).await;
    assert_eq!(rt["aud"], json!([MCP, OTHER]));
    // Named without a resource: a code with none takes none at the exchange either.
    let c = code(&server, "").await;
    token(
        &server,
        None,
        &exchange_body(&c, &format!("&resource={MCP_ENC}")),
    )
    .await
    .assert_error(400, "invalid_target");
    let v = token(&server, None, &exchange_body(&c, ""))
        .await
        .assert_token();
    let at = introspect(&server, &text(&v, "access_token")).await;
    assert_eq!(at["active"], true);
    assert!(at.get("aud").is_none(), "no audience: {at}");
}

#[tokio::test]
async fn a_refresh_narrows_to_one_resource_and_the_grant_keeps_them_all() {
    let server = server();
    let c = code(
        &server,
        &format!("&resource={MCP_ENC}&resource={OTHER_ENC}"),
    )
    .await;
    let v = token(&server, None, &exchange_body(&c, ""))
        .await
        .assert_token();
    assert_eq!(
        introspect(&server, &text(&v, "access_token")).await["aud"],
        json!([MCP, OTHER])
    );
    let refresh = |rt: String, extra: &'static str| {
        let server = server.clone();
        async move {
            token(
                &server,
                None,
                &format!("grant_type=refresh_token&client_id=mcp-client&refresh_token={rt}{extra}"),
            )
            .await
        }
    };
    // For one of them: that one alone.
    let v = refresh(
        text(&v, "refresh_token"),
        "&resource=https%3A%2F%2Fmcp.example%2Fmcp",
    )
    .await
    .assert_token();
    assert_eq!(
        introspect(&server, &text(&v, "access_token")).await["aud"],
        MCP
    );
    // Then the other: narrowing never shrank the grant.
    let v = refresh(
        text(&v, "refresh_token"),
        "&resource=https%3A%2F%2Fmcp.example%2Fother",
    )
    .await
    .assert_token();
    assert_eq!(
        introspect(&server, &text(&v, "access_token")).await["aud"],
        OTHER
    );
    // One outside it: invalid_target, and the refresh token is still good (not rotated).
    let rt = text(&v, "refresh_token");
    refresh(rt.clone(), "&resource=https%3A%2F%2Fevil.example%2F")
        .await
        .assert_error(400, "invalid_target");
    refresh(rt.clone(), "&resource=https%3A%2F%2Fmcp.example%2Fmcp%23x")
        .await
        .assert_error(400, "invalid_target");
    // Without `resource`: the grant's set.
    let v = refresh(rt, "").await.assert_token();
    assert_eq!(
        introspect(&server, &text(&v, "access_token")).await["aud"],
        json!([MCP, OTHER])
    );
}

#[tokio::test]
async fn client_credentials_and_password_take_resources_each_checked_for_the_client() {
    let server = server();
    let cases = [
        (
            ("app", "app-secret"),
            format!("grant_type=client_credentials&resource={OTHER_ENC}"),
            OTHER,
        ),
        (
            ("app", "app-secret"),
            format!("grant_type=password&username=alice&password=wonderland&resource={MCP_ENC}"),
            MCP,
        ),
        // `narrow` may have the MCP server only (registered in another spelling of it).
        (
            ("narrow", "narrow-secret"),
            format!("grant_type=client_credentials&resource={MCP_ENC}"),
            MCP,
        ),
    ];
    for (client, body, expected) in cases {
        assert_eq!(
            aud_of(&server, Some(client), &body).await,
            expected,
            "{body}"
        );
    }
    for body in [
        format!("grant_type=client_credentials&resource={OTHER_ENC}"),
        format!("grant_type=client_credentials&resource={MCP_ENC}&resource={OTHER_ENC}"),
        "grant_type=client_credentials&resource=urn%3Aunknown".to_owned(),
        "grant_type=client_credentials&resource=not+a+uri".to_owned(),
    ] {
        let r = token(&server, Some(("narrow", "narrow-secret")), &body).await;
        r.assert_error(400, "invalid_target");
        assert_eq!(r.header("cache-control"), Some("no-store"));
        assert!(r.json()["error_description"].is_string(), "{body}");
    }
    // `resource` is the one parameter that may repeat; others still may not.
    token(
        &server,
        Some(("app", "app-secret")),
        "grant_type=client_credentials&scope=read&scope=write",
    )
    .await
    .assert_error(400, "invalid_request");
}

#[tokio::test]
async fn the_default_resource_is_what_a_request_naming_none_is_for() {
    let server = builder(|c| c.default_resource = Some("https://MCP.example/mcp".into()))
        .build()
        .unwrap();
    let r = authorize(&server, "", false).await;
    assert_eq!(
        String::from_utf8_lossy(&r.body),
        format!("mcp-client asks for read write at [{MCP}]")
    );
    let c = code(&server, "").await;
    let v = token(&server, None, &exchange_body(&c, ""))
        .await
        .assert_token();
    assert_eq!(
        introspect(&server, &text(&v, "access_token")).await["aud"],
        MCP
    );
    assert_eq!(
        aud_of(
            &server,
            Some(("app", "app-secret")),
            "grant_type=client_credentials"
        )
        .await,
        MCP
    );
    // A request naming another resource gets that one, not the default.
    assert_eq!(
        aud_of(
            &server,
            Some(("app", "app-secret")),
            &format!("grant_type=client_credentials&resource={OTHER_ENC}")
        )
        .await,
        OTHER
    );
    // The default must be a configured resource.
    let err = builder(|c| c.default_resource = Some("https://elsewhere.example/".into()))
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("default_resource"), "{err}");
    let err = builder(|c| c.resources.push("relative/path".into()))
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("resource indicator"), "{err}");
}

#[tokio::test]
async fn a_resource_policy_decides_instead_of_the_list() {
    struct Tenants;
    impl ResourcePolicy for Tenants {
        fn allows(&self, client: &Client, resource: &str) -> bool {
            client.id() == "app" && resource.ends_with(".tenants.example/mcp")
        }
    }
    let server = builder(|c| c.resources.clear())
        .resource_policy(Tenants)
        .build()
        .unwrap();
    assert_eq!(
        aud_of(
            &server,
            Some(("app", "app-secret")),
            "grant_type=client_credentials&resource=https%3A%2F%2FACME.tenants.example%2Fmcp"
        )
        .await,
        "https://acme.tenants.example/mcp"
    );
    token(
        &server,
        Some(("app", "app-secret")),
        &format!("grant_type=client_credentials&resource={MCP_ENC}"),
    )
    .await
    .assert_error(400, "invalid_target");
    token(
        &server,
        Some(("narrow", "narrow-secret")),
        "grant_type=client_credentials&resource=https%3A%2F%2Facme.tenants.example%2Fmcp",
    )
    .await
    .assert_error(400, "invalid_target");
}

/// A bearer-protected echo, asked with `token`.
async fn protected(layer: BearerLayer, token: &str) -> Reply {
    let req = Request::get("/mcp")
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    call_protected(layer, req).await
}

#[track_caller]
fn assert_not_meant(r: &Reply) {
    assert_eq!(r.status, 401);
    let challenge = r.header("www-authenticate").unwrap();
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert!(challenge.contains(NOT_MEANT), "{challenge}");
}

/// Tokens for the MCP server, for the other resource and for none, from `server`.
async fn three_tokens(server: &AuthServer) -> (String, String, String) {
    let get = |extra: &'static str| {
        let server = server.clone();
        async move {
            let v = token(
                &server,
                Some(("app", "app-secret")),
                &format!("grant_type=client_credentials&scope=read{extra}"),
            )
            .await
            .assert_token();
            text(&v, "access_token")
        }
    };
    (
        get("&resource=https%3A%2F%2Fmcp.example%2Fmcp").await,
        get("&resource=https%3A%2F%2Fmcp.example%2Fother").await,
        get("").await,
    )
}

async fn the_local_layer_checks_the_audience_on(server: AuthServer) {
    let (mcp, other, none) = three_tokens(&server).await;
    let layer = server
        .bearer_layer()
        .audience("https://MCP.example:443/mcp");
    assert_eq!(protected(layer.clone(), &mcp).await.status, 200);
    assert_not_meant(&protected(layer.clone(), &other).await);
    assert_not_meant(&protected(layer.clone(), &none).await);
    // Opting in to tokens with no audience; another resource's still refused.
    let lenient = server.bearer_layer().allow_no_audience(true).audience(MCP);
    assert_eq!(protected(lenient.clone(), &none).await.status, 200);
    assert_eq!(protected(lenient.clone(), &mcp).await.status, 200);
    assert_not_meant(&protected(lenient, &other).await);
    // Without `audience`, the layer is as before: any valid token.
    assert_eq!(protected(server.bearer_layer(), &other).await.status, 200);
    // The audience is judged before the scope: another resource's token is not a 403.
    let scoped = server
        .bearer_layer()
        .audience(MCP)
        .require_scope("write".parse().unwrap());
    assert_not_meant(&protected(scoped.clone(), &other).await);
    assert_eq!(protected(scoped, &mcp).await.status, 403);
}

#[tokio::test]
async fn the_local_bearer_layer_refuses_a_token_for_another_resource_opaque() {
    the_local_layer_checks_the_audience_on(server()).await;
}

fn jwt_server() -> AuthServer {
    builder(|c| c.access_token_format = AccessTokenFormat::Jwt)
        .signing_keys(KeySet::new(SigningKey::generate_es256()))
        .build()
        .unwrap()
}

#[tokio::test]
async fn the_local_bearer_layer_refuses_a_token_for_another_resource_jwt() {
    the_local_layer_checks_the_audience_on(jwt_server()).await;
}

fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn a_jwt_access_tokens_aud_is_what_its_request_named() {
    let server = jwt_server();
    let (mcp, other, none) = three_tokens(&server).await;
    assert_eq!(claims(&mcp)["aud"], json!([MCP]));
    assert_eq!(claims(&other)["aud"], json!([OTHER]));
    // No resource: the issuer, as before (RFC 9068 requires an aud).
    assert_eq!(claims(&none)["aud"], json!([ISS]));
    let v = token(
        &server,
        Some(("app", "app-secret")),
        &format!(
            "grant_type=password&username=alice&password=wonderland&resource={MCP_ENC}&resource={OTHER_ENC}"
        ),
    )
    .await
    .assert_token();
    assert_eq!(
        claims(&text(&v, "access_token"))["aud"],
        json!([MCP, OTHER])
    );
    let v = token(
        &server,
        Some(("app", "app-secret")),
        &format!(
            "grant_type=refresh_token&refresh_token={}&resource={OTHER_ENC}",
            text(&v, "refresh_token")
        ),
    )
    .await
    .assert_token();
    assert_eq!(claims(&text(&v, "access_token"))["aud"], json!([OTHER]));
}

#[tokio::test]
async fn resource_servers_elsewhere_refuse_a_token_for_another_resource() {
    // The issuer must be the served address for the JWT validator to find it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let issuer = format!("http://{addr}");
    let server = builder(|c| {
        c.issuer = Some(issuer.clone());
        c.access_token_format = AccessTokenFormat::Jwt;
    })
    .signing_keys(KeySet::new(SigningKey::generate_es256()))
    .build()
    .unwrap();
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let app = axum::Router::new()
        .route_service("/oauth/token", server.token_endpoint())
        .route_service("/oauth/introspect", server.introspection_endpoint())
        .route_service("/.well-known/jwks.json", server.jwks_endpoint())
        .route_service(
            "/.well-known/oauth-authorization-server",
            server.metadata_endpoint(Metadata::new(issuer.clone())),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let (mcp, other, none) = three_tokens(&server).await;

    let jwt = JwtValidator::from_issuer(&issuer, MCP).build().unwrap();
    let layer = || BearerLayer::with_validator(jwt.clone(), "mcp");
    assert_eq!(protected(layer(), &mcp).await.status, 200);
    assert_not_meant(&protected(layer(), &other).await);
    // A token asked for no resource names the issuer: not this resource.
    assert_not_meant(&protected(layer(), &none).await);

    let live =
        IntrospectionValidator::builder(format!("{issuer}/oauth/introspect"), "rs", "rs-secret")
            .audience(MCP)
            .build()
            .unwrap();
    let layer = || BearerLayer::with_validator(live.clone(), "mcp");
    assert_eq!(protected(layer(), &mcp).await.status, 200);
    assert_not_meant(&protected(layer(), &other).await);
    assert_not_meant(&protected(layer(), &none).await);
    let lenient =
        IntrospectionValidator::builder(format!("{issuer}/oauth/introspect"), "rs", "rs-secret")
            .audience(MCP)
            .allow_no_audience(true)
            .build()
            .unwrap();
    assert_eq!(
        protected(BearerLayer::with_validator(lenient, "mcp"), &none)
            .await
            .status,
        200
    );
    // The same through the layer's own audience check, fed by what the validator reports.
    let plain =
        IntrospectionValidator::builder(format!("{issuer}/oauth/introspect"), "rs", "rs-secret")
            .build()
            .unwrap();
    let layer = BearerLayer::with_validator(plain, "mcp").audience(MCP);
    assert_eq!(protected(layer.clone(), &mcp).await.status, 200);
    assert_not_meant(&protected(layer, &other).await);
}
