//! The real quickstart binary as a separate process on loopback, killed when dropped.

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    process::{Child, Command, Stdio},
};

/// A quickstart process and what it printed on start.
pub struct Instance {
    child: Child,
    pub addr: SocketAddr,
    /// The lines it printed before serving (the greeting, the curl line, the authorize URL and
    /// the exchange command).
    pub printed: Vec<String>,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn binary() -> std::path::PathBuf {
    // target/<profile>/deps/integration-… → target/<profile>/examples/quickstart
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join("quickstart");
    assert!(
        bin.exists(),
        "{} not built (cargo test builds examples)",
        bin.display()
    );
    bin
}

/// Start one on a free port with these arguments (e.g. `--store URL`).
pub fn start(args: &[&str]) -> Instance {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(binary())
        .args(args)
        .env("PORT", port.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut printed = Vec::new();
    // The greeting, "Try:", the curl line, and the three lines of the authorization code flow.
    for _ in 0..7 {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap() == 0 {
            break;
        }
        printed.push(line.trim_end().to_owned());
    }
    // Keep draining, or the next line it prints would fail on a closed pipe.
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    assert!(
        printed
            .first()
            .is_some_and(|l| l.contains(&format!("127.0.0.1:{port}"))),
        "quickstart said {printed:?}"
    );
    Instance {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        printed,
    }
}
