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
