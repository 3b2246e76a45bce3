//! The quickstart: an OAuth 2.0 authorization server and a protected API in one axum app.
//!
//! ```sh
//! cargo run --example quickstart            # listens on 127.0.0.1:3000 (PORT overrides)
//! cargo run --example quickstart -- --store redis://127.0.0.1:6379      # shared store
//! cargo run --example quickstart -- --store redis+cluster://127.0.0.1:7000,127.0.0.1:7001
//! cargo run --example quickstart -- --store postgres://postgres@127.0.0.1:5432/test
//! cargo run --example quickstart -- --access-token-format jwt     # RFC 9068 access tokens
//! cargo run --example quickstart -- --access-token-format jwt --signing-key key.pem
//! curl -X POST -H 'Authorization: Basic dGVzdGNsaWVudDpzZWNyZXQ=' \
//!   -d 'grant_type=password&username=test&password=test' localhost:3000/oauth/token
//! ```
//!
//! Routes:
//! - `GET|POST /oauth/authorize` — the authorization endpoint (RFC 6749 §3.1, RFC 9207), with a
//!   demo login and consent page (`login.rs`) posted to `/oauth/authorize/login`;
//! - `POST /oauth/par` — pushed authorization requests (RFC 9126);
//! - `GET /callback` — the demo clients' redirect URI: shows the code and the command that
//!   exchanges it;
//! - `POST /oauth/token` — the token endpoint (also at `/token`, the path of the
//!   oauth2-server-php examples, and `/api/oauth/token`, the Grape::OAuth2 one);
//! - `POST /oauth/revoke` (RFC 7009), `POST /oauth/introspect` (RFC 7662);
//! - `POST /oauth/device_authorization` and `GET|POST /device` — the device grant (RFC 8628)
//!   for the public client `quickstart-cli` (`cargo run --example device_cli`): the user enters
//!   the code at `http://localhost:3000/device` and signs in on the demo login page;
//! - `POST /oauth/register` — dynamic client registration (RFC 7591), open to public clients
//!   with `https` or loopback redirect URIs; `GET|PUT|DELETE /oauth/register/{client_id}` with
//!   the registration access token (RFC 7592). A registration that obtains no token within a
//!   day lapses. A `client_id` that is an `https` URL names the client's metadata document
//!   (client ID metadata documents), fetched only from public addresses;
//! - `GET /.well-known/oauth-authorization-server` (RFC 8414), `GET /.well-known/jwks.json`
//!   (the signing keys; access tokens are JWTs with `--access-token-format jwt`);
//! - `GET /api/me` — protected: echoes the token's client, user and scope. The API is the
//!   resource `http://localhost:3000/api` (RFC 8707): a token asked for with that `resource`, or
//!   for none, is accepted; its metadata (RFC 9728) is at
//!   `/.well-known/oauth-protected-resource/api`.
//!
//! Demo clients and users (those of the refresh-token guides users paste from): client `testclient`/`secret` with user
//! `test`/`test`, and client `TestClient`/`TestSecret` with user `bshaffer`/`brent123`; and the
//! public client `quickstart-spa` (no secret, PKCE S256, redirect `http://127.0.0.1:3000/callback`
//! on any port). On start it prints an authorize URL with a fresh PKCE pair and the command that
//! exchanges the code.
//!
//! The token store is in memory unless `--store URL` (or env `STORE_URL`) names a Redis
//! (`redis://…`) server, a Redis Cluster (`redis+cluster://host:port,host:port…`, any of its nodes)
//! or a PostgreSQL (`postgres://…`) server; several instances on one shared store
//! accept each other's tokens and see each other's revocations at once.
//!
//! JWTs are signed with an ES256 key generated at start, unless `--signing-key FILE` (env
//! `SIGNING_KEY_FILE`) names a PEM private key (P-256, Ed25519 or RSA; e.g.
//! `openssl genpkey -algorithm ed25519 -out key.pem`): instances sharing a store then also share
//! the key, so each accepts the others' JWTs.

