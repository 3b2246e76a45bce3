//! No token, code or secret ever appears in a log line: every `tracing` event emitted during a
//! full lifecycle (including failures and a store outage) is captured and searched.

use std::sync::{Arc, Mutex};

use crate::support::*;
use tracing::{
    Event, Metadata, Subscriber,
    field::{Field, Visit},
    span,
};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<String>>>);

struct Line<'a>(&'a mut String);

impl Visit for Line<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!(" {}={:?}", field.name(), value));
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }
    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}
    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut line = format!("{} {}", event.metadata().level(), event.metadata().target());
        event.record(&mut Line(&mut line));
        self.0.lock().unwrap().push(line);
    }
    fn enter(&self, _: &span::Id) {}
    fn exit(&self, _: &span::Id) {}
}

#[test]
fn no_secret_in_any_log_line() {
    let capture = Capture::default();
    let lines = Arc::clone(&capture.0);
    let secrets = tracing::subscriber::with_default(capture, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let h = harness_with(|c| c.refresh_token_grace_period = std::time::Duration::from_secs(5));
            let (at, rt0) = h.login().await;
            let v = h.refresh(("app", "app-secret"), &rt0).await.assert_token();
            h.refresh(("app", "app-secret"), &rt0).await; // grace retry
            h.advance(5);
            h.refresh(("app", "app-secret"), &rt0).await; // reuse detected
            h.token(Some(("app", "wrong-secret-xyz")), "grant_type=client_credentials").await;
            h.token(Some(("app", "app-secret")), "grant_type=password&username=alice&password=bad-password-xyz").await;
            let code = h
                .server
                .issue_authorization_code(
                    tower_oauth2::AuthorizationRequest::new("app", "alice")
                        .redirect_uri("https://app.example/cb")
                        .code_challenge("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", Some("S256")),
                )
                .await
                .unwrap();
            let body = format!(
                "grant_type=authorization_code&code={code}&redirect_uri=https%3A%2F%2Fapp.example%2Fcb\
                 &code_verifier=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
            );
            h.token(Some(("app", "app-secret")), &body).await.assert_token();
            h.token(Some(("app", "app-secret")), &body).await; // code reuse
            h.revoke(Some(("app", "app-secret")), &format!("token={at}")).await;
            vec![
                at,
                rt0,
                v["access_token"].as_str().unwrap().to_owned(),
                v["refresh_token"].as_str().unwrap().to_owned(),
                code,
                "app-secret".to_owned(),
                "wrong-secret-xyz".to_owned(),
                "wonderland".to_owned(),
                "bad-password-xyz".to_owned(),
            ]
        })
    });
    let lines = lines.lock().unwrap();
    assert!(
        lines.iter().any(|l| l.contains("reuse_detected")),
        "events are logged: {lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("client_authentication_failed"))
    );
    for line in lines.iter() {
        for secret in &secrets {
            assert!(
                !line.contains(secret.as_str()),
                "log line leaks {secret}: {line}"
            );
        }
    }
}
