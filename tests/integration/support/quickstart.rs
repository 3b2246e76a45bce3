//! The real quickstart binary (or another example) as a separate process on loopback, killed
//! when dropped.

use std::{
    io::{BufRead, BufReader, Read},
    net::SocketAddr,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
};

/// A quickstart process and what it printed on start.
pub struct Instance {
    child: Child,
    pub addr: SocketAddr,
    /// The lines it printed before serving (the greeting, the curl line, the authorize URL and
    /// the exchange command).
    pub printed: Vec<String>,
    /// What it has written to standard error so far (its events).
    stderr: Arc<Mutex<String>>,
}

impl Instance {
    /// Its standard error so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn binary(example: &str) -> std::path::PathBuf {
    // target/<profile>/deps/integration-… → target/<profile>/examples/<example>
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(example);
    assert!(
        bin.exists(),
        "{} not built (cargo test builds examples)",
        bin.display()
    );
    bin
}

/// Start one on a free port with these arguments (e.g. `--store URL`).
pub fn start(args: &[&str]) -> Instance {
    // The greeting, "Try:", the curl line, and the three lines of the authorization code flow.
    start_example("quickstart", args, 7)
}

/// Start `example` on a free port (env `PORT`) with `args`, once it has printed `lines`.
pub fn start_example(example: &str, args: &[&str], lines: usize) -> Instance {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(binary(example))
        .args(args)
        .env("PORT", port.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = Arc::new(Mutex::new(String::new()));
    let mut err = child.stderr.take().unwrap();
    let kept = Arc::clone(&stderr);
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = err.read(&mut buf) {
            if n == 0 {
                break;
            }
            kept.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut printed = Vec::new();
    for _ in 0..lines {
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
        "{example} said {printed:?}"
    );
    Instance {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        printed,
        stderr,
    }
}
