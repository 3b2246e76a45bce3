//! A loopback TCP proxy between a test and a real Redis or PostgreSQL server, to cut, refuse or
//! swallow its connections.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU8, Ordering},
    },
};

use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};

pub const PASS: u8 = 0;
pub const REFUSE: u8 = 1;
pub const BLACKHOLE: u8 = 2;

/// A loopback TCP proxy whose behaviour can be switched: forward, close at once, or swallow.
pub struct Proxy {
    pub addr: SocketAddr,
    mode: Arc<AtomicU8>,
    /// While set, the open connections stay open and forward nothing either way: a silent
    /// partition (what a dead link looks like before any timeout), not a cut.
    silent: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mode = Arc::new(AtomicU8::new(PASS));
        let silent = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let accept = {
            let (mode, conns, quiet) = (Arc::clone(&mode), Arc::clone(&conns), Arc::clone(&silent));
            tokio::spawn(async move {
                loop {
                    let Ok((client, _)) = listener.accept().await else {
                        return;
                    };
                    let task = match mode.load(Ordering::SeqCst) {
                        PASS => {
                            let quiet = Arc::clone(&quiet);
                            tokio::spawn(async move {
                                if let Ok(server) = TcpStream::connect(upstream).await {
                                    let (cr, cw) = client.into_split();
                                    let (sr, sw) = server.into_split();
                                    tokio::join!(
                                        pump(cr, sw, Arc::clone(&quiet)),
                                        pump(sr, cw, quiet)
                                    );
                                }
                            })
                        }
                        REFUSE => {
                            drop(client);
                            continue;
                        }
                        _ => tokio::spawn(async move {
                            // Hold the socket open and never answer.
                            let _keep = client;
                            std::future::pending::<()>().await;
                        }),
                    };
                    conns.lock().unwrap().push(task);
                }
            })
        };
        Self {
            addr,
            mode,
            silent,
            conns,
            accept,
        }
    }

    /// Silence every connection, open or to come, without closing any (see `silent`); `false`
    /// lets them speak again.
    pub fn silence(&self, silent: bool) {
        self.silent.store(silent, Ordering::SeqCst);
    }

    /// Switch mode and drop every open connection.
    pub fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
        for task in self.conns.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.set(REFUSE);
        self.accept.abort();
    }
}

/// Copy `from` to `to` until either side closes; while `quiet`, what is read is dropped.
async fn pump(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    quiet: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if quiet.load(Ordering::SeqCst) {
            continue;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// The `host:port` a store URL names, for the proxy to forward to.
pub fn upstream(url: &str, default_port: u16) -> SocketAddr {
    let rest = url.split("://").nth(1).unwrap_or("");
    let host = rest
        .rsplit('@')
        .next()
        .unwrap_or("")
        .split('/')
        .next()
        .unwrap_or("");
    let host = if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:{default_port}")
    };
    host.replace("localhost", "127.0.0.1").parse().unwrap()
}
