//! An MCP server protected in a few lines (`examples/mcp_server.rs`), proven with what nobody
//! here wrote: the official MCP TypeScript SDK's OAuth client (`tests/interop/node/mcp.mjs`)
//! and the MCP conformance suite's authorization-server scenarios
//! (`tests/interop/node/conformance.mjs`), against the MCP example and the quickstart. Both run
//! the example binaries as separate processes, as a user would.

use crate::support::{
    node::{clients, node},
    quickstart::{self, Instance},
};

/// The MCP example on a free port; it prints two lines once it serves.
fn mcp_server(args: &[&str]) -> Instance {
    quickstart::start_example("mcp_server", args, 2)
}

fn free_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port().to_string()
}

/// What `mcp.mjs` reports, step by step, against a server started with `args`; `mode` is
/// `mcp.mjs`'s own argument (`dcr`: register first).
fn sdk_flow(args: &[&str], mode: &[&str]) -> Option<(String, Instance)> {
    let dir = clients()?;
    let server = mcp_server(args);
    let origin = format!("http://{}", server.addr);
    let mut script_args = vec![origin.as_str()];
    script_args.extend_from_slice(mode);
    let out = node(&dir, "mcp.mjs", &script_args);
    Some((out, server))
}

#[track_caller]
fn assert_sdk_flow(out: &str, origin: &str, client_id: &str) {
    let resource = format!("{origin}/mcp");
    for expected in [
        format!("ok: bare request: 401 Bearer realm=\"tower-oauth2\", resource_metadata=\"{origin}/.well-known/oauth-protected-resource/mcp\", scope=\"mcp:tools\""),
        format!("ok: SDK discovered the metadata and asked {origin}/oauth/authorize for resource={resource} scope=mcp:tools (PKCE S256)"),
        "ok: SDK exchanged the code: token_type Bearer, scope mcp:tools".to_owned(),
        format!("ok: tools add,whoami; whoami {{\"client_id\":\"{client_id}\",\"scope\":\"mcp:tools\",\"sub\":\"test\"}}; add(2, 40) = 42"),
        "ok: SDK refreshed after a 401 (new access and refresh tokens) and called whoami again: test".to_owned(),
        format!("ok: a token for {origin}/other at /mcp: 401 Bearer realm=\"tower-oauth2\", error=\"invalid_token\", error_description=\"The access token is not meant for this resource\""),
        "ok: the SDK, holding only that token, is refused and starts a new authorization".to_owned(),
    ] {
        assert!(out.contains(&expected), "missing {expected:?} in:\n{out}");
    }
}

#[test]
fn the_mcp_sdk_discovers_authorizes_calls_and_refreshes_with_a_token_bound_to_the_server() {
    let Some((out, server)) = sdk_flow(&[], &[]) else {
        return;
    };
    let origin = format!("http://{}", server.addr);
    assert_sdk_flow(&out, &origin, "mcp-client");
    // The code exchange and the refresh issued tokens for the MCP server, and the one asked for
    // the other resource is for that one alone.
    let events = server.stderr();
    let mcp = format!("audience: [\"{origin}/mcp\"]");
    let other = format!("audience: [\"{origin}/other\"]");
    assert!(
        events
            .lines()
            .any(|l| l.contains("TokenIssued") && l.contains("\"mcp-client\"") && l.contains(&mcp)),
        "{events}"
    );
    assert!(
        events
            .lines()
            .any(|l| l.contains("TokenRefreshed") && l.contains(&mcp)),
        "{events}"
    );
    assert!(
        events
            .lines()
            .any(|l| l.contains("TokenIssued") && l.contains(&other)),
        "{events}"
    );
}

#[test]
fn the_mcp_sdk_runs_the_same_flow_with_jwt_access_tokens_whose_aud_is_the_server() {
    let Some((out, server)) = sdk_flow(&["--access-token-format", "jwt"], &[]) else {
        return;
    };
    let origin = format!("http://{}", server.addr);
    assert_sdk_flow(&out, &origin, "mcp-client");
    assert!(
        out.contains(&format!(
            "ok: the access token is a JWT for [\"{origin}/mcp\"]"
        )),
        "{out}"
    );
}

#[test]
fn the_mcp_sdk_registers_itself_with_dcr_then_authorizes_calls_and_refreshes() {
    let Some((out, server)) = sdk_flow(&[], &["dcr"]) else {
        return;
    };
    let origin = format!("http://{}", server.addr);
    let said = "ok: SDK registered itself (RFC 7591): client_id ";
    let line = out
        .lines()
        .find(|l| l.starts_with(said))
        .unwrap_or_else(|| panic!("no registration in:\n{out}"));
    let client_id = line[said.len()..].split(',').next().unwrap();
    assert!(line.ends_with("token_endpoint_auth_method none"), "{line}");
    assert!(client_id.starts_with("dcr_"), "{client_id}");
    assert_sdk_flow(&out, &origin, client_id);
    // The server saw the registration, then tokens for that client.
    let events = server.stderr();
    assert!(
        events.lines().any(|l| l.contains("ClientRegistered")
            && l.contains(client_id)
            && l.contains("confidential: false")),
        "{events}"
    );
    assert!(
        events
            .lines()
            .any(|l| l.contains("TokenIssued") && l.contains(client_id)),
        "{events}"
    );
}

/// A client ID metadata document for `mcp.mjs`'s client, served over HTTPS on loopback by a
/// server whose certificate a private CA issued; the document's URL, the CA's PEM in a file,
/// and how often it was fetched. The runtime serving it lives as long as the returned value.
struct DocumentHost {
    url: String,
    ca_file: std::path::PathBuf,
    hits: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    _runtime: tokio::runtime::Runtime,
}

