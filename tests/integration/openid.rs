//! OpenID Connect (Core 1.0, Discovery 1.0, RP-Initiated Logout 1.0) through the public API —
//! the authorization, token, userinfo, end-session and metadata endpoints as tower Services —
//! each rule with its exact answer: the ID token's claims, `nonce`, `at_hash` and signature
//! algorithm per client; `prompt=none` and each of its errors; `max_age` and `prompt=login`;
//! refresh ID tokens; pairwise subjects; claims by scope; userinfo and its errors; discovery;
//! logout's redirect validation, confirmation and revocation; and the stores.

use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tower::ServiceExt;
use tower_oauth2::{
    AuthServer, Client, ConfigError, GrantType, InMemoryClients, Metadata,
    clock::{Clock, ManualClock, SystemClock},
    endpoint::{AuthorizationContext, Decision, Interaction},
    jose::{KeySet, SigningKey},
    openid::{Authentication, ClaimsRequest, EndSession, LogoutRevokes, OpenId, SubjectType},
    store::{MemoryStore, TokenStore},
};

use crate::support::{
    Reply,
    backends::{Backend, open},
    encode, form, location, param, reply,
};

const ISS: &str = "https://auth.example";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const START: u64 = 1_800_000_000;

/// One RSA key for every test (generating one takes a while).
fn rsa() -> SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(SigningKey::generate_rs256).clone()
}

fn keys() -> KeySet {
    KeySet::new(SigningKey::generate_es256())
        .with_signing_key(rsa())
        .with_signing_key(SigningKey::generate_ed25519())
}

/// The app's decision, chosen per request by a test header: `approve:<user>[@<auth_time>]
/// [#<sid>]`, `deny`, `login_required`, `consent_required`, `interaction_required`,
/// `account_selection_required`; by default a page showing what the handler was told.
async fn decide(ctx: AuthorizationContext) -> Interaction {
    let wanted = ctx
        .headers()
        .get("x-test")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("page")
        .to_owned();
    let decision = match wanted.as_str() {
        "deny" => Decision::Deny,
        "login_required" => Decision::LoginRequired,
        "consent_required" => Decision::ConsentRequired,
        "interaction_required" => Decision::InteractionRequired,
        "account_selection_required" => Decision::AccountSelectionRequired,
        other => match other.strip_prefix("approve:") {
            Some(rest) => {
                let (rest, sid) = match rest.split_once('#') {
                    Some((r, s)) => (r, Some(s)),
                    None => (rest, None),
                };
                let (user, at) = match rest.split_once('@') {
                    Some((u, t)) => (u, Some(t.parse::<u64>().unwrap())),
                    None => (rest, None),
                };
                let mut d = Decision::approve(user);
                if let Some(at) = at {
                    let mut how = Authentication::at(at)
                        .amr(["pwd", "otp"])
                        .acr("urn:acr:2fa");
                    if let Some(sid) = sid {
                        how = how.session_id(sid);
                    }
                    d = d.authenticated(how);
                }
                d
            }
            None => {
                let o = ctx.request().openid();
                let body = format!(
                    "handle={} openid={} nonce={:?} max_age={:?} login={} consent={} login_hint={:?} hint={:?} acr={:?} locales={:?} display={:?}",
                    ctx.handle(),
                    o.is_some(),
                    o.and_then(|o| o.nonce()),
                    o.and_then(|o| o.max_age()),
                    o.is_some_and(|o| o.prompt().login()),
                    o.is_some_and(|o| o.prompt().consent()),
                    o.and_then(|o| o.login_hint()),
                    o.and_then(|o| o.id_token_hint_subject()),
                    o.map(|o| o.acr_values().collect::<Vec<_>>()),
                    o.map(|o| o.ui_locales().collect::<Vec<_>>()),
                    o.and_then(|o| o.display()),
                );
                return Interaction::Respond(http::Response::new(Full::new(Bytes::from(body))));
            }
        },
    };
    Interaction::Decided(decision)
}

/// The user directory: every claim it has, whatever the scope.
async fn directory(request: ClaimsRequest) -> Map<String, Value> {
    let Value::Object(all) = json!({
        "name": format!("{} Example", request.subject),
        "email": format!("{}@example.com", request.subject),
        "email_verified": true,
        "phone_number": "+1 555 0100",
        "address": {"country": "NZ"},
        "groups": ["staff"],
        "sub": "forged",
        "iss": "https://forged.example",
        "internal_note": "never leaves",
    }) else {
        unreachable!()
    };
    all
}

fn clients() -> InMemoryClients {
    let code = [GrantType::AuthorizationCode, GrantType::RefreshToken];
    let scope = "openid profile email phone address groups offline_access read";
    let pairwise = |id: &str, redirect: &str| {
        Client::confidential(id, "secret")
            .grant_types(code)
            .scope(scope)
            .redirect_uri(redirect)
            .subject_type(SubjectType::Pairwise)
            .build()
            .unwrap()
    };
    InMemoryClients::new()
        .with(
            Client::confidential("rp", "rp-secret")
                .grant_types(code)
                .scope(scope)
                .redirect_uri("https://rp.example/cb")
                .post_logout_redirect_uri("https://rp.example/bye")
                .build()
                .unwrap(),
        )
        .with(
            Client::public("spa")
                .grant_types(code)
                .scope(scope)
                .redirect_uri("http://127.0.0.1:3000/callback")
                .build()
                .unwrap(),
        )
        .with(
            Client::confidential("legacy", "legacy-secret")
                .grant_types(code)
                .scope(scope)
                .redirect_uri("https://legacy.example/cb")
                .pkce_optional(true)
                .build()
                .unwrap(),
        )
        .with(
            Client::confidential("es", "secret")
                .grant_types(code)
                .scope(scope)
                .redirect_uri("https://es.example/cb")
                .id_token_signed_response_alg("ES256")
                .userinfo_signed_response_alg("ES256")
                .build()
                .unwrap(),
        )
        .with(
            Client::confidential("ed", "secret")
                .grant_types(code)
                .scope(scope)
                .redirect_uri("https://ed.example/cb")
                .id_token_signed_response_alg("EdDSA")
                .build()
                .unwrap(),
        )
        .with(pairwise("pw-a1", "https://a.example/cb"))
        .with(pairwise("pw-a2", "https://a.example/other"))
        .with(pairwise("pw-b", "https://b.example/cb"))
}

struct Op {
    server: AuthServer,
    clock: Arc<ManualClock>,
    ended: Arc<Mutex<Vec<EndSession>>>,
}

fn openid() -> OpenId {
    OpenId::new()
        .claims(directory)
        .scope_claims("groups", ["groups"])
        .pairwise_key([7u8; 32])
}

