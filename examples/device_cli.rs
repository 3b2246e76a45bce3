//! A command-line tool that logs in with the device authorization grant (RFC 8628), against
//! the running quickstart: it asks for a code, prints it with the URL to enter it at, polls the
//! token endpoint (keeping the interval, slowing down when told), then calls the protected
//! `/api/me` with the token it got and prints the answer. It stores nothing on disk.
//!
//! ```sh
//! cargo run --example quickstart           # in one terminal
//! cargo run --example device_cli           # in another; open the printed URL, sign in as test / test
//! cargo run --example device_cli -- http://localhost:3400    # another quickstart
//! ```

use std::time::Duration;

use bytes::Bytes;
use http::{Request, header};
use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use serde_json::Value;

type Http = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

const CLIENT_ID: &str = "quickstart-cli";

/// POST a form; the status and the JSON answer.
async fn post(http: &Http, url: &str, body: String) -> Result<(u16, Value), String> {
    let req = Request::post(url)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let res = http.request(req).await.map_err(|e| format!("{url}: {e}"))?;
    let status = res.status().as_u16();
    let bytes = res
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    let json = serde_json::from_slice(&bytes).map_err(|_| {
        format!(
            "{url} answered {status}: {}",
            String::from_utf8_lossy(&bytes)
        )
    })?;
    Ok((status, json))
}

fn say(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let base = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("BASE_URL").ok())
        .unwrap_or_else(|| "http://localhost:3000".to_owned());
    let base = base.trim_end_matches('/');
    let http: Http = Client::builder(TokioExecutor::new()).build_http();

    // 1. Ask for a device code (RFC 8628 §3.1).
    let (status, started) = post(
        &http,
        &format!("{base}/oauth/device_authorization"),
        format!("client_id={CLIENT_ID}&scope=read%20offline_access"),
    )
    .await?;
    if status != 200 {
        return Err(format!("device authorization failed: {started}").into());
    }
    let text = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_owned();
    let device_code = text(&started, "device_code");
    say(&format!(
        "To sign in, open {} and enter the code {}",
        text(&started, "verification_uri"),
        text(&started, "user_code")
    ));
    say(&format!(
        "(or open {})",
        text(&started, "verification_uri_complete")
    ));
    let mut interval = started["interval"].as_u64().unwrap_or(5);
    let expires_in = started["expires_in"].as_u64().unwrap_or(600);

    // 2. Poll until the user decides (RFC 8628 §3.4, §3.5).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(expires_in);
    let token = loop {
        tokio::time::sleep(Duration::from_secs(interval)).await;
        if tokio::time::Instant::now() > deadline {
            return Err("the code expired before anyone approved it".into());
        }
        let (status, answer) = post(
            &http,
            &format!("{base}/oauth/token"),
            format!(
                "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code\
                 &client_id={CLIENT_ID}&device_code={device_code}"
            ),
        )
        .await?;
        if status == 200 {
            break answer;
        }
        match answer["error"].as_str() {
            Some("authorization_pending") => {}
            Some("slow_down") => interval += 5,
            Some("access_denied") => return Err("the request was denied".into()),
            Some("expired_token") => return Err("the code expired: run me again".into()),
            _ => return Err(format!("the token endpoint said: {answer}").into()),
        }
    };
    say(&format!(
        "Signed in: scope {}, a refresh token {}",
        text(&token, "scope"),
        if token["refresh_token"].is_string() {
            "too"
        } else {
            "not issued"
        }
    ));

    // 3. Call the protected resource with the access token.
    let req = Request::get(format!("{base}/api/me"))
        .header(
            header::AUTHORIZATION,
            format!("Bearer {}", text(&token, "access_token")),
        )
        .body(Full::new(Bytes::new()))?;
    let res = http.request(req).await?;
    let status = res.status();
    let body = res.into_body().collect().await?.to_bytes();
    say(&format!(
        "GET /api/me: {status} {}",
        String::from_utf8_lossy(&body)
    ));
    Ok(())
}