mod login;

use std::{io::Write, net::SocketAddr, sync::Arc};

use axum::{
    Extension, Json, Router,
    extract::{Query, State},
    response::Html,
    routing::get,
};
use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tower_oauth2::{
    AccessTokenFormat, AuthServer, Client, GrantType, InMemoryClients, Metadata, TokenInfo,
    bearer::ProtectedResourceMetadata,
    endpoint::html_escape,
    events::Event,
    jose::{KeySet, SigningKey},
    openid::OpenId,
    registration::{ClientIdMetadataDocuments, Registration},
    store::{MemoryStore, PostgresStore, RedisStore, TokenStore},
};

/// The command line: `--store URL` (env `STORE_URL`; memory when absent),
/// `--access-token-format opaque|jwt` (env `ACCESS_TOKEN_FORMAT`; opaque when absent) and
/// `--signing-key FILE` (env `SIGNING_KEY_FILE`; a generated ES256 key when absent), each also
/// as `--flag=value`.
struct Args {
    store_url: Option<String>,
    access_token_format: AccessTokenFormat,
    signing_key: Option<String>,
}

fn args() -> Result<Args, String> {
    let usage =
        "usage: quickstart [--store URL] [--access-token-format opaque|jwt] [--signing-key FILE]";
    let mut store = None;
    let mut format = None;
    let mut key = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_owned(), Some(v.to_owned())),
            None => (arg.clone(), None),
        };
        let mut value = || inline.clone().or_else(|| args.next()).ok_or(usage);
        match flag.as_str() {
            "--store" => store = Some(value()?),
            "--access-token-format" => format = Some(value()?),
            "--signing-key" => key = Some(value()?),
            _ => return Err(format!("{usage}, got {arg:?}")),
        }
    }
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let access_token_format = match format.or_else(|| env("ACCESS_TOKEN_FORMAT")).as_deref() {
        None | Some("opaque") => AccessTokenFormat::Opaque,
        Some("jwt") => AccessTokenFormat::Jwt,
        Some(other) => return Err(format!("{usage}: unknown access token format {other:?}")),
    };
    Ok(Args {
        store_url: store.or_else(|| env("STORE_URL")),
        access_token_format,
        signing_key: key.or_else(|| env("SIGNING_KEY_FILE")),
    })
}

async fn open_store(url: Option<&str>) -> Result<Arc<dyn TokenStore>, Box<dyn std::error::Error>> {
    Ok(match url {
        None => Arc::new(MemoryStore::new()),
        Some(url)
            if url.starts_with("redis://")
                || url.starts_with("rediss://")
                || url.starts_with("redis+cluster://") =>
        {
            Arc::new(RedisStore::new(url)?)
        }
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            let store = PostgresStore::new(url)?;
            store.migrate().await?;
            Arc::new(store)
        }
        Some(url) => return Err(format!("unsupported store URL {url:?}").into()),
    })
}

async fn me(Extension(token): Extension<TokenInfo>) -> Json<Value> {
    Json(json!({
        "client_id": &*token.client_id,
        "user": token.subject.as_deref(),
        "scope": token.scope.as_str(),
        "expires_at": token.expires_at,
    }))
}

fn demo_client(id: &str, secret: &str) -> Result<Client, tower_oauth2::ConfigError> {
    Client::confidential(id, secret)
        .grant_types([
            GrantType::Password,
            GrantType::RefreshToken,
            GrantType::ClientCredentials,
            GrantType::AuthorizationCode,
        ])
        .redirect_uri("http://localhost:3000/callback")
        .scope("openid profile email read write offline_access")
        // What a request without `scope` gets (the guides' curl lines): the API's scopes.
        .default_scope("read write offline_access")
        // May call the introspection endpoint, so the README's curl works.
        .introspect(true)
        .build()
}