fn op_with(store: Arc<dyn TokenStore>, clock: Arc<ManualClock>, config: OpenId) -> Op {
    let ended = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&ended);
    let config = config.logout(move |session: EndSession| {
        seen.lock().unwrap().push(session);
        async {
            let mut headers = http::HeaderMap::new();
            headers.insert("set-cookie", "app_session=; Max-Age=0".parse().unwrap());
            headers
        }
    });
    let server = AuthServer::builder()
        .clients(clients())
        .configure(|c| {
            c.issuer = Some(ISS.into());
            c.resources = vec!["https://api.example/".into()];
        })
        .signing_keys(keys())
        .openid(config)
        .authorization_handler(decide)
        .shared_store(store)
        .clock(Arc::clone(&clock))
        .build()
        .unwrap();
    Op {
        server,
        clock,
        ended,
    }
}

fn op() -> Op {
    op_with(
        Arc::new(MemoryStore::new()),
        Arc::new(ManualClock::new(START)),
        openid(),
    )
}

/// The redirect URI each test client has.
fn redirect_of(client: &str) -> &'static str {
    match client {
        "rp" => "https://rp.example/cb",
        "spa" => "http://127.0.0.1:3000/callback",
        "legacy" => "https://legacy.example/cb",
        "es" => "https://es.example/cb",
        "ed" => "https://ed.example/cb",
        "pw-a1" => "https://a.example/cb",
        "pw-a2" => "https://a.example/other",
        _ => "https://b.example/cb",
    }
}

/// An OpenID authorization request of `client` (PKCE S256, state `st`), plus `extra`.
fn query(client: &str, extra: &str) -> String {
    format!(
        "response_type=code&client_id={client}&redirect_uri={}&state=st&scope=openid+profile+email+offline_access&code_challenge={CHALLENGE}&code_challenge_method=S256{extra}",
        encode(redirect_of(client))
    )
}

impl Op {
    async fn authorize(&self, query: &str, test: &str) -> Reply {
        let req = Request::get(format!("/oauth/authorize?{query}"))
            .header("x-test", test)
            .body(Full::new(Bytes::new()))
            .unwrap();
        reply(
            self.server
                .authorization_endpoint()
                .oneshot(req)
                .await
                .unwrap(),
        )
        .await
    }

    /// Approve at once with `test`, and return the code.
    async fn code(&self, query: &str, test: &str) -> String {
        let r = self.authorize(query, test).await;
        assert_eq!(
            r.status,
            StatusCode::FOUND,
            "{:?}",
            String::from_utf8_lossy(&r.body)
        );
        let (_, params) = location(&r);
        param(&params, "code")
            .unwrap_or_else(|| panic!("no code: {params:?}"))
            .to_owned()
    }

    async fn token(&self, client: &str, body: &str) -> Reply {
        let secret = match client {
            "rp" => "rp-secret",
            "legacy" => "legacy-secret",
            _ => "secret",
        };
        let auth = (client != "spa").then_some((client, secret));
        let body = if client == "spa" {
            format!("{body}&client_id=spa")
        } else {
            body.to_owned()
        };
        let req = form("/oauth/token", auth, &body);
        reply(self.server.token_endpoint().oneshot(req).await.unwrap()).await
    }

    async fn exchange(&self, client: &str, code: &str) -> Reply {
        self.token(
            client,
            &format!(
                "grant_type=authorization_code&code={code}&redirect_uri={}&code_verifier={VERIFIER}",
                encode(redirect_of(client))
            ),
        )
        .await
    }

    /// The whole flow: authorize (`extra`, decided by `test`), exchange; the token response.
    async fn sign_in(&self, client: &str, extra: &str, test: &str) -> Value {
        let code = self.code(&query(client, extra), test).await;
        self.exchange(client, &code).await.assert_token()
    }

    async fn userinfo(&self, req: Request<Full<Bytes>>) -> Reply {
        reply(self.server.userinfo_endpoint().oneshot(req).await.unwrap()).await
    }

