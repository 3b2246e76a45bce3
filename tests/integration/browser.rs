//! A real browser runs the authorization-code flow against the real quickstart process: headless
//! Chromium, driven over WebDriver (`chromedriver`, from the machine's Debian packages), opens
//! the authorize URL the quickstart prints, signs in as `test`/`test`, approves, and lands on
//! the loopback callback; the test exchanges the code with the PKCE verifier, calls `/api/me`
//! and refreshes. A second run denies and sees `access_denied`.
//!
//! Without `chromedriver` and Chromium the test is skipped with one line on standard error,
//! except in CI, where it fails (`.ci/run` installs both).

use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::Full;
use serde_json::{Value, json};

use crate::support::{backends::is_ci, form, http, quickstart};

struct Driver {
    child: Child,
    base: String,
    session: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find(names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join(n))
                .find(|p| p.is_file())
                .map(|p| p.display().to_string())
        })
    })
}

async fn call(base: &str, method: Method, path: &str, body: Option<Value>) -> Value {
    let mut req = Request::builder()
        .method(method)
        .uri(format!("{base}{path}"));
    let body = match body {
        Some(v) => {
            req = req.header("content-type", "application/json");
            Bytes::from(v.to_string())
        }
        None => Bytes::new(),
    };
    let r = http(req.body(Full::new(body)).unwrap()).await;
    let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    assert!(r.status.is_success(), "WebDriver {path}: {} {v}", r.status);
    v["value"].clone()
}

