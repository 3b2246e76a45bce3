//! The quickstart's own pages, as a person's browser meets them over real HTTP: the callback
//! never builds a shell command from a code it did not issue, the login counts wrong
//! passwords per request, and every page it serves carries the security headers.

use bytes::Bytes;
use http::Request;
use http_body_util::Full;

use crate::support::{Reply, form, http, quickstart};

fn get(url: String, cookie: Option<&str>) -> Request<Full<Bytes>> {
    let mut b = Request::get(url);
    if let Some(c) = cookie {
        b = b.header("cookie", c);
    }
    b.body(Full::new(Bytes::new())).unwrap()
}

fn field<'a>(page: &'a str, name: &str) -> &'a str {
    let at = page
        .find(&format!("name=\"{name}\" value=\""))
        .unwrap_or_else(|| panic!("no {name} in {page}"));
    let rest = &page[at + name.len() + 15..];
    &rest[..rest.find('"').unwrap()]
}

fn assert_secured(r: &Reply) {
    for (name, value) in [
        ("cache-control", "no-store"),
        ("content-security-policy", "frame-ancestors 'none'"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
    ] {
        assert_eq!(r.header(name), Some(value), "{name} on a {} page", r.status);
    }
}

#[tokio::test]
async fn the_callback_shows_an_exchange_command_only_for_a_code_it_could_have_issued() {
    let qs = quickstart::start(&[]);
    let url = |code: &str| format!("http://{}/callback?code={code}&state=s&iss=x", qs.addr);
    for hostile in ["%24%28id%29", "a%3Bb", "abc%27%22", "x"] {
        let r = http(get(url(hostile), None)).await;
        let body = String::from_utf8_lossy(&r.body);
        assert!(
            !body.contains("curl"),
            "a command built from {hostile}: {body}"
        );
        assert!(body.contains("Not a code from this server"), "{body}");
    }
    let code = "e39gy4JERY4ilKyez_lwN7qJ1bt7cw8SH15TT-ey-EJOOo";
    let body = String::from_utf8_lossy(&http(get(url(code), None)).await.body).into_owned();
    assert!(body.contains(&format!("-d code={code}")), "{body}");
}

#[tokio::test]
async fn the_login_denies_a_request_after_five_wrong_passwords_and_secures_every_page() {
    let qs = quickstart::start(&[]);
    let authorize = qs
        .printed
        .iter()
        .find_map(|l| {
            l.trim()
                .strip_prefix("http://")
                .filter(|u| u.contains("/oauth/authorize?"))
        })
        .map(|u| format!("http://{u}"))
        .expect("the printed authorize URL")
        .replace("127.0.0.1:3000", &qs.addr.to_string());
    let page = http(get(authorize, None)).await;
    assert_eq!(page.status, 200);
    assert_secured(&page);
    let cookie = page
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let html = String::from_utf8_lossy(&page.body).into_owned();
    let (handle, csrf) = (field(&html, "handle"), field(&html, "csrf"));
    let login = format!("http://{}/oauth/authorize/login", qs.addr);
    let attempt = |csrf: &str, password: &str| {
        let mut req = form(
            &login,
            None,
            &format!(
                "handle={handle}&csrf={csrf}&username=test&password={password}&action=approve"
            ),
        );
        req.headers_mut().insert("cookie", cookie.parse().unwrap());
        http(req)
    };
    // A wrong CSRF token: 403, with the same headers as every other page.
    let r = attempt("0000", "test").await;
    assert_eq!(r.status, 403);
    assert_secured(&r);
    for i in 1..5 {
        let r = attempt(csrf, "wrong").await;
        assert_eq!(r.status, 401, "wrong password {i}");
        assert_secured(&r);
        assert!(String::from_utf8_lossy(&r.body).contains("Wrong username or password"));
    }
    // The fifth wrong guess ends the request: the client gets access_denied.
    let r = attempt(csrf, "wrong").await;
    assert_eq!(r.status, 303);
    let to = r.header("location").unwrap();
    assert!(to.contains("error=access_denied"), "{to}");
    // The right password comes too late: the handle is used up.
    let r = attempt(csrf, "test").await;
    assert_eq!(r.status, 400);
    assert!(String::from_utf8_lossy(&r.body).contains("expired or was already used"));
}

/// RFC 8628's "done when": `examples/device_cli` against the running quickstart prints a code,
/// the user signs in at the printed URL (here: the pages over HTTP, as a browser would post
/// them), and the CLI prints the protected resource.
#[tokio::test]
async fn the_device_cli_signs_in_through_the_quickstarts_verification_page() {
    use std::io::{BufRead, BufReader};
    let qs = quickstart::start(&[]);
    let base = format!("http://localhost:{}", qs.addr.port());
    let mut cli = std::process::Command::new(quickstart::binary("device_cli"))
        .arg(&base)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(cli.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    let prefix = format!("To sign in, open {base}/device and enter the code ");
    let code = first
        .trim_end()
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{first}"))
        .to_owned();
    assert_eq!(code.len(), 9, "{code}");
    // The browser: the verification page with the code typed in lower case, the demo login
    // naming the code to compare, then sign in and approve.
    let page = http(form(
        &format!("http://{}/device", qs.addr),
        None,
        &format!("user_code={}", code.to_lowercase()),
    ))
    .await;
    assert_eq!(page.status, 200);
    assert_secured(&page);
    let cookie = page
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let html = String::from_utf8_lossy(&page.body).into_owned();
    assert!(
        html.contains(&format!("<strong id=user-code>{code}</strong>")),
        "{html}"
    );
    assert!(html.contains("quickstart CLI"), "{html}");
    let (handle, csrf) = (field(&html, "handle"), field(&html, "csrf"));
    let mut post = form(
        &format!("http://{}/oauth/authorize/login", qs.addr),
        None,
        &format!("handle={handle}&csrf={csrf}&username=test&password=test&action=approve"),
    );
    post.headers_mut().insert("cookie", cookie.parse().unwrap());
    let done = http(post).await;
    assert_eq!(done.status, 200);
    assert!(
        String::from_utf8_lossy(&done.body).contains("the device is connected"),
        "{:?}",
        done.body
    );
    // The CLI, at its next poll, gets the tokens and calls /api/me.
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    assert!(cli.wait().unwrap().success(), "{rest}");
    assert!(
        rest.contains("Signed in: scope offline_access read, a refresh token too"),
        "{rest}"
    );
    assert!(rest.contains("GET /api/me: 200 OK"), "{rest}");
    assert!(rest.contains("\"client_id\":\"quickstart-cli\""), "{rest}");
    assert!(rest.contains("\"user\":\"test\""), "{rest}");
}