    async fn userinfo_with(&self, token: &str) -> Reply {
        self.userinfo(
            Request::get("/oauth/userinfo")
                .header("authorization", format!("Bearer {token}"))
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
    }

    async fn logout(&self, req: Request<Full<Bytes>>) -> Reply {
        reply(
            self.server
                .end_session_endpoint()
                .oneshot(req)
                .await
                .unwrap(),
        )
        .await
    }

    async fn logout_get(&self, query: &str) -> Reply {
        self.logout(
            Request::get(format!("/oauth/logout?{query}"))
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
    }

    async fn active(&self, access_token: &str) -> bool {
        self.server
            .validate_access_token(access_token)
            .await
            .unwrap()
            .is_some()
    }
}

fn part(jwt: &str, i: usize) -> Value {
    let b = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(jwt.split('.').nth(i).unwrap())
        .unwrap();
    serde_json::from_slice(&b).unwrap()
}

fn claims(tokens: &Value) -> Value {
    part(tokens["id_token"].as_str().expect("an id_token"), 1)
}

fn at_hash(access_token: &str) -> String {
    let d = Sha256::digest(access_token.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&d[..16])
}

#[tokio::test]
async fn the_id_token_carries_what_core_requires() {
    let op = op();
    let t = op
        .sign_in(
            "rp",
            "&nonce=n-0S6_WzA2Mj",
            &format!("approve:alice@{}#sess-1", START - 30),
        )
        .await;
    let header = part(t["id_token"].as_str().unwrap(), 0);
    assert_eq!(
        header["alg"], "RS256",
        "RS256 unless the client asks otherwise"
    );
    assert!(header["kid"].is_string());
    assert!(header.get("typ").is_none(), "not an access token: {header}");
    let c = claims(&t);
    assert_eq!(c["iss"], ISS);
    assert_eq!(c["sub"], "alice");
    assert_eq!(c["aud"], "rp");
    assert_eq!(c["azp"], "rp");
    assert_eq!(c["iat"], START);
    assert_eq!(c["exp"], START + 3600);
    assert_eq!(c["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(c["auth_time"], START - 30);
    assert_eq!(c["acr"], "urn:acr:2fa");
    assert_eq!(c["amr"], json!(["pwd", "otp"]));
    assert_eq!(c["sid"], "sess-1");
    assert_eq!(c["at_hash"], at_hash(t["access_token"].as_str().unwrap()));
    // The access token can fetch the claims at userinfo: the ID token does not repeat them.
    assert!(c.get("email").is_none() && c.get("name").is_none(), "{c}");
    // Published: the JWKS holds the key the header names.
    let jwks = reply(
        op.server
            .jwks_endpoint()
            .oneshot(Request::get("/").body(Full::new(Bytes::new())).unwrap())
            .await
            .unwrap(),
    )
    .await
    .json();
    assert!(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == header["kid"] && k["alg"] == "RS256")
    );
    // Without openid in the scope: an OAuth grant, no ID token.
    let code = op
        .code(&query("rp", "").replace("openid+", ""), "approve:alice")
        .await;
    let plain = op.exchange("rp", &code).await.assert_token();
    assert!(plain.get("id_token").is_none(), "{plain}");
}

#[tokio::test]
async fn a_client_chooses_its_algorithm_and_at_hash_follows_it() {
    let op = op();
    let t = op.sign_in("es", "&nonce=x", "approve:alice").await;
    let id = t["id_token"].as_str().unwrap();
    assert_eq!(part(id, 0)["alg"], "ES256");
    assert_eq!(
        claims(&t)["at_hash"],
        at_hash(t["access_token"].as_str().unwrap())
    );
    let t = op.sign_in("ed", "&nonce=x", "approve:alice").await;
    let id = t["id_token"].as_str().unwrap();
    assert_eq!(part(id, 0)["alg"], "EdDSA");
    // Ed25519 signs over SHA-512: at_hash is its left half.
    let d = sha2::Sha512::digest(t["access_token"].as_str().unwrap().as_bytes());
    assert_eq!(
        claims(&t)["at_hash"],
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&d[..32])
    );
}

#[tokio::test]
async fn nonce_is_kept_and_required_without_pkce() {
    let op = op();
    // With PKCE a nonce is optional (OAuth 2.1): none sent, none in the token.
    let t = op.sign_in("spa", "", "approve:alice").await;
    assert!(claims(&t).get("nonce").is_none());
    // Without PKCE (a legacy confidential client), the nonce is what binds the code: required.
    let bare = "response_type=code&client_id=legacy&redirect_uri=https%3A%2F%2Flegacy.example%2Fcb&state=st&scope=openid";
    let r = op.authorize(bare, "approve:alice").await;
    let (to, params) = location(&r);
    assert_eq!(to, "https://legacy.example/cb");
    assert_eq!(param(&params, "error"), Some("invalid_request"));
    assert_eq!(
        param(&params, "error_description"),
        Some("nonce is required for an OpenID request without PKCE")
    );
    assert_eq!(param(&params, "state"), Some("st"));
    assert_eq!(param(&params, "iss"), Some(ISS));
    let code = op.code(&format!("{bare}&nonce=abc"), "approve:alice").await;
    let t = op
        .token(
            "legacy",
            &format!(
                "grant_type=authorization_code&code={code}&redirect_uri=https%3A%2F%2Flegacy.example%2Fcb"
            ),
        )
        .await
        .assert_token();
    assert_eq!(claims(&t)["nonce"], "abc");
    // A repeated nonce, or one too long, is refused at the redirect URI.
    for extra in ["&nonce=a&nonce=b", &format!("&nonce={}", "n".repeat(5000))] {
        let r = op.authorize(&query("rp", extra), "approve:alice").await;
        let (_, params) = location(&r);
        assert_eq!(
            param(&params, "error"),
            Some("invalid_request"),
            "{extra:.20}"
        );
    }
}

#[tokio::test]
async fn the_handler_sees_the_openid_parameters() {
    let op = op();
    let r = op
        .authorize(
            &query(
                "rp",
                "&nonce=n1&max_age=300&prompt=login+consent&login_hint=alice%40example.com&acr_values=urn%3Aacr%3A2fa+urn%3Aacr%3A1&ui_locales=fr-CA+en&display=popup",
            ),
            "page",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let body = String::from_utf8_lossy(&r.body);
    for shown in [
        "openid=true",
        "nonce=Some(\"n1\")",
        "max_age=Some(300)",
        "login=true",
        "consent=true",
        "login_hint=Some(\"alice@example.com\")",
        "hint=None",
        "acr=Some([\"urn:acr:2fa\", \"urn:acr:1\"])",
        "locales=Some([\"fr-CA\", \"en\"])",
        "display=Some(\"popup\")",
    ] {
        assert!(body.contains(shown), "{shown} in {body}");
    }
    // Bad values: an error at the redirect URI, each with its reason.
    for (extra, why) in [
        ("&prompt=sometimes", "unsupported prompt value"),
        (
            "&prompt=none+login",
            "prompt=none cannot be combined with another value",
        ),
        ("&max_age=-5", "max_age must be a number of seconds"),
        ("&max_age=soon", "max_age must be a number of seconds"),
        ("&prompt=login&prompt=consent", "prompt is repeated"),
    ] {
        let r = op.authorize(&query("rp", extra), "approve:alice").await;
        assert_eq!(r.status, StatusCode::FOUND, "{extra}");
        let (to, params) = location(&r);
        assert_eq!(to, "https://rp.example/cb");
        assert_eq!(param(&params, "error"), Some("invalid_request"), "{extra}");
        assert_eq!(param(&params, "error_description"), Some(why), "{extra}");
        assert_eq!(param(&params, "state"), Some("st"));
    }
    // redirect_uri is required of an OpenID request (Core §3.1.2.1), even with one registered.
    let no_redirect = query("rp", "").replace("&redirect_uri=https%3A%2F%2Frp.example%2Fcb", "");
    let r = op.authorize(&no_redirect, "approve:alice").await;
    let (to, params) = location(&r);
    assert_eq!(to, "https://rp.example/cb");
    assert_eq!(
        param(&params, "error_description"),
        Some("redirect_uri is required in an OpenID request")
    );
    // An OAuth request may still omit it.
    let r = op
        .authorize(&no_redirect.replace("openid+", ""), "approve:alice")
        .await;
    assert!(param(&location(&r).1, "code").is_some());
    // A display value Core does not define never fails a request (§15.1); it is not passed on.
    let r = op
        .authorize(&query("rp", "&display=hologram"), "page")
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&r.body).contains("display=None"));
    // An app's user id that cannot be a sub (Core §2: 1 to 255 ASCII characters): the app's
    // bug, a server_error at the redirect URI, no code.
    let r = op
        .authorize(&query("rp", ""), &format!("approve:{}", "u".repeat(256)))
        .await;
    assert_eq!(param(&location(&r).1, "error"), Some("server_error"));
    // Without openid in the scope these are not OpenID parameters: not checked, not shown.
    let r = op
        .authorize(
            &query("rp", "&prompt=sometimes").replace("openid+", ""),
            "page",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&r.body).contains("openid=false"));
}

#[tokio::test]
async fn prompt_none_never_shows_a_page_and_names_why() {
    let op = op();
    for (test, error) in [
        ("page", "interaction_required"),
        ("login_required", "login_required"),
        ("consent_required", "consent_required"),
        ("interaction_required", "interaction_required"),
        ("account_selection_required", "account_selection_required"),
        ("deny", "access_denied"),
    ] {
        let r = op.authorize(&query("rp", "&prompt=none"), test).await;
        assert_eq!(r.status, StatusCode::FOUND, "{test}: never a page");
        let (to, params) = location(&r);
        assert_eq!(to, "https://rp.example/cb");
        assert_eq!(param(&params, "error"), Some(error), "{test}");
        assert_eq!(param(&params, "state"), Some("st"));
        assert_eq!(param(&params, "iss"), Some(ISS));
        assert_eq!(param(&params, "code"), None);
    }
    // A session the app recognises at once: the code, silently.
    let t = op.sign_in("rp", "&prompt=none", "approve:alice").await;
    assert_eq!(claims(&t)["sub"], "alice");
}