impl Driver {
    /// chromedriver on a free port, and a headless Chromium session.
    async fn start(chromedriver: &str, chromium: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let base = format!("http://127.0.0.1:{port}");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=800,900"]
            }
        }}});
        let session = call(&base, Method::POST, "/session", Some(caps)).await;
        let session = session["sessionId"].as_str().unwrap().to_owned();
        let driver = Self {
            child,
            base,
            session,
        };
        // A click that submits a form returns before the next page is there: element lookups
        // wait for it (up to 10 s) instead of failing at once on a loaded machine.
        driver
            .cmd(
                Method::POST,
                "/timeouts",
                Some(json!({ "implicit": 10_000 })),
            )
            .await;
        driver
    }

    async fn cmd(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let path = format!("/session/{}{path}", self.session);
        call(&self.base, method, &path, body).await
    }

    async fn goto(&self, url: &str) {
        self.cmd(Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    async fn url(&self) -> String {
        self.cmd(Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn element(&self, css: &str) -> String {
        let v = self
            .cmd(
                Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        // A W3C element reference: an object with one member, the element's id.
        v.as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_owned()
    }

    async fn text(&self, css: &str) -> String {
        let e = self.element(css).await;
        self.cmd(Method::GET, &format!("/element/{e}/text"), None)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn type_into(&self, css: &str, text: &str) {
        let e = self.element(css).await;
        self.cmd(
            Method::POST,
            &format!("/element/{e}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    async fn click(&self, css: &str) {
        let e = self.element(css).await;
        self.cmd(
            Method::POST,
            &format!("/element/{e}/click"),
            Some(json!({})),
        )
        .await;
    }

    /// Wait until the browser is at a URL starting with `prefix`.
    async fn wait_for_url(&self, prefix: &str) -> String {
        for _ in 0..100 {
            let url = self.url().await;
            if url.starts_with(prefix) {
                return url;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "the browser never reached {prefix}: at {}",
            self.url().await
        );
    }

    /// Save a screenshot under the target directory, for a person to look at.
    async fn screenshot(&self, name: &str) {
        use base64::Engine;
        let png = self.cmd(Method::GET, "/screenshot", None).await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap_or(""))
            .unwrap_or_default();
        let dir = std::env::current_exe()
            .unwrap()
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .join("screenshots");
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::write(dir.join(format!("{name}.png")), bytes);
    }
}

/// The authorize URL and the code verifier the quickstart printed.
fn printed_flow(lines: &[String]) -> (String, String) {
    let url = lines
        .iter()
        .map(|l| l.trim())
        .find(|l| l.contains("/oauth/authorize?"))
        .expect("an authorize URL")
        .to_owned();
    let verifier = lines
        .iter()
        .find_map(|l| l.split("code_verifier=").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("a code verifier")
        .to_owned();
    (url, verifier)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_signs_in_approves_and_the_code_exchanges_then_a_denial() {
    let (Some(chromedriver), Some(chromium)) = (
        find(&["chromedriver"]),
        find(&["chromium", "chromium-browser", "google-chrome"]),
    ) else {
        let ci = std::env::var("CI").ok();
        assert!(
            !is_ci(ci.as_deref()),
            "chromedriver and Chromium are required in CI (.ci/run installs them)"
        );
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPING the browser test: chromedriver or Chromium not found (apt-get install chromium chromium-driver)"
        );
        return;
    };
    let qs = quickstart::start(&[]);
    let (authorize, verifier) = printed_flow(&qs.printed);
    let port = qs.addr.port();
    assert!(authorize.starts_with(&format!("http://127.0.0.1:{port}/oauth/authorize?")));
    let driver = Driver::start(&chromedriver, &chromium).await;

    // Sign in and approve.
    driver.goto(&authorize).await;
    assert_eq!(driver.text("h1").await, "Sign in");
    let scopes = driver.text("#scopes").await;
    for scope in ["openid", "profile", "email", "offline_access"] {
        assert!(scopes.contains(scope), "{scope} in {scopes}");
    }
    driver.screenshot("authorize-login").await;
    // A wrong password first: the same page, with the error.
    driver.type_into("#username", "test").await;
    driver.type_into("#password", "wrong").await;
    driver.click("#approve").await;
    assert!(
        driver
            .text("[role=alert]")
            .await
            .contains("Wrong username or password")
    );
    driver.type_into("#username", "test").await;
    driver.type_into("#password", "test").await;
    driver.click("#approve").await;
    let landed = driver
        .wait_for_url(&format!("http://127.0.0.1:{port}/callback?"))
        .await;
    driver.screenshot("authorize-callback").await;
    assert!(
        landed.contains(&format!("iss=http%3A%2F%2Flocalhost%3A{port}")),
        "{landed}"
    );
    let code = driver.text("#code").await;
    assert_eq!(code.len(), 46, "{code:?}");
    assert!(driver.text("#exchange").await.contains(&verifier));

    // The code, exchanged as the page says, gives tokens that work and refresh.
    let token_url = format!("http://127.0.0.1:{port}/oauth/token");
    let body = format!(
        "grant_type=authorization_code&client_id=quickstart-spa&code={code}&redirect_uri=http://127.0.0.1:{port}/callback&code_verifier={verifier}"
    );
    let v = http(form(&token_url, None, &body)).await.assert_token();
    let at = v["access_token"].as_str().unwrap();
    let me = Request::get(format!("http://127.0.0.1:{port}/api/me"))
        .header("authorization", format!("Bearer {at}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let me = http(me).await.json();
    assert_eq!(
        (me["user"].as_str(), me["client_id"].as_str()),
        (Some("test"), Some("quickstart-spa"))
    );
    let rt = v["refresh_token"].as_str().unwrap();
    let body = format!("grant_type=refresh_token&client_id=quickstart-spa&refresh_token={rt}");
    http(form(&token_url, None, &body)).await.assert_token();
    // Single use: the same code again is refused.
    let body = format!(
        "grant_type=authorization_code&client_id=quickstart-spa&code={code}&redirect_uri=http://127.0.0.1:{port}/callback&code_verifier={verifier}"
    );
    http(form(&token_url, None, &body))
        .await
        .assert_error(400, "invalid_grant");

    // A second run, denied.
    driver.goto(&authorize).await;
    driver.click("#deny").await;
    let landed = driver
        .wait_for_url(&format!("http://127.0.0.1:{port}/callback?"))
        .await;
    assert!(landed.contains("error=access_denied"), "{landed}");
    assert!(driver.text("#error").await.contains("access_denied"));
    driver.screenshot("authorize-denied").await;

    // The API as a resource (RFC 8707): the page names it; an unknown resource is refused at
    // the callback, with the request's state and iss.
    driver
        .goto(&format!(
            "{authorize}&resource=http%3A%2F%2Flocalhost%3A{port}%2Fapi"
        ))
        .await;
    assert_eq!(
        driver.text("#resources").await,
        format!("http://localhost:{port}/api")
    );
    driver.screenshot("authorize-resource").await;
    driver
        .goto(&format!(
            "{authorize}&resource=https%3A%2F%2Felsewhere.example%2Fapi"
        ))
        .await;
    let landed = driver
        .wait_for_url(&format!("http://127.0.0.1:{port}/callback?"))
        .await;
    assert!(landed.contains("error=invalid_target"), "{landed}");
    assert!(landed.contains("&state="), "{landed}");
    assert!(driver.text("#error").await.contains("invalid_target"));

    // A device (RFC 8628): the user opens the verification page, types the code the device
    // shows (in lower case, without the dash), checks it on the login page, signs in and
    // approves; the device's next poll gets the tokens.
    let started = http(form(
        &format!("http://127.0.0.1:{port}/oauth/device_authorization"),
        None,
        "client_id=quickstart-cli&scope=read",
    ))
    .await
    .json();
    let user_code = started["user_code"].as_str().unwrap().to_owned();
    let device_code = started["device_code"].as_str().unwrap().to_owned();
    let verification = started["verification_uri"].as_str().unwrap().to_owned();
    assert_eq!(verification, format!("http://localhost:{port}/device"));
    driver.goto(&verification).await;
    assert_eq!(driver.text("h1").await, "Connect a device");
    driver
        .type_into("#user_code", &user_code.replace('-', "").to_lowercase())
        .await;
    driver.screenshot("device-enter").await;
    driver.click("#continue").await;
    assert_eq!(driver.text("#user-code").await, user_code);
    assert_eq!(driver.text("#client").await, "quickstart CLI");
    driver.screenshot("device-login").await;
    driver.type_into("#username", "test").await;
    driver.type_into("#password", "test").await;
    driver.click("#approve").await;
    assert!(
        driver
            .text("#message")
            .await
            .contains("the device is connected")
    );
    driver.screenshot("device-done").await;
    let poll = format!(
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&client_id=quickstart-cli&device_code={device_code}"
    );
    let v = http(form(&token_url, None, &poll)).await.assert_token();
    assert_eq!(v["scope"], "read");
    http(form(&token_url, None, &poll))
        .await
        .assert_error(400, "invalid_grant");

    // OpenID Connect: the printed flow asks for openid with a nonce; the callback exchanges
    // the code on request and shows the ID token's claims; its logout link signs the user out
    // and comes back to the home page with state.
    driver.goto(&authorize).await;
    driver.type_into("#username", "test").await;
    driver.type_into("#password", "test").await;
    driver.click("#approve").await;
    driver
        .wait_for_url(&format!("http://127.0.0.1:{port}/callback?"))
        .await;
    driver.click("#exchange-here").await;
    assert_eq!(driver.text("h1").await, "Signed in: ID token received");
    let claims: serde_json::Value = serde_json::from_str(&driver.text("#claims").await).unwrap();
    assert_eq!(claims["sub"], "test");
    assert_eq!(claims["aud"], "quickstart-spa");
    assert_eq!(claims["iss"], format!("http://localhost:{port}"));
    assert_eq!(claims["amr"], serde_json::json!(["pwd"]));
    assert!(claims["nonce"].is_string() && claims["sid"].is_string());
    assert!(
        driver
            .text("body")
            .await
            .contains("nonce matches the printed one")
    );
    driver.screenshot("openid-claims").await;
    driver.click("#logout").await;
    let landed = driver
        .wait_for_url(&format!("http://127.0.0.1:{port}/?state=bye"))
        .await;
    assert!(landed.ends_with("/?state=bye"), "{landed}");
    assert!(driver.text("#signed-out").await.contains("bye"));
    driver.screenshot("openid-logged-out").await;
    driver.cmd(Method::DELETE, "", None).await;
}