fn document_host() -> DocumentHost {
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };

    use crate::support::https::{TlsListener, authority, server_config};
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (ca, cert, key) = authority();
    let tcp = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!(
        "https://127.0.0.1:{}/oauth/client.json",
        tcp.local_addr().unwrap().port()
    );
    let hits = Arc::new(AtomicUsize::new(0));
    let document = serde_json::json!({
        "client_id": url,
        "client_name": "mcp.mjs (metadata document)",
        "redirect_uris": ["http://127.0.0.1/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    })
    .to_string();
    let counted = Arc::clone(&hits);
    let app = axum::Router::new().route(
        "/oauth/client.json",
        axum::routing::get(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            let body = document.clone();
            async move { ([(http::header::CONTENT_TYPE, "application/json")], body) }
        }),
    );
    let listener = TlsListener {
        tcp,
        tls: tokio_rustls::TlsAcceptor::from(Arc::new(server_config(cert, key))),
    };
    runtime.spawn(async move { axum::serve(listener, app).await });
    let ca_file = std::env::temp_dir().join(format!("mcp-documents-ca-{}.pem", std::process::id()));
    std::fs::write(&ca_file, ca).unwrap();
    DocumentHost {
        url,
        ca_file,
        hits,
        _runtime: runtime,
    }
}

#[test]
fn the_mcp_sdk_uses_a_client_id_metadata_document_then_authorizes_calls_and_refreshes() {
    let Some(dir) = clients() else { return };
    let host = document_host();
    let ca = host.ca_file.to_str().unwrap().to_owned();
    let server = mcp_server(&["--documents-on-loopback", &ca]);
    let origin = format!("http://{}", server.addr);
    let out = node(&dir, "mcp.mjs", &[&origin, "cimd", &host.url]);
    assert!(
        out.contains(&format!(
            "ok: SDK used its client ID metadata document as client_id: {}",
            host.url
        )),
        "{out}"
    );
    assert_sdk_flow(&out, &origin, &host.url);
    // Fetched once for the whole flow (authorization, exchange, refresh, the second
    // authorization), then served from the store's cache.
    assert_eq!(host.hits.load(std::sync::atomic::Ordering::SeqCst), 1);
    let events = server.stderr();
    assert!(
        events
            .lines()
            .any(|l| l.contains("TokenIssued") && l.contains(&host.url)),
        "{events}"
    );
    let _ = std::fs::remove_file(&host.ca_file);
}

#[test]
fn without_the_app_allowing_it_the_example_refuses_a_document_on_loopback() {
    use std::io::{Read, Write};
    let host = document_host();
    let server = mcp_server(&[]);
    // The authorization endpoint, asked for the document's client, refuses it unfetched.
    let path = format!(
        "/oauth/authorize?response_type=code&client_id={}&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcallback&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
        host.url.replace(':', "%3A").replace('/', "%2F")
    );
    let mut tcp = std::net::TcpStream::connect(server.addr).unwrap();
    write!(
        tcp,
        "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        server.addr
    )
    .unwrap();
    let mut page = String::new();
    tcp.read_to_string(&mut page).unwrap();
    assert!(page.starts_with("HTTP/1.1 400"), "{page}");
    assert!(page.contains("which is not a public address"), "{page}");
    assert_eq!(host.hits.load(std::sync::atomic::Ordering::SeqCst), 0);
    let _ = std::fs::remove_file(&host.ca_file);
}

/// The conformance suite's authorization-server scenarios against `issuer`, for `client_id`
/// asking for `resource`: the checks it printed, after asserting that none failed.
fn conformance(dir: &std::path::Path, issuer: &str, client_id: &str, resource: &str) -> String {
    let out = node(
        dir,
        "conformance.mjs",
        &[issuer, client_id, &free_port(), resource],
    );
    for expected in [
        "check authorization-server-metadata-endpoint authorization-server-metadata SUCCESS",
        "check authorization-code-grant authorization-code-grant SUCCESS",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    // Nothing failed, and nothing is left as a warning.
    assert!(!out.contains(" FAILURE"), "{out}");
    assert!(!out.contains(" WARNING"), "{out}");
    out
}

#[test]
fn the_mcp_conformance_suite_passes_its_authorization_server_scenarios_on_the_mcp_example() {
    let Some(dir) = clients() else { return };
    let server = mcp_server(&[]);
    let origin = format!("http://{}", server.addr);
    let resource = format!("{origin}/mcp");
    let out = conformance(&dir, &origin, "mcp-client", &resource);
    // The server supports client ID metadata documents, so the suite's check of them passes.
    assert!(
        out.contains("check authorization-server-metadata-endpoint authorization-server-metadata-cimd SUCCESS"),
        "{out}"
    );
    // The code grant it ran with `--resource` yielded a token bound to that resource.
    let events = server.stderr();
    assert!(
        events.lines().any(|l| l.contains("TokenIssued")
            && l.contains("grant_type: AuthorizationCode")
            && l.contains(&format!("audience: [\"{resource}\"]"))),
        "{events}"
    );
}

#[test]
fn the_mcp_conformance_suite_passes_its_authorization_server_scenarios_on_the_quickstart() {
    let Some(dir) = clients() else { return };
    let qs = quickstart::start(&[]);
    let issuer = format!("http://localhost:{}", qs.addr.port());
    let resource = format!("{issuer}/api");
    conformance(&dir, &issuer, "quickstart-spa", &resource);
    let events = qs.stderr();
    assert!(
        events.lines().any(|l| l.contains("TokenIssued")
            && l.contains("\"quickstart-spa\"")
            && l.contains(&format!("audience: [\"{resource}\"]"))),
        "{events}"
    );
}