/// The public client a browser, SPA or CLI would be: no secret, PKCE S256, loopback callback;
/// after logout (OpenID Connect) it may send the user back to the quickstart's home page.
fn spa_client(port: u16) -> Result<Client, tower_oauth2::ConfigError> {
    let mut client = Client::public("quickstart-spa")
        .grant_types([GrantType::AuthorizationCode, GrantType::RefreshToken])
        .redirect_uri("http://127.0.0.1:3000/callback")
        .scope("openid profile email read write offline_access")
        .default_scope("read write offline_access")
        .post_logout_redirect_uri("http://127.0.0.1:3000/");
    if port != 3000 {
        // Post-logout URIs compare exactly (no loopback port leeway): this run's port too.
        client = client.post_logout_redirect_uri(format!("http://127.0.0.1:{port}/"));
    }
    client.build()
}

/// The CLI of `examples/device_cli.rs`: a public client that logs in with the device grant
/// (RFC 8628) and keeps a refresh token.
fn cli_client() -> Result<Client, tower_oauth2::ConfigError> {
    Client::public("quickstart-cli")
        .grant_types([GrantType::DeviceCode, GrantType::RefreshToken])
        .scope("read write offline_access")
        .name("quickstart CLI")
        .build()
}

/// The flow printed at start: its state and PKCE verifier, so `/callback` can show the exact
/// exchange command.
#[derive(Clone)]
struct Printed {
    state: String,
    nonce: String,
    verifier: String,
    port: u16,
}

#[derive(serde::Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
    iss: Option<String>,
}

/// The demo clients' redirect URI: the code, and how to exchange it.
async fn callback(
    State((printed, _)): State<(Printed, AuthServer)>,
    Query(q): Query<CallbackQuery>,
) -> Html<String> {
    let esc = |s: &Option<String>| html_escape(s.as_deref().unwrap_or(""));
    if let Some(error) = &q.error {
        return Html(format!(
            "<!doctype html><meta charset=utf-8><title>Denied</title>\
             <style>body{{font-family:system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem}}</style>\
             <h1>Authorization failed</h1>\
             <p id=error><code>{}</code> {}</p><p>iss: <code>{}</code></p>",
            html_escape(error),
            esc(&q.error_description),
            esc(&q.iss)
        ));
    }
    let code = q.code.clone().unwrap_or_default();
    // A code this server issues has the token alphabet; anything else came from someone else,
    // and is never put into a command meant to be pasted into a shell.
    if !tower_oauth2::token::is_b64token(&code) || code.len() < 43 {
        return Html(format!(
            "<!doctype html><meta charset=utf-8><title>Callback</title>\
             <style>body{{font-family:system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem}}</style>\
             <h1>Not a code from this server</h1>\
             <p>The <code>code</code> parameter (<code id=code>{}</code>) is not one this server issues, \
             so no command to exchange it is shown.</p>",
            html_escape(&code)
        ));
    }
    let port = printed.port;
    let printed_flow = q.state.as_deref() == Some(printed.state.as_str());
    let verifier = if printed_flow {
        printed.verifier.clone()
    } else {
        "<the code_verifier of your request>".to_owned()
    };
    // The printed flow's code can also be exchanged here, to see the ID token's claims.
    let exchange_here = if printed_flow {
        format!(
            "<form method=post action=/callback><input type=hidden name=code value=\"{}\">\
             <button id=exchange-here>Exchange it here and show the ID token</button></form>",
            html_escape(&code)
        )
    } else {
        String::new()
    };
    let spa = format!(
        "curl -d grant_type=authorization_code -d client_id=quickstart-spa -d code={code} -d redirect_uri=http://127.0.0.1:{port}/callback -d code_verifier={verifier} localhost:{port}/oauth/token"
    );
    let confidential = format!(
        "curl -u testclient:secret -d grant_type=authorization_code -d code={code} -d redirect_uri=http://localhost:3000/callback -d code_verifier=<the code_verifier of your request> localhost:{port}/oauth/token"
    );
    Html(format!(
        "<!doctype html><meta charset=utf-8><title>Callback</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem}}\
         pre{{white-space:pre-wrap;word-break:break-all;background:#f4f4f4;padding:.6rem}}</style>\
         <h1>Authorization code received</h1>\
         <p>code: <code id=code>{}</code></p><p>state: <code id=state>{}</code> · iss: <code>{}</code></p>\
         <p>Exchange it (within 60 s; codes are single-use) as <code>quickstart-spa</code>:</p><pre id=exchange>{}</pre>\
         {}\
         <p>or, for a request made by <code>testclient</code>:</p><pre>{}</pre>",
        html_escape(&code),
        esc(&q.state),
        esc(&q.iss),
        html_escape(&spa),
        exchange_here,
        html_escape(&confidential)
    ))
}