#[tokio::test]
async fn max_age_and_prompt_login_make_the_app_authenticate_again() {
    let op = op();
    // max_age=60: an authentication 61 s old is too old; the client hears login_required.
    let old = format!("approve:alice@{}", START - 61);
    let r = op.authorize(&query("rp", "&max_age=60"), &old).await;
    let (_, params) = location(&r);
    assert_eq!(param(&params, "error"), Some("login_required"));
    assert_eq!(param(&params, "state"), Some("st"));
    // An approval that does not say when the user authenticated cannot satisfy max_age.
    let r = op
        .authorize(&query("rp", "&max_age=60"), "approve:alice")
        .await;
    assert_eq!(param(&location(&r).1, "error"), Some("login_required"));
    // 60 s old is fine, and the ID token says when (auth_time is required with max_age).
    let t = op
        .sign_in(
            "rp",
            "&max_age=60",
            &format!("approve:alice@{}", START - 60),
        )
        .await;
    assert_eq!(claims(&t)["auth_time"], START - 60);
    // max_age=0 and prompt=login: only an authentication during this request will do.
    for extra in ["&max_age=0", "&prompt=login"] {
        let before = format!("approve:alice@{}", START - 1);
        let r = op.authorize(&query("rp", extra), &before).await;
        assert_eq!(
            param(&location(&r).1, "error"),
            Some("login_required"),
            "{extra}"
        );
        let t = op
            .sign_in("rp", extra, &format!("approve:alice@{START}"))
            .await;
        assert_eq!(claims(&t)["auth_time"], START, "{extra}");
    }
    // Through the app's page: the request started at START, the user signed in 5 s later.
    let r = op.authorize(&query("rp", "&prompt=login"), "page").await;
    let body = String::from_utf8_lossy(&r.body).into_owned();
    let handle = body
        .strip_prefix("handle=")
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    let cookie = r.cookie();
    op.clock.advance(std::time::Duration::from_secs(5));
    let mut headers = http::HeaderMap::new();
    headers.insert("cookie", cookie.parse().unwrap());
    let r = reply(
        op.server
            .complete_authorization(
                &handle,
                &headers,
                Decision::approve("alice").authenticated(Authentication::at(op.clock.now())),
            )
            .await,
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let code = param(&location(&r).1, "code").unwrap().to_owned();
    let t = op.exchange("rp", &code).await.assert_token();
    assert_eq!(claims(&t)["auth_time"], START + 5);
}

#[tokio::test]
async fn a_refresh_returns_a_new_id_token_for_the_same_authentication() {
    let op = op();
    let first = op
        .sign_in(
            "rp",
            "&nonce=n1",
            &format!("approve:alice@{}#s1", START - 10),
        )
        .await;
    op.clock.advance(std::time::Duration::from_secs(100));
    let r = op
        .token(
            "rp",
            &format!(
                "grant_type=refresh_token&refresh_token={}",
                first["refresh_token"].as_str().unwrap()
            ),
        )
        .await;
    let second = r.assert_token();
    let (a, b) = (claims(&first), claims(&second));
    // Core §12.2: same iss, sub, aud, azp, auth_time, acr, amr; a new iat; no nonce.
    for same in ["iss", "sub", "aud", "azp", "auth_time", "acr", "amr", "sid"] {
        assert_eq!(a[same], b[same], "{same}");
    }
    assert_eq!(b["iat"], START + 100);
    assert!(b.get("nonce").is_none());
    assert_eq!(
        b["at_hash"],
        at_hash(second["access_token"].as_str().unwrap())
    );
    // A refresh that drops openid from the scope gets no ID token.
    let r = op
        .token(
            "rp",
            &format!(
                "grant_type=refresh_token&refresh_token={}&scope=profile",
                second["refresh_token"].as_str().unwrap()
            ),
        )
        .await
        .assert_token();
    assert!(r.get("id_token").is_none());
}

#[tokio::test]
async fn pairwise_subjects_are_stable_per_sector_and_differ_across_sectors() {
    let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    let op1 = op_with(
        Arc::clone(&store),
        Arc::new(ManualClock::new(START)),
        openid(),
    );
    let sub = |t: &Value| claims(t)["sub"].as_str().unwrap().to_owned();
    let a1 = sub(&op1.sign_in("pw-a1", "", "approve:alice").await);
    let a2 = sub(&op1.sign_in("pw-a2", "", "approve:alice").await);
    let b = sub(&op1.sign_in("pw-b", "", "approve:alice").await);
    let public = sub(&op1.sign_in("rp", "", "approve:alice").await);
    let bob = sub(&op1.sign_in("pw-a1", "", "approve:bob").await);
    assert_eq!(a1, a2, "one sector (a.example), one subject");
    assert_ne!(a1, b, "another sector, another subject");
    assert_ne!(a1, "alice");
    assert_eq!(public, "alice");
    assert_ne!(a1, bob);
    assert_eq!(a1.len(), 43, "an HMAC-SHA256, base64url");
    // Another instance (a restart) with the same key: the same subjects.
    let op2 = op_with(store, Arc::new(ManualClock::new(START)), openid());
    let t = op2.sign_in("pw-a1", "", "approve:alice").await;
    assert_eq!(sub(&t), a1);
    // Userinfo says the same sub as the ID token.
    let u = op2
        .userinfo_with(t["access_token"].as_str().unwrap())
        .await
        .json();
    assert_eq!(u["sub"], a1);
    let client = op2.server.client("pw-a1").await.unwrap().unwrap();
    assert_eq!(op2.server.subject_for(&client, "alice").unwrap(), a1);
    // A different key: different subjects.
    let op3 = op_with(
        Arc::new(MemoryStore::new()),
        Arc::new(ManualClock::new(START)),
        openid().pairwise_key([9u8; 32]),
    );
    assert_ne!(sub(&op3.sign_in("pw-a1", "", "approve:alice").await), a1);
    // The hint of a pairwise client names its pairwise subject.
    let id = t["id_token"].as_str().unwrap();
    let r = op2
        .authorize(&query("pw-a1", &format!("&id_token_hint={id}")), "page")
        .await;
    assert!(
        String::from_utf8_lossy(&r.body).contains(&format!("hint=Some({a1:?})")),
        "{:?}",
        String::from_utf8_lossy(&r.body)
    );
}

#[tokio::test]
async fn only_the_claims_the_scopes_allow_leave_the_server() {
    let op = op();
    let cases: [(&str, &[&str]); 5] = [
        ("openid", &["sub"]),
        ("openid profile", &["name", "sub"]),
        ("openid email", &["email", "email_verified", "sub"]),
        ("openid phone address", &["address", "phone_number", "sub"]),
        ("openid groups", &["groups", "sub"]),
    ];
    for (scope, expected) in cases {
        let q = query("rp", "").replace(
            "scope=openid+profile+email+offline_access",
            &format!("scope={}", scope.replace(' ', "+")),
        );
        let code = op.code(&q, "approve:alice").await;
        let t = op.exchange("rp", &code).await.assert_token();
        let u = op.userinfo_with(t["access_token"].as_str().unwrap()).await;
        assert_eq!(u.status, StatusCode::OK);
        assert_eq!(u.header("content-type"), Some("application/json"));
        assert_eq!(u.header("cache-control"), Some("no-store"));
        let v = u.json();
        let mut names: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        names.sort();
        assert_eq!(names, expected, "{scope}");
        assert_eq!(v["sub"], "alice", "never the source's sub");
    }
    // A token for another resource (RFC 8707) cannot fetch them: the ID token carries them.
    let code = op
        .code(
            &query("rp", "&resource=https%3A%2F%2Fapi.example%2F"),
            "approve:alice",
        )
        .await;
    let t = op.exchange("rp", &code).await.assert_token();
    let c = claims(&t);
    assert_eq!(c["email"], "alice@example.com");
    assert_eq!(c["name"], "alice Example");
    assert!(c.get("phone_number").is_none(), "phone was not granted");
    assert_eq!(c["iss"], ISS, "the source cannot override a protocol claim");
    assert!(c.get("internal_note").is_none());
    let u = op.userinfo_with(t["access_token"].as_str().unwrap()).await;
    assert_eq!(u.status, StatusCode::UNAUTHORIZED);
    assert!(
        u.header("www-authenticate")
            .unwrap()
            .contains("error=\"invalid_token\""),
    );
}

#[tokio::test]
async fn userinfo_answers_as_the_bearer_layer_does() {
    let op = op();
    let t = op.sign_in("rp", "", "approve:alice").await;
    let at = t["access_token"].as_str().unwrap();
    // POST with the token in the form body (RFC 6750 §2.2), and in the header.
    let r = op
        .userinfo(form("/oauth/userinfo", None, &format!("access_token={at}")))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["email"], "alice@example.com");
    let mut post = form("/oauth/userinfo", None, "");
    post.headers_mut()
        .insert("authorization", format!("Bearer {at}").parse().unwrap());
    assert_eq!(op.userinfo(post).await.status, StatusCode::OK);
    // No token: 401 with a bare challenge.
    let r = op
        .userinfo(Request::get("/").body(Full::new(Bytes::new())).unwrap())
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"tower-oauth2\"")
    );
    // Unknown token: invalid_token.
    let r = op.userinfo_with("nope").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.header("www-authenticate"),
        Some(
            "Bearer realm=\"tower-oauth2\", error=\"invalid_token\", error_description=\"The access token is invalid or revoked\""
        )
    );
    // Two methods at once: invalid_request, 400.
    let mut both = form("/oauth/userinfo", None, &format!("access_token={at}"));
    both.headers_mut()
        .insert("authorization", format!("Bearer {at}").parse().unwrap());
    let r = op.userinfo(both).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .contains("error=\"invalid_request\"")
    );
    // A token without openid: 403 insufficient_scope, naming it.
    let code = op
        .code(&query("rp", "").replace("openid+", ""), "approve:alice")
        .await;
    let plain = op.exchange("rp", &code).await.assert_token();
    let r = op
        .userinfo_with(plain["access_token"].as_str().unwrap())
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let challenge = r.header("www-authenticate").unwrap();
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert!(challenge.contains("scope=\"openid\""), "{challenge}");
    // Revoked: invalid_token.
    let r = reply(
        op.server
            .revocation_endpoint()
            .oneshot(form(
                "/oauth/revoke",
                Some(("rp", "rp-secret")),
                &format!("token={at}"),
            ))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(op.userinfo_with(at).await.status, StatusCode::UNAUTHORIZED);
    // Another method: 405 with Allow.
    let r = op
        .userinfo(Request::put("/").body(Full::new(Bytes::new())).unwrap())
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.header("allow"), Some("GET, POST"));
    // Expired: invalid_token, "expired".
    let t = op.sign_in("rp", "", "approve:alice").await;
    op.clock.advance(std::time::Duration::from_secs(3601));
    let r = op.userinfo_with(t["access_token"].as_str().unwrap()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.header("www-authenticate").unwrap().contains("expired"));
}

