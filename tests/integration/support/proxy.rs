//! A loopback TCP proxy between a test and a real Redis or PostgreSQL server, to cut, refuse or
//! swallow its connections.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU8, Ordering},
    },
};

use tokio::{
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
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mode = Arc::new(AtomicU8::new(PASS));
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let accept = {
            let (mode, conns) = (Arc::clone(&mode), Arc::clone(&conns));
            tokio::spawn(async move {
                loop {
                    let Ok((mut client, _)) = listener.accept().await else {
                        return;
                    };
                    let task = match mode.load(Ordering::SeqCst) {
                        PASS => tokio::spawn(async move {
                            if let Ok(mut server) = TcpStream::connect(upstream).await {
                                let _ =
                                    tokio::io::copy_bidirectional(&mut client, &mut server).await;
                            }
                        }),
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
            conns,
            accept,
        }
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