#[derive(serde::Deserialize)]
struct Exchange {
    code: String,
}

/// The printed flow's code, exchanged by the quickstart itself (it knows the verifier): the
/// token response, the ID token's claims decoded (its signature is the client's to check:
/// `openid-client` or `openidconnect` do), userinfo, and how to refresh and sign out.
async fn callback_exchange(
    State((printed, server)): State<(Printed, AuthServer)>,
    axum::Form(form): axum::Form<Exchange>,
) -> Html<String> {
    use tower::ServiceExt;
    let port = printed.port;
    let body = format!(
        "grant_type=authorization_code&client_id=quickstart-spa&code={}&redirect_uri=http%3A%2F%2F127.0.0.1%3A{port}%2Fcallback&code_verifier={}",
        percent(&form.code),
        printed.verifier
    );
    let request = http::Request::post("/oauth/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(axum::body::Body::from(body))
        .expect("a valid request");
    let response = server.token_endpoint().oneshot(request).await;
    let Ok(response) = response;
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let tokens: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let style = "<style>body{font-family:system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem}\
         pre{white-space:pre-wrap;word-break:break-all;background:#f4f4f4;padding:.6rem}</style>";
    let Some(id_token) = tokens["id_token"].as_str() else {
        return Html(format!(
            "<!doctype html><meta charset=utf-8><title>Exchange failed</title>{style}\
             <h1>The exchange failed</h1><pre id=response>{}</pre>",
            html_escape(&String::from_utf8_lossy(&bytes))
        ));
    };
    let claims = id_token
        .split('.')
        .nth(1)
        .and_then(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .ok()
        })
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .unwrap_or(Value::Null);
    let nonce_ok = claims["nonce"].as_str() == Some(printed.nonce.as_str());
    let access = tokens["access_token"].as_str().unwrap_or("");
    let refresh = tokens["refresh_token"].as_str().unwrap_or("<none>");
    let commands = format!(
        "curl -H 'Authorization: Bearer {access}' localhost:{port}/oauth/userinfo\n\
         curl -d grant_type=refresh_token -d client_id=quickstart-spa -d refresh_token={refresh} localhost:{port}/oauth/token"
    );
    let logout = format!(
        "/oauth/logout?id_token_hint={id_token}&post_logout_redirect_uri=http%3A%2F%2F127.0.0.1%3A{port}%2F&state=bye"
    );
    Html(format!(
        "<!doctype html><meta charset=utf-8><title>Signed in</title>{style}\
         <h1>Signed in: ID token received</h1>\
         <p>The ID token's claims (nonce {}):</p><pre id=claims>{}</pre>\
         <p>Call userinfo and refresh:</p><pre id=commands>{}</pre>\
         <p><a id=logout href=\"{}\">Sign out</a> (RP-initiated logout, back to the home page)</p>\
         <p>The token response:</p><pre id=response>{}</pre>",
        if nonce_ok {
            "matches the printed one"
        } else {
            "<strong>does not match</strong>"
        },
        html_escape(&serde_json::to_string_pretty(&claims).unwrap_or_default()),
        html_escape(&commands),
        html_escape(&logout),
        html_escape(&serde_json::to_string_pretty(&tokens).unwrap_or_default()),
    ))
}