#[tokio::test]
async fn a_client_that_asked_gets_a_signed_userinfo() {
    let op = op();
    let t = op.sign_in("es", "", "approve:alice").await;
    let r = op.userinfo_with(t["access_token"].as_str().unwrap()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), Some("application/jwt"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let jwt = String::from_utf8(r.body.to_vec()).unwrap();
    assert_eq!(part(&jwt, 0)["alg"], "ES256");
    let c = part(&jwt, 1);
    assert_eq!(c["iss"], ISS);
    assert_eq!(c["aud"], "es");
    assert_eq!(c["sub"], "alice");
    assert_eq!(c["email"], "alice@example.com");
}

#[tokio::test]
async fn an_id_token_hint_must_be_ours_and_for_this_client() {
    let op = op();
    let t = op.sign_in("rp", "", "approve:alice").await;
    let id = t["id_token"].as_str().unwrap().to_owned();
    // Ours, for rp, even expired: the handler sees its subject.
    op.clock.advance(std::time::Duration::from_secs(7200));
    let r = op
        .authorize(&query("rp", &format!("&id_token_hint={id}")), "page")
        .await;
    assert!(String::from_utf8_lossy(&r.body).contains("hint=Some(\"alice\")"));
    // Another client's, a tampered one, an access token: invalid_request at the redirect URI.
    let mut tampered: Vec<String> = id.split('.').map(str::to_owned).collect();
    tampered[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(part(&id, 1).to_string().replace("alice", "mallory"));
    let tampered = tampered.join(".");
    for (client, hint) in [
        ("spa", id.as_str()),
        ("rp", tampered.as_str()),
        ("rp", "not-a-jwt"),
    ] {
        let r = op
            .authorize(&query(client, &format!("&id_token_hint={hint}")), "page")
            .await;
        assert_eq!(r.status, StatusCode::FOUND, "{client}");
        let (_, params) = location(&r);
        assert_eq!(param(&params, "error"), Some("invalid_request"));
        assert_eq!(
            param(&params, "error_description"),
            Some("id_token_hint is not an ID token this server issued to this client")
        );
    }
}

#[tokio::test]
async fn discovery_serves_one_document_with_the_openid_fields() {
    let op = op();
    let doc = |metadata: Metadata| {
        let endpoint = op.server.metadata_endpoint(metadata);
        async move {
            reply(
                endpoint
                    .oneshot(Request::get("/").body(Full::new(Bytes::new())).unwrap())
                    .await
                    .unwrap(),
            )
            .await
            .json()
        }
    };
    let d = doc(Metadata::new(ISS)).await;
    assert_eq!(d["issuer"], ISS);
    assert_eq!(
        d["authorization_endpoint"],
        format!("{ISS}/oauth/authorize")
    );
    assert_eq!(d["token_endpoint"], format!("{ISS}/oauth/token"));
    assert_eq!(d["userinfo_endpoint"], format!("{ISS}/oauth/userinfo"));
    assert_eq!(d["end_session_endpoint"], format!("{ISS}/oauth/logout"));
    assert_eq!(d["jwks_uri"], format!("{ISS}/.well-known/jwks.json"));
    assert_eq!(d["response_types_supported"], json!(["code"]));
    assert_eq!(d["subject_types_supported"], json!(["public", "pairwise"]));
    assert_eq!(
        d["id_token_signing_alg_values_supported"],
        json!(["ES256", "RS256", "EdDSA"])
    );
    let scopes = d["scopes_supported"].as_array().unwrap();
    for s in ["openid", "profile", "email", "groups", "offline_access"] {
        assert!(scopes.contains(&json!(s)), "{s}");
    }
    let claims = d["claims_supported"].as_array().unwrap();
    for c in [
        "sub",
        "iss",
        "auth_time",
        "nonce",
        "email",
        "name",
        "groups",
    ] {
        assert!(claims.contains(&json!(c)), "{c}");
    }
    assert_eq!(d["request_uri_parameter_supported"], false);
    assert_eq!(d["claims_parameter_supported"], false);
    // The app's own list gets openid; the paths can move.
    let d = doc(Metadata::new(ISS)
        .scopes_supported(["read"])
        .userinfo_endpoint("/me")
        .end_session_endpoint("https://auth.example/bye"))
    .await;
    assert_eq!(d["scopes_supported"], json!(["openid", "read"]));
    assert_eq!(d["userinfo_endpoint"], format!("{ISS}/me"));
    assert_eq!(d["end_session_endpoint"], "https://auth.example/bye");
    // Without a pairwise key, public subjects only.
    let public = op_with(
        Arc::new(MemoryStore::new()),
        Arc::new(ManualClock::new(START)),
        OpenId::new(),
    );
    let d = reply(
        public
            .server
            .metadata_endpoint(Metadata::new(ISS))
            .oneshot(Request::get("/").body(Full::new(Bytes::new())).unwrap())
            .await
            .unwrap(),
    )
    .await
    .json();
    assert_eq!(d["subject_types_supported"], json!(["public"]));
}

#[tokio::test]
async fn openid_needs_an_issuer_and_an_rs256_key() {
    let base = || {
        AuthServer::builder()
            .clients(clients())
            .openid(OpenId::new())
    };
    let err = base().signing_keys(KeySet::new(rsa())).build().unwrap_err();
    assert!(matches!(err, ConfigError::OpenId(_)), "{err}");
    let err = base()
        .configure(|c| c.issuer = Some(ISS.into()))
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("signing keys"), "{err}");
    let err = base()
        .configure(|c| c.issuer = Some(ISS.into()))
        .signing_keys(KeySet::new(SigningKey::generate_es256()))
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("RS256"), "{err}");
    let err = base()
        .configure(|c| c.issuer = Some(ISS.into()))
        .signing_keys(KeySet::new(rsa()))
        .openid(OpenId::new().pairwise_key(b"short"))
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("32 bytes"), "{err}");
    // A client's settings are checked when it is built.
    let err = Client::confidential("x", "s")
        .id_token_signed_response_alg("HS256")
        .build()
        .unwrap_err();
    assert!(matches!(err, ConfigError::OpenId(_)));
    let err = Client::confidential("x", "s")
        .redirect_uri("https://a.example/cb")
        .redirect_uri("https://b.example/cb")
        .subject_type(SubjectType::Pairwise)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("sector_identifier"), "{err}");
    Client::confidential("x", "s")
        .redirect_uri("https://a.example/cb")
        .redirect_uri("https://b.example/cb")
        .subject_type(SubjectType::Pairwise)
        .sector_identifier("example")
        .build()
        .unwrap();
}

