//! JWT access tokens (RFC 9068) through the token endpoint: the header and every claim, the
//! format per server and per client, ES256 and EdDSA, refreshes, key rotation in the published
//! set, and what must be refused at build time. Independent verification of the signatures is
//! in `interop.rs` (jose).

use std::sync::Arc;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use jsonwebtoken::{DecodingKey, Validation, jwk::Jwk};
use serde_json::Value;
use tower::ServiceExt;
use tower_oauth2::{
    AccessTokenFormat, AuthServer, Client, ConfigError, GrantType, InMemoryClients, Metadata,
    jose::{KeySet, SigningKey},
};

use crate::support::*;

const ISS: &str = "https://auth.example";

fn part(token: &str, i: usize) -> Value {
    let segment = token.split('.').nth(i).expect("a JWS segment");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).unwrap()).unwrap()
}

/// Verify `token`'s signature and claims against the published set, with jsonwebtoken.
fn verified(token: &str, jwks: &Value) -> Value {
    let kid = part(token, 0)["kid"].as_str().unwrap().to_owned();
    let jwk: Jwk = serde_json::from_value(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == kid.as_str())
            .expect("the kid is published")
            .clone(),
    )
    .unwrap();
    let alg = part(token, 0)["alg"].as_str().unwrap().parse().unwrap();
    let mut validation = Validation::new(alg);
    validation.set_issuer(&[ISS]);
    validation.set_audience(&["https://api.example"]);
    validation.validate_exp = false; // the harness clock is in the past
    jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(&jwk).unwrap(), &validation)
        .unwrap()
        .claims
}

fn jwt_harness(keys: KeySet, format: AccessTokenFormat) -> Harness {
    let mut h = harness();
    // The harness builds its own server; rebuild it with the keys, over the same store and clock.
    let mut config = h.server.config().clone();
    config.issuer = Some(ISS.into());
    config.access_token_audience = vec!["https://api.example".into()];
    config.access_token_format = format;
    h.server = AuthServer::builder()
        .config(config)
        .clients(
            clients().with(
                Client::confidential("jwt-client", "jwt-secret")
                    .grant_types(GrantType::ALL)
                    .access_token_format(AccessTokenFormat::Jwt)
                    .build()
                    .unwrap(),
            ),
        )
        .users(tower_oauth2::user::DemoUsers::new().with("alice", "wonderland"))
        .shared_store(Arc::clone(h.server.store()))
        .clock(Arc::clone(&h.clock))
        .signing_keys(keys)
        .build()
        .unwrap();
    h
}

