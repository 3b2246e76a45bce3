//! JWT access tokens (RFC 9068) through the token endpoint: the header and every claim, the
//! format per server and per client, ES256, EdDSA and RS256, refreshes, key rotation in the published
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
    rekeyed(harness(), keys, format)
}

/// `h` with its server rebuilt around `keys`, over the same store and clock: the same
/// deployment after a key change.
fn rekeyed(mut h: Harness, keys: KeySet, format: AccessTokenFormat) -> Harness {
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
    let rsa = SigningKey::from_pem(include_str!("keys/rsa-pkcs8.pem")).unwrap();
    for key in [
        SigningKey::generate_es256(),
        SigningKey::generate_ed25519(),
        rsa,
    ] {
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
        assert_eq!(claims["jti"].as_str().unwrap().len(), 46);
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
    assert_eq!(opaque.len(), 46);
    let v = h
        .token(
            Some(("jwt-client", "jwt-secret")),
            "grant_type=client_credentials",
        )
        .await
        .assert_token();
    let at = v["access_token"].as_str().unwrap();
    let claims = verified(at, &jwks(&h).await);
    // RFC 9068 §2.2: no user, so the client is the subject, and the token says so outright.
    assert_eq!(
        (&claims["sub"], &claims["client_id"], &claims["gty"]),
        (
            &"jwt-client".into(),
            &"jwt-client".into(),
            &"client_credentials".into()
        )
    );
    assert!(claims.get("scope").is_none(), "an empty scope is left out");
    // A user's token carries no such mark.
    let v = h
        .token(
            Some(("jwt-client", "jwt-secret")),
            "grant_type=password&username=alice&password=wonderland",
        )
        .await
        .assert_token();
    let claims = verified(v["access_token"].as_str().unwrap(), &jwks(&h).await);
    assert_eq!(claims["sub"], "alice");
    assert!(claims.get("gty").is_none(), "{claims}");
}

#[tokio::test]
async fn a_rotating_key_set_publishes_both_keys_and_old_tokens_still_verify() {
    let old = SigningKey::generate_es256();
    let next = SigningKey::generate_ed25519();
    let h = jwt_harness(KeySet::new(old.clone()), AccessTokenFormat::Jwt);
    let (signed_by_old, _) = h.login().await;
    // Switch: the next key signs, the old one stays published until its tokens have expired.
    let rotated = rekeyed(
        h,
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
    // The server's own layer checks the signature too: the old key's token passes while that
    // key is published…
    assert!(rotated.accepted(&signed_by_old).await);
    let (signed_by_next, _) = rotated.login().await;
    assert_eq!(part(&signed_by_next, 0)["kid"], next.public_key().kid());
    assert_eq!(verified(&signed_by_next, &set)["sub"], "alice");
    // Retired: the old key's tokens no longer find a key, and the layer refuses them although
    // their records are still in the store.
    let after = rekeyed(rotated, KeySet::new(next.clone()), AccessTokenFormat::Jwt);
    assert!(!after.accepted(&signed_by_old).await);
    assert!(after.accepted(&signed_by_next).await);
    // Nor does a token pass that a key never the server's signed, though its record is there.
    let stranger = rekeyed(
        after,
        KeySet::new(SigningKey::generate_es256()),
        AccessTokenFormat::Jwt,
    );
    assert!(!stranger.accepted(&signed_by_next).await);
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
        stranger
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
    // RSA as PKCS#8 and as PKCS#1 (one key, one kid), SEC 1 EC; RSA under 2048 bits refused.
    let pkcs8 = SigningKey::from_pem(include_str!("keys/rsa-pkcs8.pem")).unwrap();
    let pkcs1 = SigningKey::from_pem(include_str!("keys/rsa-pkcs1.pem")).unwrap();
    assert_eq!(pkcs8.algorithm(), "RS256");
    assert_eq!(pkcs8.public_key(), pkcs1.public_key());
    let jwk = pkcs8.public_key().jwk();
    assert_eq!((&jwk["kty"], &jwk["e"]), (&"RSA".into(), &"AQAB".into()));
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(jwk["n"].as_str().unwrap())
            .unwrap()
            .len(),
        256
    );
    assert!(jwk.get("d").is_none() && jwk.get("p").is_none());
    let sec1 = SigningKey::from_pem(include_str!("keys/ec-sec1.pem")).unwrap();
    assert_eq!(sec1.algorithm(), "ES256");
    assert!(matches!(
        SigningKey::from_pem(include_str!("keys/rsa-1024.pem")),
        Err(ConfigError::Key(_))
    ));
    let generated = SigningKey::generate_rs256();
    assert_eq!(generated.algorithm(), "RS256");
    assert!(!format!("{generated:?}").contains("PRIVATE"));
    // Private JWKs: a P-256 key (its x and y computed from d by Node's crypto) and the RFC 8037
    // A.1 Ed25519 key, whose thumbprint RFC 8037 A.3 gives.
    let es = serde_json::json!({"kty":"EC","crv":"P-256",
        "x":"qmGgKxJl5XiaxX5zamPkHpNJ8NGDhj6DxRKk3-QdjhE",
        "y":"tD7BXT9oQtLceDSJ8MZE337qnifCImKSdmyO7tXcY10",
        "d":"jpsQnnGQmL-YBIffH1136cLSqhO6ucuIMNg2g4vP6Q8"});
    assert_eq!(SigningKey::from_jwk(&es).unwrap().algorithm(), "ES256");
    let ed = serde_json::json!({"kty":"OKP","crv":"Ed25519",
        "d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
        "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
    let key = SigningKey::from_jwk(&ed).unwrap();
    assert_eq!(key.algorithm(), "EdDSA");
    assert_eq!(
        key.public_key().kid(),
        "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    );
    let mut wrong = es.clone();
    wrong["x"] = ed["x"].clone();
    assert!(matches!(
        SigningKey::from_jwk(&wrong),
        Err(ConfigError::Key(_))
    ));
    let hmac = serde_json::json!({"kty":"oct","k":"c2VjcmV0"});
    assert!(matches!(
        SigningKey::from_jwk(&hmac),
        Err(ConfigError::Key(_))
    ));
}

#[tokio::test]
async fn an_app_adds_claims_but_cannot_change_the_registered_ones() {
    let mut h = harness();
    let mut config = h.server.config().clone();
    config.issuer = Some(ISS.into());
    config.access_token_audience = vec!["https://api.example".into()];
    config.access_token_format = AccessTokenFormat::Jwt;
    let keys = KeySet::new(SigningKey::generate_ed25519());
    h.server = AuthServer::builder()
        .config(config)
        .clients(clients())
        .users(tower_oauth2::user::DemoUsers::new().with("alice", "wonderland"))
        .shared_store(Arc::clone(h.server.store()))
        .clock(Arc::clone(&h.clock))
        .signing_keys(keys)
        .access_token_claims(|ctx: &tower_oauth2::jose::ClaimsContext<'_>| {
            let mut m = serde_json::Map::new();
            m.insert("roles".into(), serde_json::json!(["editor"]));
            m.insert("tenant".into(), serde_json::json!(ctx.client_id));
            // Attempts to change what the server vouches for: dropped.
            m.insert("sub".into(), serde_json::json!("admin"));
            m.insert("iss".into(), serde_json::json!("https://evil.example"));
            m.insert("exp".into(), serde_json::json!(u64::MAX));
            m
        })
        .build()
        .unwrap();
    let (at, _) = h.login().await;
    let claims = verified(&at, &jwks(&h).await);
    assert_eq!(claims["roles"], serde_json::json!(["editor"]));
    assert_eq!(claims["tenant"], "app");
    assert_eq!(
        (&claims["sub"], &claims["iss"], &claims["exp"]),
        (&"alice".into(), &ISS.into(), &(START + 3600).into())
    );
    let raw = String::from_utf8(
        URL_SAFE_NO_PAD
            .decode(at.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(raw.matches("\"sub\"").count(), 1, "one sub, ours: {raw}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_access_tokens_live_and_die_in_every_store() {
    use crate::support::backends::{Backend, open};
    use tower_oauth2::clock::{Clock, SystemClock};
    for backend in [
        Backend::Memory,
        Backend::Redis,
        Backend::RedisCluster,
        Backend::Postgres,
    ] {
        let Some(store) = open(backend, &format!("jwt_{backend:?}").to_lowercase()).await else {
            continue;
        };
        let mut h = harness_on(Arc::clone(&store), SystemClock.now(), |_| {});
        let mut config = h.server.config().clone();
        config.issuer = Some(ISS.into());
        config.access_token_format = AccessTokenFormat::Jwt;
        h.server = AuthServer::builder()
            .config(config)
            .clients(clients())
            .users(tower_oauth2::user::DemoUsers::new().with("alice", "wonderland"))
            .shared_store(store)
            .clock(Arc::clone(&h.clock))
            .signing_keys(KeySet::new(SigningKey::generate_es256()))
            .build()
            .unwrap();
        let (at, rt) = h.login().await;
        assert_eq!(at.split('.').count(), 3, "{backend:?}");
        assert!(h.accepted(&at).await, "{backend:?}");
        let v = h.refresh(APP, &rt).await.assert_token();
        let next = v["access_token"].as_str().unwrap().to_owned();
        assert!(h.accepted(&next).await, "{backend:?}");
        // A replay of the rotated refresh token revokes the family, JWTs included.
        h.refresh(APP, &rt).await.assert_error(400, "invalid_grant");
        assert!(
            !h.accepted(&at).await && !h.accepted(&next).await,
            "{backend:?}"
        );
        let r = h.introspect(Some(RS), &format!("token={next}")).await;
        assert_eq!(&r.body[..], br#"{"active":false}"#, "{backend:?}");
    }
}

mod validator {
    //! `JwtValidator`, a resource server elsewhere: keys from the metadata or a JWK Set URL over
    //! real HTTP, every rejection, one refetch for an unknown `kid`, and 503 without keys.

    use std::sync::{Arc, Mutex};

    use axum::{Json, Router, routing::get};
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::{Value, json};
    use tower_oauth2::{BearerLayer, bearer::JwtValidator, jose::SigningKey};

    use super::*;

    const EC_PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgyuB8V4E1WpT0yX6O\nqAl1WJXkjUhU01XxanVbTkwUNkGhRANCAARgsbYHf0TJO3zPHgJWCXICLDl7xtBE\nYlPjiSFpdMR0iKAJvphO5r9rltEcHjjmm1O99LmdWJ7xd4Ea4XaLFtVe\n-----END PRIVATE KEY-----\n";
    const AUD: &str = "https://api.example";

    /// An authorization server's metadata and key set on loopback; the key set can be changed.
    struct Published {
        issuer: String,
        jwks: Arc<Mutex<Value>>,
    }

    async fn publish(jwks: Value) -> Published {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let issuer = format!("http://{addr}");
        let jwks = Arc::new(Mutex::new(jwks));
        let (set, iss) = (Arc::clone(&jwks), issuer.clone());
        let app = Router::new()
            .route(
                "/.well-known/oauth-authorization-server",
                get(move || {
                    let iss = iss.clone();
                    async move {
                        Json(
                            json!({"issuer": iss, "jwks_uri": format!("{iss}/jwks.json"),
                                    "token_endpoint": format!("{iss}/oauth/token")}),
                        )
                    }
                }),
            )
            .route(
                "/jwks.json",
                get(move || {
                    let set = set.lock().unwrap().clone();
                    async move { Json(set) }
                }),
            );
        tokio::spawn(async move { axum::serve(listener, app).await });
        Published { issuer, jwks }
    }

    fn claims(issuer: &str, now: u64) -> Value {
        json!({"iss": issuer, "sub": "alice", "aud": [AUD], "exp": now + 600, "iat": now,
               "jti": "j", "client_id": "app", "scope": "read"})
    }

    /// The test key as jsonwebtoken takes it, for forging tokens.
    fn ec_key() -> EncodingKey {
        EncodingKey::from_ec_pem(EC_PEM.as_bytes()).unwrap()
    }

    fn sign(claims: &Value, kid: &str, typ: &str) -> String {
        let mut header = Header::new(jsonwebtoken::Algorithm::ES256);
        header.typ = Some(typ.into());
        header.kid = Some(kid.into());
        jsonwebtoken::encode(&header, claims, &ec_key()).unwrap()
    }

    async fn status(v: &JwtValidator, token: &str) -> (u16, Option<String>) {
        let layer = BearerLayer::with_validator(v.clone(), "api");
        let req = Request::get("/")
            .header("authorization", format!("Bearer {token}"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let r = call_protected(layer, req).await;
        (
            r.status.as_u16(),
            r.header("www-authenticate").map(str::to_owned),
        )
    }

    #[tokio::test]
    async fn a_resource_server_elsewhere_checks_tokens_with_no_call_per_request() {
        let key = SigningKey::from_pem(EC_PEM).unwrap();
        let kid = key.public_key().kid().to_owned();
        let at = Published::jwks_of(&key);
        let p = publish(at).await;
        let now = tower_oauth2::clock::Clock::now(&tower_oauth2::clock::SystemClock);
        let v = JwtValidator::from_issuer(&p.issuer, AUD).build().unwrap();
        let good = sign(&claims(&p.issuer, now), &kid, "at+jwt");
        assert_eq!(status(&v, &good).await.0, 200);
        assert_eq!(v.fetches(), 2, "the metadata, then the key set");
        for _ in 0..3 {
            assert_eq!(status(&v, &good).await.0, 200);
        }
        assert_eq!(
            (v.fetches(), v.cached()),
            (2, 1),
            "seen before: no fetch, no signature check"
        );
        let layer = BearerLayer::with_validator(v.clone(), "api");
        let req = Request::get("/")
            .header("authorization", format!("Bearer {good}"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let info = call_protected(layer, req).await.json();
        assert_eq!(
            (&info["sub"], &info["client_id"], &info["scope"]),
            (&"alice".into(), &"app".into(), &"read".into())
        );

        // Every way a token can be wrong is 401 invalid_token.
        let mut c = claims(&p.issuer, now);
        let with = |f: &dyn Fn(&mut Value)| {
            let mut c = claims(&p.issuer, now);
            f(&mut c);
            sign(&c, &kid, "at+jwt")
        };
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).unwrap());
        let none_header =
            URL_SAFE_NO_PAD.encode(format!(r#"{{"typ":"at+jwt","alg":"none","kid":"{kid}"}}"#));
        let hs = {
            // HS256 "signed" with the public key as the secret.
            let mut h = Header::new(jsonwebtoken::Algorithm::HS256);
            h.typ = Some("at+jwt".into());
            h.kid = Some(kid.clone());
            let public = serde_json::to_vec(&p.jwks.lock().unwrap()["keys"][0]).unwrap();
            jsonwebtoken::encode(&h, &c, &EncodingKey::from_secret(&public)).unwrap()
        };
        c["scope"] = json!("admin");
        let tampered = {
            let parts: Vec<&str> = good.split('.').collect();
            format!(
                "{}.{}.{}",
                parts[0],
                URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).unwrap()),
                parts[2]
            )
        };
        let bad = [
            ("alg none", format!("{none_header}.{payload}.")),
            ("HS256 with the public key as secret", hs),
            ("typ JWT", sign(&claims(&p.issuer, now), &kid, "JWT")),
            (
                "another iss",
                with(&|c| c["iss"] = json!("http://evil.example")),
            ),
            (
                "another aud",
                with(&|c| c["aud"] = json!(["https://other.example"])),
            ),
            ("expired", with(&|c| c["exp"] = json!(now - 120))),
            ("not yet valid", with(&|c| c["nbf"] = json!(now + 600))),
            (
                "issued in the future",
                with(&|c| c["iat"] = json!(now + 600)),
            ),
            (
                "no exp",
                with(&|c| {
                    c.as_object_mut().unwrap().remove("exp");
                }),
            ),
            ("tampered payload", tampered),
        ];
        for (what, token) in &bad {
            let (code, challenge) = status(&v, token).await;
            assert_eq!(code, 401, "{what}");
            assert!(
                challenge.unwrap_or_default().contains("invalid_token"),
                "{what}"
            );
        }
        assert_eq!(v.fetches(), 2, "none of these needed the keys again");
    }

    /// The audience is compared as a resource identifier (scheme and host case, a default
    /// port), and a token meant for another resource is told so: 401 `invalid_token` saying the
    /// token is not meant for this resource, not that it is invalid.
    #[tokio::test]
    async fn a_token_for_another_resource_is_refused_as_such() {
        let key = SigningKey::from_pem(EC_PEM).unwrap();
        let kid = key.public_key().kid().to_owned();
        let p = publish(Published::jwks_of(&key)).await;
        let now = tower_oauth2::clock::Clock::now(&tower_oauth2::clock::SystemClock);
        let v = JwtValidator::from_issuer(&p.issuer, "HTTPS://API.example:443/mcp")
            .build()
            .unwrap();
        let with_aud = |aud: Value, jti: &str| {
            let mut c = claims(&p.issuer, now);
            c["aud"] = aud;
            c["jti"] = jti.into();
            sign(&c, &kid, "at+jwt")
        };
        for (aud, jti) in [
            (json!("https://api.example/mcp"), "one"),
            (
                json!(["https://other.example", "https://api.example/mcp"]),
                "many",
            ),
        ] {
            assert_eq!(
                status(&v, &with_aud(aud.clone(), jti)).await.0,
                200,
                "{aud}"
            );
        }
        let (code, challenge) =
            status(&v, &with_aud(json!(["https://api.example/other"]), "o")).await;
        assert_eq!(code, 401);
        assert_eq!(
            challenge.as_deref(),
            Some(
                "Bearer realm=\"api\", error=\"invalid_token\", error_description=\"The access token is not meant for this resource\""
            )
        );
        // No audience at all: not a token for this resource either, but a bad one here.
        let mut c = claims(&p.issuer, now);
        c.as_object_mut().unwrap().remove("aud");
        let no_aud = sign(&c, &kid, "at+jwt");
        let (code, challenge) = status(&v, &no_aud).await;
        assert_eq!(code, 401);
        assert!(challenge.unwrap().contains("invalid or revoked"));
        // Unless the app opts in; another resource's token is still refused.
        let lenient = JwtValidator::from_issuer(&p.issuer, "https://api.example/mcp")
            .allow_no_audience(true)
            .build()
            .unwrap();
        assert_eq!(status(&lenient, &no_aud).await.0, 200);
        assert_eq!(
            status(&lenient, &with_aud(json!("https://api.example/mcp"), "l1"))
                .await
                .0,
            200
        );
        let (code, challenge) = status(
            &lenient,
            &with_aud(json!("https://api.example/other"), "l2"),
        )
        .await;
        assert_eq!(code, 401);
        assert!(challenge.unwrap().contains("not meant for this resource"));
    }

    #[tokio::test]
    async fn an_unknown_kid_refetches_once_and_rotation_is_followed() {
        let old = SigningKey::from_pem(EC_PEM).unwrap();
        let p = publish(Published::jwks_of(&old)).await;
        let now = tower_oauth2::clock::Clock::now(&tower_oauth2::clock::SystemClock);
        let v = JwtValidator::from_jwks(format!("{}/jwks.json", p.issuer), &p.issuer, AUD)
            .build()
            .unwrap();
        let good = sign(&claims(&p.issuer, now), old.public_key().kid(), "at+jwt");
        assert_eq!(status(&v, &good).await.0, 200);
        assert_eq!(v.fetches(), 1);
        // A kid nobody published: one refetch, then none within the interval.
        let stranger = sign(&claims(&p.issuer, now), "no-such-kid", "at+jwt");
        assert_eq!(status(&v, &stranger).await.0, 401);
        assert_eq!(
            v.fetches(),
            1,
            "the set was fetched less than an interval ago"
        );
        let v = JwtValidator::from_jwks(format!("{}/jwks.json", p.issuer), &p.issuer, AUD)
            .refetch_interval(std::time::Duration::ZERO)
            .build()
            .unwrap();
        assert_eq!(status(&v, &good).await.0, 200);
        assert_eq!(status(&v, &stranger).await.0, 401);
        assert_eq!(v.fetches(), 2, "exactly one refetch for the unknown kid");
        // Rotation: the server publishes a new key and signs with it; the validator follows.
        let next = SigningKey::generate_es256();
        *p.jwks.lock().unwrap() = tower_oauth2::jose::KeySet::new(next.clone())
            .with_verification_key(old.public_key().clone())
            .jwks();
        let h = {
            let mut h = harness();
            let mut config = h.server.config().clone();
            config.issuer = Some(p.issuer.clone());
            config.access_token_audience = vec![AUD.into()];
            config.access_token_format = AccessTokenFormat::Jwt;
            h.server = AuthServer::builder()
                .config(config)
                .clients(clients())
                .users(tower_oauth2::user::DemoUsers::new().with("alice", "wonderland"))
                .signing_keys(tower_oauth2::jose::KeySet::new(next))
                .build()
                .unwrap();
            h
        };
        let (issued, _) = h.login().await;
        assert_eq!(
            status(&v, &issued).await.0,
            200,
            "a token the real server issued"
        );
        assert_eq!(
            status(&v, &good).await.0,
            200,
            "the old key still verifies until retired"
        );
    }

    #[tokio::test]
    async fn the_shared_remote_options_bound_the_cache_and_the_fetch() {
        let key = SigningKey::from_pem(EC_PEM).unwrap();
        let kid = key.public_key().kid().to_owned();
        let p = publish(Published::jwks_of(&key)).await;
        let now = tower_oauth2::clock::Clock::now(&tower_oauth2::clock::SystemClock);
        let mut options = tower_oauth2::bearer::RemoteOptions::default();
        options.max_entries = 2;
        let v = JwtValidator::from_issuer(&p.issuer, AUD)
            .options(options)
            .build()
            .unwrap();
        for i in 0..5 {
            let mut c = claims(&p.issuer, now);
            c["jti"] = format!("token-{i}").into();
            assert_eq!(status(&v, &sign(&c, &kid, "at+jwt")).await.0, 200);
        }
        assert!(v.cached() <= 2, "cached {}", v.cached());
        // The same option by name, and the old name for it, set the same bound.
        #[allow(deprecated)]
        let old = JwtValidator::from_issuer(&p.issuer, AUD).max_cached(1);
        let new = JwtValidator::from_issuer(&p.issuer, AUD).max_entries(1);
        for v in [old.build().unwrap(), new.build().unwrap()] {
            for i in 0..3 {
                let mut c = claims(&p.issuer, now);
                c["jti"] = format!("again-{i}").into();
                assert_eq!(status(&v, &sign(&c, &kid, "at+jwt")).await.0, 200);
            }
            assert!(v.cached() <= 1, "cached {}", v.cached());
        }
        // A timeout given in the options bounds a fetch from a server that never answers.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", silent.local_addr().unwrap());
        let mut options = tower_oauth2::bearer::RemoteOptions::default();
        options.timeout = std::time::Duration::from_millis(200);
        let v = JwtValidator::from_jwks(format!("{url}/jwks.json"), &url, AUD)
            .options(options)
            .build()
            .unwrap();
        let started = std::time::Instant::now();
        assert_eq!(
            status(&v, &sign(&claims(&url, now), &kid, "at+jwt"))
                .await
                .0,
            503
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn keys_come_over_https_or_from_this_machine_unless_the_app_opts_in() {
        for local in [
            "http://127.0.0.1:3000",
            "http://localhost:3000",
            "http://[::1]",
        ] {
            assert!(
                JwtValidator::from_issuer(local, AUD).build().is_ok(),
                "{local}"
            );
        }
        assert!(
            JwtValidator::from_issuer("https://as.example", AUD)
                .build()
                .is_ok()
        );
        let err = JwtValidator::from_issuer("http://as.example", AUD)
            .build()
            .unwrap_err();
        assert!(
            matches!(err, tower_oauth2::ConfigError::Endpoint(_)),
            "{err:?}"
        );
        let err =
            JwtValidator::from_jwks("http://keys.example/jwks.json", "https://as.example", AUD)
                .build()
                .unwrap_err();
        assert!(
            matches!(err, tower_oauth2::ConfigError::Endpoint(_)),
            "{err:?}"
        );
        assert!(
            JwtValidator::from_issuer("http://as.example", AUD)
                .allow_insecure_http(true)
                .build()
                .is_ok()
        );
    }

    #[tokio::test]
    async fn keys_unobtainable_and_none_cached_is_503() {
        let v = JwtValidator::from_jwks("http://127.0.0.1:1/jwks.json", "http://127.0.0.1:1", AUD)
            .timeout(std::time::Duration::from_millis(300))
            .build()
            .unwrap();
        let key = SigningKey::from_pem(EC_PEM).unwrap();
        let now = tower_oauth2::clock::Clock::now(&tower_oauth2::clock::SystemClock);
        let token = sign(
            &claims("http://127.0.0.1:1", now),
            key.public_key().kid(),
            "at+jwt",
        );
        let (code, challenge) = status(&v, &token).await;
        assert_eq!(code, 503);
        assert_eq!(challenge, None);
        // And a metadata document naming another issuer is refused too (RFC 8414 §3.3).
        let p = publish(Published::jwks_of(&key)).await;
        let v = JwtValidator::from_issuer(format!("{}/", p.issuer), AUD)
            .build()
            .unwrap();
        assert_eq!(status(&v, &token).await.0, 503);
        assert!(
            JwtValidator::from_issuer("ftp://as.example", AUD)
                .build()
                .is_err()
        );
        assert!(
            JwtValidator::from_jwks("/jwks.json", "https://as.example", AUD)
                .build()
                .is_err()
        );
    }

    /// A key set on loopback whose answer the test controls: the set (or a 500 when `None`),
    /// and its `Cache-Control`.
    #[derive(Clone, Default)]
    struct KeyServer {
        jwks: Arc<Mutex<Option<Value>>>,
        cache_control: Arc<Mutex<Option<&'static str>>>,
    }

    impl KeyServer {
        async fn serve(jwks: Value, cache_control: Option<&'static str>) -> (Self, String) {
            let state = Self::default();
            *state.jwks.lock().unwrap() = Some(jwks);
            *state.cache_control.lock().unwrap() = cache_control;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            let s = state.clone();
            let app = Router::new().route(
                "/jwks.json",
                get(move || {
                    let (jwks, cc) = (
                        s.jwks.lock().unwrap().clone(),
                        *s.cache_control.lock().unwrap(),
                    );
                    async move {
                        let mut res = match jwks {
                            Some(set) => axum::response::IntoResponse::into_response(Json(set)),
                            None => axum::response::IntoResponse::into_response(
                                http::StatusCode::INTERNAL_SERVER_ERROR,
                            ),
                        };
                        if let Some(cc) = cc {
                            res.headers_mut()
                                .insert("cache-control", http::HeaderValue::from_static(cc));
                        }
                        res
                    }
                }),
            );
            tokio::spawn(async move { axum::serve(listener, app).await });
            (state, url)
        }

        fn set(&self, jwks: Option<Value>) {
            *self.jwks.lock().unwrap() = jwks;
        }
    }

    fn validator_on(url: &str, clock: &Arc<tower_oauth2::clock::ManualClock>) -> JwtValidator {
        JwtValidator::from_jwks(format!("{url}/jwks.json"), url, AUD)
            .clock(Arc::clone(clock))
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn a_retired_key_stops_verifying_once_the_key_sets_max_age_has_passed() {
        use tower_oauth2::clock::{Clock, ManualClock, SystemClock};
        let key = SigningKey::from_pem(EC_PEM).unwrap();
        let kid = key.public_key().kid().to_owned();
        let (ks, url) =
            KeyServer::serve(Published::jwks_of(&key), Some("public, max-age=1000")).await;
        let clock = Arc::new(ManualClock::new(SystemClock.now()));
        let v = validator_on(&url, &clock);
        let mut c = claims(&url, clock.now());
        c["exp"] = (clock.now() + 7200).into();
        let token = sign(&c, &kid, "at+jwt");
        assert_eq!(status(&v, &token).await.0, 200);
        assert_eq!((v.fetches(), v.cached()), (1, 1));
        // The server retires the key: a set with another key only.
        let next = SigningKey::generate_es256();
        ks.set(Some(Published::jwks_of(&next)));
        clock.advance(std::time::Duration::from_secs(999));
        assert_eq!(
            status(&v, &token).await.0,
            200,
            "within max-age: the set as fetched"
        );
        assert_eq!(v.fetches(), 1, "no fetch within max-age");
        clock.advance(std::time::Duration::from_secs(1));
        let (code, challenge) = status(&v, &token).await;
        assert_eq!(code, 401, "past max-age the set is fetched again, whole");
        assert!(challenge.unwrap().contains("invalid_token"));
        assert_eq!(v.fetches(), 2);
        // Its verified entry is refused too, not only new tokens of the key.
        assert_eq!(status(&v, &token).await.0, 401);
        assert_eq!(
            v.fetches(),
            2,
            "an unknown kid refetches at most once per refetch_interval"
        );
    }

    #[tokio::test]
    async fn max_age_is_bounded_and_a_failed_refetch_keeps_the_last_good_set_and_backs_off() {
        use tower_oauth2::clock::{Clock, ManualClock, SystemClock};
        let key = SigningKey::from_pem(EC_PEM).unwrap();
        let kid = key.public_key().kid().to_owned();
        // `max-age=5` is below the floor (refetch_interval, 60 s).
        let (ks, url) = KeyServer::serve(Published::jwks_of(&key), Some("max-age=5")).await;
        let clock = Arc::new(ManualClock::new(SystemClock.now()));
        let v = validator_on(&url, &clock);
        let fresh = |i: u32| {
            let mut c = claims(&url, clock.now());
            c["jti"] = format!("t-{i}").into();
            sign(&c, &kid, "at+jwt")
        };
        assert_eq!(status(&v, &fresh(0)).await.0, 200);
        clock.advance(std::time::Duration::from_secs(59));
        assert_eq!(status(&v, &fresh(1)).await.0, 200);
        assert_eq!(v.fetches(), 1, "fresh for the floor, not 5 s");
        // The server fails from now on; past the floor the refetch fails, the last set serves.
        ks.set(None);
        clock.advance(std::time::Duration::from_secs(1));
        assert_eq!(status(&v, &fresh(2)).await.0, 200, "the last good set");
        assert_eq!(v.fetches(), 2);
        // Backing off: no attempt for a second, then 2 s, each request answered at once.
        let started = std::time::Instant::now();
        for i in 3..8 {
            assert_eq!(status(&v, &fresh(i)).await.0, 200);
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        assert_eq!(v.fetches(), 2, "no attempt while backing off");
        clock.advance(std::time::Duration::from_secs(1));
        assert_eq!(status(&v, &fresh(8)).await.0, 200);
        assert_eq!(v.fetches(), 3, "one attempt after a second");
        clock.advance(std::time::Duration::from_secs(1));
        assert_eq!(status(&v, &fresh(9)).await.0, 200);
        assert_eq!(v.fetches(), 3, "then two seconds");
        // The server is back: the next attempt replaces the set.
        ks.set(Some(Published::jwks_of(&key)));
        clock.advance(std::time::Duration::from_secs(1));
        assert_eq!(status(&v, &fresh(10)).await.0, 200);
        assert_eq!(v.fetches(), 4);
        assert_eq!(status(&v, &fresh(11)).await.0, 200);
        assert_eq!(v.fetches(), 4, "fresh again");
    }

    #[tokio::test]
    async fn with_no_keys_ever_fetched_a_failing_server_is_503_at_once_while_backing_off() {
        use tower_oauth2::clock::{Clock, ManualClock, SystemClock};
        let key = SigningKey::from_pem(EC_PEM).unwrap();
        let kid = key.public_key().kid().to_owned();
        let (ks, url) = KeyServer::serve(Published::jwks_of(&key), None).await;
        ks.set(None);
        let clock = Arc::new(ManualClock::new(SystemClock.now()));
        let v = validator_on(&url, &clock);
        let token = sign(&claims(&url, clock.now()), &kid, "at+jwt");
        let (code, challenge) = status(&v, &token).await;
        assert_eq!((code, challenge), (503, None));
        assert_eq!(v.fetches(), 1);
        for _ in 0..5 {
            assert_eq!(status(&v, &token).await.0, 503);
        }
        assert_eq!(v.fetches(), 1, "503 at once, no attempt queued");
        ks.set(Some(Published::jwks_of(&key)));
        clock.advance(std::time::Duration::from_secs(1));
        assert_eq!(
            status(&v, &token).await.0,
            200,
            "the next attempt after the backoff"
        );
        assert_eq!(v.fetches(), 2);
    }

    #[tokio::test]
    async fn a_key_published_for_encryption_never_verifies_a_token() {
        use tower_oauth2::clock::{Clock, ManualClock, SystemClock};
        let key = SigningKey::from_pem(EC_PEM).unwrap();
        let kid = key.public_key().kid().to_owned();
        let with = |field: &str, value: Value| {
            let mut set = Published::jwks_of(&key);
            set["keys"][0][field] = value;
            set
        };
        let cases = [
            (with("use", json!("enc")), 401),
            (with("key_ops", json!(["encrypt", "wrapKey"])), 401),
            (with("key_ops", json!(["sign"])), 401),
            (with("key_ops", json!(["verify"])), 200),
            (with("use", json!("sig")), 200),
        ];
        for (set, expected) in cases {
            let (_, url) = KeyServer::serve(set.clone(), None).await;
            let clock = Arc::new(ManualClock::new(SystemClock.now()));
            let v = validator_on(&url, &clock);
            let token = sign(&claims(&url, clock.now()), &kid, "at+jwt");
            assert_eq!(status(&v, &token).await.0, expected, "{set}");
        }
    }

    /// A client's own token is told from a user's by its `gty` claim, never by `sub` equalling
    /// `client_id`: a user whose id is some client's id stays a user.
    #[tokio::test]
    async fn a_token_for_the_client_itself_is_told_by_its_claim_not_by_its_subject() {
        let key = SigningKey::from_pem(EC_PEM).unwrap();
        let kid = key.public_key().kid().to_owned();
        let p = publish(Published::jwks_of(&key)).await;
        let now = tower_oauth2::clock::Clock::now(&tower_oauth2::clock::SystemClock);
        let v = JwtValidator::from_issuer(&p.issuer, AUD).build().unwrap();
        let info = |claims: Value| {
            let layer = BearerLayer::with_validator(v.clone(), "api");
            let token = sign(&claims, &kid, "at+jwt");
            async move {
                let req = Request::get("/")
                    .header("authorization", format!("Bearer {token}"))
                    .body(Full::new(Bytes::new()))
                    .unwrap();
                call_protected(layer, req).await.json()
            }
        };
        let mut user_named_like_a_client = claims(&p.issuer, now);
        user_named_like_a_client["sub"] = "app".into();
        user_named_like_a_client["jti"] = "u".into();
        let seen = info(user_named_like_a_client).await;
        assert_eq!(
            (&seen["sub"], &seen["client_id"]),
            (&"app".into(), &"app".into())
        );
        let mut client_itself = claims(&p.issuer, now);
        client_itself["sub"] = "app".into();
        client_itself["gty"] = "client_credentials".into();
        client_itself["jti"] = "c".into();
        let seen = info(client_itself).await;
        assert_eq!(
            (&seen["sub"], &seen["client_id"]),
            (&Value::Null, &"app".into())
        );
    }

    /// The server's own layer checks `typ: at+jwt` too, not only the remote validator: a token
    /// signed with the server's key and known to its store, but typed as a plain JWT (an ID
    /// token, say), is refused before the store is asked.
    #[tokio::test]
    async fn the_servers_own_layer_refuses_a_jwt_not_typed_as_an_access_token() {
        use tower_oauth2::{
            GrantType, Scope,
            bearer::{LocalValidator, Validation, Validator},
            clock::{Clock, SystemClock},
            store::{GrantRecord, GrantStore, MemoryStore, NewAccessToken},
            token::{GrantId, TokenHash},
        };
        let key = SigningKey::from_pem(EC_PEM).unwrap();
        let kid = key.public_key().kid().to_owned();
        let keys = tower_oauth2::jose::KeySet::new(key);
        let issuer = "https://auth.example";
        let now = SystemClock.now();
        let store = MemoryStore::new();
        let validator = LocalValidator::new(Arc::new(store.clone()), Arc::new(SystemClock))
            .with_signing_keys(&keys, issuer);
        for (typ, expected_valid) in [
            ("at+jwt", true),
            ("JWT", false),
            ("application/at+jwt", true),
        ] {
            let mut c = claims(issuer, now);
            c["jti"] = format!("jti-{typ}").into();
            let token = sign(&c, &kid, typ);
            // Known to the store, whatever its type: only the signature check tells them apart.
            store
                .create_grant(
                    GrantRecord {
                        id: GrantId::generate(),
                        client_id: Arc::from("app"),
                        subject: Some(Arc::from("alice")),
                        scope: Scope::parse("read").unwrap(),
                        resources: Default::default(),
                        grant_type: GrantType::Password,
                        created_at: now,
                        expires_at: None,
                    },
                    NewAccessToken {
                        hash: TokenHash::of(&token),
                        scope: Scope::parse("read").unwrap(),
                        audience: Default::default(),
                        issued_at: now,
                        expires_at: now + 600,
                    },
                    None,
                )
                .await
                .unwrap();
            let verdict = validator.validate(&token).await.unwrap();
            assert_eq!(
                matches!(verdict, Validation::Valid(_)),
                expected_valid,
                "typ {typ}: {verdict:?}"
            );
        }
    }

    impl Published {
        fn jwks_of(key: &SigningKey) -> Value {
            tower_oauth2::jose::KeySet::new(key.clone()).jwks()
        }
    }
}