/// An ID token of `rp` for alice, approved in session `sid` (when given).
async fn rp_session(op: &Op, sid: Option<&str>) -> Value {
    let test = match sid {
        Some(s) => format!("approve:alice@{START}#{s}"),
        None => format!("approve:alice@{START}"),
    };
    op.sign_in("rp", "", &test).await
}

#[tokio::test]
async fn logout_with_a_session_hint_revokes_the_session_and_redirects_with_state() {
    let op = op();
    let t1 = rp_session(&op, Some("s1")).await;
    let t2 = rp_session(&op, Some("s1")).await;
    let other = rp_session(&op, Some("s2")).await;
    let id = t1["id_token"].as_str().unwrap();
    let r = op
        .logout_get(&format!(
            "id_token_hint={id}&post_logout_redirect_uri=https%3A%2F%2Frp.example%2Fbye&state=xyz"
        ))
        .await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert_eq!(
        r.header("location"),
        Some("https://rp.example/bye?state=xyz")
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(
        r.header("set-cookie"),
        Some("app_session=; Max-Age=0"),
        "the app's hook"
    );
    // Both grants of session s1 are gone; s2's is not.
    for t in [&t1, &t2] {
        assert!(!op.active(t["access_token"].as_str().unwrap()).await);
        op.token(
            "rp",
            &format!(
                "grant_type=refresh_token&refresh_token={}",
                t["refresh_token"].as_str().unwrap()
            ),
        )
        .await
        .assert_error(400, "invalid_grant");
    }
    assert!(op.active(other["access_token"].as_str().unwrap()).await);
    let ended = op.ended.lock().unwrap();
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].subject.as_deref(), Some("alice"));
    assert_eq!(ended[0].session_id.as_deref(), Some("s1"));
    assert_eq!(ended[0].client_id.as_deref(), Some("rp"));
}

