//! A strict client nobody here wrote runs the authorization-code flow against the real
//! quickstart process: oauth4webapi (JavaScript) discovers the metadata (RFC 8414, the issuer
//! must match), pushes the request (RFC 9126), validates the authorization response's `iss`
//! (RFC 9207) and refuses a forged one, exchanges the code with PKCE and refreshes
//! (`tests/interop/oauth4webapi/flow.mjs`).
//!
//! Needs node and `npm ci` in that folder (`.ci/run` does it); otherwise skipped locally with
//! one line, and a failure in CI.

use std::process::Command;

use crate::support::{backends::is_ci, quickstart};

#[test]
fn oauth4webapi_runs_the_code_flow_with_par_and_iss() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/oauth4webapi");
    let installed = dir.join("node_modules/oauth4webapi").is_dir();
    let node = Command::new("node").arg("--version").output().is_ok();
    if !(installed && node) {
        let ci = std::env::var("CI").ok();
        assert!(
            !is_ci(ci.as_deref()),
            "node and `npm ci` in {} are required in CI",
            dir.display()
        );
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPING the oauth4webapi interop test: run `npm ci --prefix tests/interop/oauth4webapi`"
        );
        return;
    }
    let qs = quickstart::start(&[]);
    let issuer = format!("http://localhost:{}", qs.addr.port());
    let out = Command::new("node")
        .arg("flow.mjs")
        .arg(&issuer)
        .current_dir(&dir)
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "oauth4webapi failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for step in [
        "discovery (RFC 8414)",
        "pushed authorization request (RFC 9126)",
        "validated with iss (RFC 9207)",
        "code exchanged with PKCE",
        "the access token works",
        "refreshed, with rotation",
    ] {
        assert!(stdout.contains(step), "missing {step:?} in:\n{stdout}");
    }
}