/// Percent-encode a form value (a code has the token alphabet; anything else is encoded).
fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[derive(serde::Deserialize)]
struct HomeQuery {
    state: Option<String>,
}

/// The home page: where `quickstart-spa` returns after logout (its post-logout redirect URI).
async fn home(Query(q): Query<HomeQuery>) -> Html<String> {
    let back = q
        .state
        .map(|s| {
            format!(
                "<p id=signed-out>Signed out (state <code id=state>{}</code>).</p>",
                html_escape(&s)
            )
        })
        .unwrap_or_default();
    Html(format!(
        "<!doctype html><meta charset=utf-8><title>tower-oauth2 quickstart</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem}}</style>\
         <h1>tower-oauth2 quickstart</h1>{back}\
         <p>Discovery: <a href=/.well-known/openid-configuration>/.well-known/openid-configuration</a> ·\
         <a href=/.well-known/oauth-authorization-server>/.well-known/oauth-authorization-server</a></p>"
    ))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = match std::env::var("PORT") {
        Ok(p) => p
            .parse()
            .map_err(|_| format!("PORT must be a port number, got {p:?}"))?,
        Err(_) => 3000,
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let args = args()?;
    let url = args.store_url.clone();
    let store = open_store(url.as_deref()).await?;

    let clients = InMemoryClients::new()
        .with(demo_client("testclient", "secret")?)
        .with(demo_client("TestClient", "TestSecret")?)
        .with(spa_client(port)?)
        .with(cli_client()?);
    // The demo users of the refresh-token guides.
    let accounts = [("test", "test"), ("bshaffer", "brent123")];
    let issuer = format!("http://localhost:{port}");
    // A key generated at start is fine for a demo (its tokens die with the process); real
    // servers load theirs, so that every instance signs with the same key.
    let key = match &args.signing_key {
        None => SigningKey::generate_es256(),
        Some(file) => {
            let pem = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
            SigningKey::from_pem(&pem).map_err(|e| format!("{file}: {e}"))?
        }
    };
    // OpenID Connect signs ID tokens with RS256 unless a client asks otherwise: an RSA key
    // beside the access tokens' one (the file's, when it is RSA).
    let keys = match key.algorithm() {
        "RS256" => KeySet::new(key),
        _ => KeySet::new(key).with_signing_key(SigningKey::generate_rs256()),
    };
    let login = login::DemoLogin::new(&accounts);
    // The protected API's resource identifier and metadata (RFC 9728).
    let api = ProtectedResourceMetadata::new(format!("{issuer}/api"))
        .authorization_server(&issuer)
        .scopes_supported(["read", "write"])
        .resource_name("tower-oauth2 quickstart API");
    let server = AuthServer::builder()
        .clients(clients)
        .users(login::DemoLogin::users_of(&accounts))
        .allow_grant_type(GrantType::Password)
        // The device grant (RFC 8628) for `examples/device_cli.rs`: codes live 600 s, polls
        // every 5 s; the user enters the code at /device.
        .allow_grant_type(GrantType::DeviceCode)
        .configure(|c| {
            c.issuer = Some(issuer.clone());
            c.access_token_format = args.access_token_format;
            // The protected API as a resource (RFC 8707) clients may name with `resource`.
            c.resources = vec![api.resource().to_owned()];
        })
        .signing_keys(keys)
        // OpenID Connect: ID tokens, /oauth/userinfo, /.well-known/openid-configuration and
        // /oauth/logout. The demo users' names and emails are their claims; pairwise subjects
        // for clients that ask (keyed per run: a real server keeps its key).
        .openid(
            OpenId::new()
                .claims(login::DemoLogin::claims)
                .pairwise_key(tower_oauth2::token::generate().expose()),
        )
        .authorization_handler(login.handler())
        // Clients may register themselves (RFC 7591): public ones with https or loopback
        // redirect URIs; unused registrations lapse after a day.
        .registration(Registration::new())
        // A client_id that is an https URL names its metadata document (fetched safely).
        .client_id_metadata_documents(ClientIdMetadataDocuments::new())
        .shared_store(store)
        .on_event(|event: &Event| eprintln!("event: {event:?}"))
        .build()?;

    let token = server.token_endpoint();
    let verifier = tower_oauth2::token::generate().expose().to_owned();
    let printed = Printed {
        state: tower_oauth2::token::generate().expose()[..16].to_owned(),
        nonce: tower_oauth2::token::generate().expose()[..16].to_owned(),
        verifier,
        port,
    };
    let app = Router::new()
        .route("/api/me", get(me))
        // route_layer: only matched routes are guarded, so unknown paths stay 404. A token for
        // another resource is refused; one that names none (the curl examples) is accepted.
        .route_layer(
            server
                .bearer_layer()
                .allow_no_audience(true)
                .audience(api.resource())
                .resource_metadata(api.metadata_url()),
        )
        .route_service(&api.well_known_path(), api.endpoint())
        .route(
            "/callback",
            get(callback)
                .post(callback_exchange)
                .with_state((printed.clone(), server.clone())),
        )
        .route_service("/oauth/authorize", server.authorization_endpoint())
        .route_service("/oauth/par", server.pushed_authorization_endpoint())
        .route_service("/.well-known/jwks.json", server.jwks_endpoint())
        .merge(login.routes(server.clone()))
        .route_service("/oauth/token", token.clone())
        .route_service("/token", token.clone())
        .route_service("/api/oauth/token", token)
        .route_service("/oauth/revoke", server.revocation_endpoint())
        .route_service("/oauth/introspect", server.introspection_endpoint())
        .route_service(
            "/oauth/device_authorization",
            server.device_authorization_endpoint(),
        )
        .route_service("/device", server.device_verification_endpoint())
        .route_service("/oauth/register", server.registration_endpoint())
        .route_service(
            "/oauth/register/{client_id}",
            server.registration_endpoint(),
        )
        .route_service("/oauth/userinfo", server.userinfo_endpoint())
        .route_service("/oauth/logout", server.end_session_endpoint())
        .route("/", get(home))
        .route_service(
            "/.well-known/oauth-authorization-server",
            server.metadata_endpoint(Metadata::new(&issuer)),
        )
        // OpenID Connect Discovery: the same document, field for field.
        .route_service(
            "/.well-known/openid-configuration",
            server.metadata_endpoint(Metadata::new(&issuer)),
        );

    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    // The URL may carry a password: print only its scheme.
    let kind = url
        .as_deref()
        .and_then(|u| u.split(':').next())
        .unwrap_or("memory");
    // Written, not println!-ed: a closed stdout (`… | head -1`) must not stop the server.
    let _ = writeln!(
        std::io::stdout(),
        "tower-oauth2 quickstart listening on http://{addr} (token store: {kind})\nTry:\n  curl -X POST -H 'Authorization: Basic dGVzdGNsaWVudDpzZWNyZXQ=' -d 'grant_type=password&username=test&password=test' localhost:{}/oauth/token",
        addr.port()
    );
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(printed.verifier.as_bytes()));
    let port = addr.port();
    let _ = writeln!(
        std::io::stdout(),
        "Authorization code flow: open this in a browser and sign in as test / test:\n  http://127.0.0.1:{port}/oauth/authorize?response_type=code&client_id=quickstart-spa&redirect_uri=http%3A%2F%2F127.0.0.1%3A{port}%2Fcallback&scope=openid+profile+email+offline_access&state={state}&nonce={nonce}&code_challenge={challenge}&code_challenge_method=S256\nthen exchange the code the callback page shows (it prints this command with the code filled in, or exchanges it for you and shows the ID token):\n  curl -d grant_type=authorization_code -d client_id=quickstart-spa -d code=CODE -d redirect_uri=http://127.0.0.1:{port}/callback -d code_verifier={verifier} localhost:{port}/oauth/token",
        state = printed.state,
        nonce = printed.nonce,
        verifier = printed.verifier,
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