#[tokio::test]
async fn logout_without_a_known_session_asks_first() {
    let op = op();
    let t = rp_session(&op, None).await;
    let id = t["id_token"].as_str().unwrap();
    let at = t["access_token"].as_str().unwrap();
    let q = format!(
        "id_token_hint={id}&post_logout_redirect_uri=https%3A%2F%2Frp.example%2Fbye&state=xyz"
    );
    let get = |q: String, cookie: Option<String>| {
        let mut req = Request::get(format!("/oauth/logout?{q}"));
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        req.body(Full::new(Bytes::new())).unwrap()
    };
    let confirm = |answer: &str, handle: &str, cookie: Option<&str>| {
        let mut req = form(
            "/oauth/logout",
            None,
            &format!("logout_handle={handle}&confirm={answer}"),
        );
        if let Some(c) = cookie {
            req.headers_mut().insert("cookie", c.parse().unwrap());
        }
        req
    };
    let handle_of = |r: &Reply| {
        let body = String::from_utf8_lossy(&r.body).into_owned();
        let marker = "name=\"logout_handle\" value=\"";
        let start = body.find(marker).expect("a confirmation form") + marker.len();
        body[start..start + body[start..].find('"').unwrap()].to_owned()
    };
    // The page, binding this browser (its cookie): nothing revoked yet.
    let r = op.logout(get(q.clone(), None)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    assert!(String::from_utf8_lossy(&r.body).contains("Sign out?"));
    let browser = r.cookie();
    assert!(op.active(at).await);
    // "Stay signed in": still signed in.
    let r = op
        .logout(confirm("no", &handle_of(&r), Some(&browser)))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("location"), None);
    assert!(op.active(at).await);
    // A confirmation posted without the browser's cookie, or by another browser (a page
    // elsewhere that fetched a handle of its own): refused, nothing revoked, the handle kept.
    let page = op.logout(get(q.clone(), Some(browser.clone()))).await;
    assert_eq!(
        page.header("set-cookie"),
        None,
        "the same browser, the same cookie"
    );
    let handle = handle_of(&page);
    let other = op.logout(get(q.clone(), None)).await.cookie();
    for cookie in [None, Some(other.as_str())] {
        let r = op.logout(confirm("yes", &handle, cookie)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{cookie:?}");
        assert_eq!(r.header("location"), None);
        assert!(String::from_utf8_lossy(&r.body).contains("shown to another browser"));
        assert!(op.active(at).await);
    }
    // Confirmed by the browser that was asked: revoked (the client's grants for the user),
    // redirected with state.
    let r = op.logout(confirm("yes", &handle, Some(&browser))).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        r.header("location"),
        Some("https://rp.example/bye?state=xyz")
    );
    assert!(!op.active(at).await);
    // The handle is used up.
    let r = op.logout(confirm("yes", &handle, Some(&browser))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // With no hint at all: a confirmation, then a plain "signed out" page.
    let r = op.logout(get(String::new(), Some(browser.clone()))).await;
    let r = op
        .logout(confirm("yes", &handle_of(&r), Some(&browser)))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&r.body).contains("You are signed out"));
    // A link anyone can open does not fill the store: one browser has at most
    // max_pending_authorizations_per_agent (20) waiting per window, then a 503 page.
    let mut refused = None;
    for i in 0..25 {
        let r = op.logout(get(String::new(), Some(browser.clone()))).await;
        if r.status != StatusCode::OK {
            refused = Some((i, r));
            break;
        }
    }
    let (i, r) = refused.expect("bounded");
    assert!(i < 20, "{i}");
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(String::from_utf8_lossy(&r.body).contains("too many logout requests are waiting"));
}

#[tokio::test]
async fn logout_redirects_only_to_a_registered_uri_compared_exactly() {
    let op = op();
    let t = rp_session(&op, Some("s1")).await;
    let id = t["id_token"].as_str().unwrap();
    let spa = op
        .sign_in("spa", "", &format!("approve:alice@{START}#s9"))
        .await;
    let spa_id = spa["id_token"].as_str().unwrap();
    let cases = [
        // Not registered, or not exactly.
        format!("id_token_hint={id}&post_logout_redirect_uri=https%3A%2F%2Fevil.example%2F"),
        format!("id_token_hint={id}&post_logout_redirect_uri=https%3A%2F%2Frp.example%2Fbye%2F"),
        format!(
            "id_token_hint={id}&post_logout_redirect_uri=https%3A%2F%2Frp.example%2Fbye%3Fx%3D1"
        ),
        // No client to check it against.
        "post_logout_redirect_uri=https%3A%2F%2Frp.example%2Fbye".to_owned(),
        // Another client's URI (spa registered none).
        format!("id_token_hint={spa_id}&post_logout_redirect_uri=https%3A%2F%2Frp.example%2Fbye"),
        // client_id that is not the hint's audience.
        format!("id_token_hint={id}&client_id=spa"),
        // A hint that is not ours.
        "id_token_hint=eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.".to_owned(),
        "client_id=nobody&post_logout_redirect_uri=https%3A%2F%2Frp.example%2Fbye".to_owned(),
    ];
    for q in &cases {
        let r = op.logout_get(q).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q:.90}");
        assert_eq!(r.header("location"), None, "never redirected: {q:.90}");
        let body = String::from_utf8_lossy(&r.body);
        assert!(body.contains("<code>invalid_request</code>"), "{body}");
        assert!(body.contains("This sign-out request cannot be completed"));
        assert_eq!(r.header("x-frame-options"), Some("DENY"));
    }
    // Nothing was revoked by any of them.
    assert!(op.active(t["access_token"].as_str().unwrap()).await);
    // client_id alone (no hint) with its registered URI: confirmation first, then there.
    let r = op
        .logout_get("client_id=rp&post_logout_redirect_uri=https%3A%2F%2Frp.example%2Fbye")
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // An expired hint is still a hint (RP-Initiated Logout §2).
    op.clock.advance(std::time::Duration::from_secs(10 * 3600));
    let r = op
        .logout_get(&format!(
            "id_token_hint={id}&post_logout_redirect_uri=https%3A%2F%2Frp.example%2Fbye"
        ))
        .await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert_eq!(r.header("location"), Some("https://rp.example/bye"));
}

#[tokio::test]
async fn logout_can_revoke_the_clients_grants_for_the_user_instead() {
    let op = op_with(
        Arc::new(MemoryStore::new()),
        Arc::new(ManualClock::new(START)),
        openid().logout_revokes(LogoutRevokes::ClientForUser),
    );
    let a = rp_session(&op, Some("s1")).await;
    let b = rp_session(&op, Some("s2")).await;
    let es = op
        .sign_in("es", "", &format!("approve:alice@{START}#s1"))
        .await;
    let id = a["id_token"].as_str().unwrap();
    let r = op.logout_get(&format!("id_token_hint={id}")).await;
    assert_eq!(r.status, StatusCode::OK, "no redirect asked: a page");
    for t in [&a, &b] {
        assert!(!op.active(t["access_token"].as_str().unwrap()).await);
    }
    // Another client of the same session keeps its grant.
    assert!(op.active(es["access_token"].as_str().unwrap()).await);
}