async fn jwks(h: &Harness) -> Value {
    let req = Request::get("/.well-known/jwks.json")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let r = reply(h.server.jwks_endpoint().oneshot(req).await.unwrap()).await;
    assert_eq!(r.header("cache-control"), Some("public, max-age=300"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    r.json()
}

#[tokio::test]
async fn a_jwt_access_token_carries_every_rfc_9068_claim_and_still_validates_locally() {
    for key in [SigningKey::generate_es256(), SigningKey::generate_ed25519()] {
        let alg = key.algorithm();
        let kid = key.public_key().kid().to_owned();
        let h = jwt_harness(KeySet::new(key), AccessTokenFormat::Jwt);
        let (at, rt) = h.login().await;
        let header = part(&at, 0);
        assert_eq!(
            (&header["typ"], &header["alg"], &header["kid"]),
            (&"at+jwt".into(), &alg.into(), &kid.as_str().into())
        );
        let set = jwks(&h).await;
        let claims = verified(&at, &set);
        assert_eq!(claims["iss"], ISS);
        assert_eq!(claims["sub"], "alice");
        assert_eq!(claims["aud"], serde_json::json!(["https://api.example"]));
        assert_eq!(claims["client_id"], "app");
        assert_eq!(claims["scope"], "read write");
        assert_eq!(claims["iat"], START);
        assert_eq!(claims["exp"], START + 3600);
        assert_eq!(claims["jti"].as_str().unwrap().len(), 43);
        // The store knows it by hash: the local layer accepts it, revocation ends it.
        assert!(h.accepted(&at).await);
        let v = h.refresh(APP, &rt).await.assert_token();
        let next = v["access_token"].as_str().unwrap();
        assert_ne!(part(next, 1)["jti"], claims["jti"]);
        assert_eq!(verified(next, &set)["sub"], "alice");
        h.revoke(Some(APP), &format!("token={next}")).await;
        assert!(!h.accepted(next).await);
        let r = h.introspect(Some(RS), &format!("token={next}")).await;
        assert_eq!(&r.body[..], br#"{"active":false}"#);
    }
}

#[tokio::test]
async fn the_format_is_the_clients_or_the_servers_and_a_client_is_its_own_subject() {
    let h = jwt_harness(
        KeySet::new(SigningKey::generate_es256()),
        AccessTokenFormat::Opaque,
    );
    // The server default is opaque; this client asks for JWTs.
    let (opaque, _) = h.login().await;
    assert_eq!(opaque.len(), 43);
    let v = h
        .token(
            Some(("jwt-client", "jwt-secret")),
            "grant_type=client_credentials",
        )
        .await
        .assert_token();
    let at = v["access_token"].as_str().unwrap();
    let claims = verified(at, &jwks(&h).await);
    // RFC 9068 §2.2: no user, so the client is the subject.
    assert_eq!(
        (&claims["sub"], &claims["client_id"]),
        (&"jwt-client".into(), &"jwt-client".into())
    );
    assert!(claims.get("scope").is_none(), "an empty scope is left out");
}

#[tokio::test]
async fn a_rotating_key_set_publishes_both_keys_and_old_tokens_still_verify() {
    let old = SigningKey::generate_es256();
    let next = SigningKey::generate_ed25519();
    let h = jwt_harness(KeySet::new(old.clone()), AccessTokenFormat::Jwt);
    let (signed_by_old, _) = h.login().await;
    // Switch: the next key signs, the old one stays published until its tokens have expired.
    let rotated = jwt_harness(
        KeySet::new(next.clone()).with_verification_key(old.public_key().clone()),
        AccessTokenFormat::Jwt,
    );
    let set = jwks(&rotated).await;
    let kids: Vec<_> = set["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kids, [next.public_key().kid(), old.public_key().kid()]);
    for key in set["keys"].as_array().unwrap() {
        assert_eq!(key["use"], "sig");
        for private in ["d", "p", "q"] {
            assert!(
                key.get(private).is_none(),
                "a private member is published: {key}"
            );
        }
    }
    assert_eq!(verified(&signed_by_old, &set)["sub"], "alice");
    let (signed_by_next, _) = rotated.login().await;
    assert_eq!(part(&signed_by_next, 0)["kid"], next.public_key().kid());
    assert_eq!(verified(&signed_by_next, &set)["sub"], "alice");
    // Retired: the old key's tokens no longer find a key.
    let retired = KeySet::new(next).jwks();
    assert!(
        retired["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["kid"] != old.public_key().kid())
    );
    // Metadata points at the set.
    let req = Request::get("/").body(Full::new(Bytes::new())).unwrap();
    let meta = reply(
        rotated
            .server
            .metadata_endpoint(Metadata::new(ISS))
            .oneshot(req)
            .await
            .unwrap(),
    )
    .await
    .json();
    assert_eq!(meta["jwks_uri"], format!("{ISS}/.well-known/jwks.json"));
}

#[test]
fn jwt_access_tokens_need_keys_and_an_issuer_and_keys_never_show() {
    let build = |keys: Option<KeySet>, issuer: Option<&str>| {
        let mut b = AuthServer::builder()
            .clients(InMemoryClients::new())
            .configure(|c| {
                c.access_token_format = AccessTokenFormat::Jwt;
                c.issuer = issuer.map(str::to_owned);
            });
        if let Some(k) = keys {
            b = b.signing_keys(k);
        }
        b.build().map(drop)
    };
    assert!(matches!(build(None, Some(ISS)), Err(ConfigError::Key(_))));
    let keys = KeySet::new(SigningKey::generate_es256());
    assert!(matches!(
        build(Some(keys.clone()), None),
        Err(ConfigError::Key(_))
    ));
    assert!(build(Some(keys.clone()), Some(ISS)).is_ok());
    // Debug output: the key id, never the private scalar.
    let shown = format!("{keys:?}");
    assert!(shown.contains("<redacted>") && shown.contains(keys.active().public_key().kid()));
    // Test keys made with `openssl genpkey` (P-256 and Ed25519), for these tests only.
    let ec = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgyuB8V4E1WpT0yX6O\nqAl1WJXkjUhU01XxanVbTkwUNkGhRANCAARgsbYHf0TJO3zPHgJWCXICLDl7xtBE\nYlPjiSFpdMR0iKAJvphO5r9rltEcHjjmm1O99LmdWJ7xd4Ea4XaLFtVe\n-----END PRIVATE KEY-----\n";
    let ed = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIF/Sg8eZ7lcY9shR36iz2fe8zzfSj5Kqx+XNOg2lOkni\n-----END PRIVATE KEY-----\n";
    for (pem, alg) in [(ec, "ES256"), (ed, "EdDSA")] {
        let key = SigningKey::from_pem(pem).unwrap();
        assert_eq!(key.algorithm(), alg);
        // The same PEM gives the same key id every time (RFC 7638): instances agree.
        assert_eq!(
            key.public_key().kid(),
            SigningKey::from_pem(pem).unwrap().public_key().kid()
        );
        let shown = format!("{key:?}");
        assert!(
            !shown.contains("MIGHAgEA") && !shown.contains("MC4CAQAw"),
            "{shown}"
        );
    }
    assert!(matches!(
        SigningKey::from_pem("not a key"),
        Err(ConfigError::Key(_))
    ));
}
