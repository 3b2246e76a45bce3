//! The node clients nobody here wrote (`tests/interop/node`: oauth4webapi, jose, openid-client, the MCP SDK and
//! the MCP conformance suite), run as separate processes.

use std::process::Command;

use super::backends::is_ci;

/// The folder of the node clients, when they are installed; `None` (after saying so) locally
/// when they are not.
pub fn clients() -> Option<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/node");
    let installed = [
        "oauth4webapi",
        "jose",
        "openid-client",
        "@modelcontextprotocol/sdk",
        "@modelcontextprotocol/conformance",
        "node/bin",
    ]
    .iter()
    .all(|p| dir.join("node_modules").join(p).is_dir());
    let node = Command::new("node").arg("--version").output().is_ok();
    if installed && node {
        return Some(dir);
    }
    let ci = std::env::var("CI").ok();
    assert!(
        !is_ci(ci.as_deref()),
        "node and `npm ci` in {} are required in CI",
        dir.display()
    );
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPING the node interop tests: run `npm ci --prefix tests/interop/node`"
    );
    None
}

/// Run `node script args…` in `dir`; its standard output, after asserting it succeeded.
pub fn node(dir: &std::path::Path, script: &str, args: &[&str]) -> String {
    let out = Command::new("node")
        .arg(script)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{script} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}