/// The whole of it on each store: the code's login, the grant's, the session's grants — all
/// kept as short-lived records beside the grants.
async fn on_store(backend: Backend, test: &str) {
    let Some(store) = open(backend, test).await else {
        return;
    };
    let now = SystemClock.now();
    let op = op_with(store, Arc::new(ManualClock::new(now)), openid());
    let t = op
        .sign_in("rp", "&nonce=n9", &format!("approve:alice@{now}#s-{test}"))
        .await;
    let c = claims(&t);
    assert_eq!(
        (c["nonce"].as_str(), c["sid"].as_str()),
        (Some("n9"), Some(&*format!("s-{test}")))
    );
    let r = op
        .token(
            "rp",
            &format!(
                "grant_type=refresh_token&refresh_token={}",
                t["refresh_token"].as_str().unwrap()
            ),
        )
        .await
        .assert_token();
    assert_eq!(claims(&r)["auth_time"], now);
    let u = op.userinfo_with(r["access_token"].as_str().unwrap()).await;
    assert_eq!(u.json()["email"], "alice@example.com");
    let id = r["id_token"].as_str().unwrap();
    let out = op
        .logout_get(&format!(
            "id_token_hint={id}&post_logout_redirect_uri=https%3A%2F%2Frp.example%2Fbye"
        ))
        .await;
    assert_eq!(out.status, StatusCode::FOUND);
    assert!(!op.active(r["access_token"].as_str().unwrap()).await);
}

#[tokio::test]
async fn on_memory() {
    on_store(Backend::Memory, "openid").await;
}

#[tokio::test]
async fn on_redis() {
    on_store(Backend::Redis, "openid").await;
}

#[tokio::test]
async fn on_redis_cluster() {
    on_store(Backend::RedisCluster, "openid").await;
}

#[tokio::test]
async fn on_postgres() {
    on_store(Backend::Postgres, "openid").await;
}

/// A client that registers itself (RFC 7591) may ask for the OpenID settings (OpenID Connect
/// Registration 1.0 §2, RP-Initiated Logout §3.1) the server can honour, and gets them.
#[tokio::test]
async fn a_registered_client_asks_for_its_openid_settings() {
    let clock = Arc::new(ManualClock::new(START));
    let server = AuthServer::builder()
        .configure(|c| c.issuer = Some(ISS.into()))
        .signing_keys(KeySet::new(rsa()).with_signing_key(SigningKey::generate_es256()))
        .openid(openid())
        .registration(tower_oauth2::registration::Registration::new())
        .authorization_handler(decide)
        .clock(Arc::clone(&clock))
        .build()
        .unwrap();
    let register = |body: Value| {
        let server = server.clone();
        async move {
            let req = Request::post("/oauth/register")
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(body.to_string())))
                .unwrap();
            reply(server.registration_endpoint().oneshot(req).await.unwrap()).await
        }
    };
    let base = json!({
        "redirect_uris": ["https://app.example/cb"],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": "openid profile email",
    });
    let with = |extra: Value| {
        let mut v = base.clone();
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        v
    };
    let r = register(with(json!({
        "id_token_signed_response_alg": "ES256",
        "userinfo_signed_response_alg": "RS256",
        "subject_type": "pairwise",
        "post_logout_redirect_uris": ["https://app.example/bye"],
    })))
    .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{:?}",
        String::from_utf8_lossy(&r.body)
    );
    let got = r.json();
    assert_eq!(got["id_token_signed_response_alg"], "ES256");
    assert_eq!(got["userinfo_signed_response_alg"], "RS256");
    assert_eq!(got["subject_type"], "pairwise");
    assert_eq!(
        got["post_logout_redirect_uris"],
        json!(["https://app.example/bye"])
    );
    let id = got["client_id"].as_str().unwrap();
    let client = server.client(id).await.unwrap().unwrap();
    assert_eq!(client.id_token_signed_response_alg(), "ES256");
    assert_eq!(client.sector_identifier(), Some("app.example"));
    assert_eq!(
        client.post_logout_redirect_uris(),
        ["https://app.example/bye"]
    );
    // What the server cannot honour, or what is malformed: invalid_client_metadata.
    for (extra, why) in [
        (
            json!({"id_token_signed_response_alg": "HS256"}),
            "must be one of",
        ),
        (
            json!({"id_token_signed_response_alg": "EdDSA"}),
            "does not sign with EdDSA",
        ),
        (json!({"subject_type": "secret"}), "public or pairwise"),
        (
            json!({"sector_identifier_uri": "https://app.example/s.json"}),
            "not supported",
        ),
        (
            json!({"subject_type": "pairwise", "redirect_uris": ["https://a.example/cb", "https://b.example/cb"]}),
            "one host",
        ),
        (
            json!({"post_logout_redirect_uris": ["http://evil.example/"]}),
            "post_logout_redirect_uris",
        ),
    ] {
        let r = register(with(extra.clone())).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{extra}");
        assert_eq!(r.json()["error"], "invalid_client_metadata", "{extra}");
        let description = r.json()["error_description"].as_str().unwrap().to_owned();
        assert!(description.contains(why), "{extra}: {description}");
    }
    // Without a pairwise key, pairwise subjects are not offered.
    let plain = AuthServer::builder()
        .configure(|c| c.issuer = Some(ISS.into()))
        .signing_keys(KeySet::new(rsa()))
        .openid(OpenId::new())
        .registration(tower_oauth2::registration::Registration::new())
        .build()
        .unwrap();
    let req = Request::post("/oauth/register")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(
            with(json!({"subject_type": "pairwise"})).to_string(),
        )))
        .unwrap();
    let r = reply(plain.registration_endpoint().oneshot(req).await.unwrap()).await;
    assert_eq!(r.json()["error"], "invalid_client_metadata");
}

/// Sign-ins of one session exchanged at the same moment are all in the session's index: a
/// logout revokes every one of them (the index is merged, never overwritten).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_sign_ins_of_one_session_are_all_revoked_at_logout() {
    for backend in [
        Backend::Memory,
        Backend::Redis,
        Backend::RedisCluster,
        Backend::Postgres,
    ] {
        let Some(store) = open(backend, "openid_concurrent").await else {
            continue;
        };
        let now = SystemClock.now();
        let op = op_with(store, Arc::new(ManualClock::new(now)), openid());
        let sid = format!("many-{backend:?}");
        let mut codes = Vec::new();
        for _ in 0..48 {
            let test = format!("approve:alice@{now}#{sid}");
            codes.push(op.code(&query("es", ""), &test).await);
        }
        let exchanges: Vec<_> = codes.into_iter().map(|code| {
            let endpoint = op.server.token_endpoint();
            tokio::spawn(async move {
                let body = format!(
                    "grant_type=authorization_code&code={code}&redirect_uri=https%3A%2F%2Fes.example%2Fcb&code_verifier={VERIFIER}"
                );
                let req = form("/oauth/token", Some(("es", "secret")), &body);
                reply(endpoint.oneshot(req).await.unwrap()).await.assert_token()
            })
        }).collect();
        let mut tokens = Vec::new();
        for t in exchanges {
            tokens.push(t.await.unwrap());
        }
        let id = tokens[0]["id_token"].as_str().unwrap();
        let r = op.logout_get(&format!("id_token_hint={id}")).await;
        assert_eq!(r.status, StatusCode::OK, "{backend:?}: no redirect asked");
        for t in &tokens {
            assert!(
                !op.active(t["access_token"].as_str().unwrap()).await,
                "{backend:?}: a grant of the session outlived its logout"
            );
        }
    }
}
