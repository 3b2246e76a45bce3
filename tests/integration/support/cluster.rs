//! A Redis Cluster of the test's own — six `redis-server` processes (three primaries, one
//! replica each) on consecutive ports — for tests that kill nodes, which the shared cluster of
//! `.ci/redis-cluster.sh` must not suffer. Dropping it stops every node.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

pub struct LocalCluster {
    pub ports: Vec<u16>,
    nodes: Vec<Option<Child>>,
    dir: PathBuf,
}

fn cli(port: u16, args: &[&str]) -> std::io::Result<String> {
    let out = Command::new("redis-cli")
        .arg("-p")
        .arg(port.to_string())
        .args(args)
        .stderr(Stdio::null())
        .output()?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl LocalCluster {
    /// Start six nodes on `base..base + 6` and join them; `Err` says why when `redis-server`
    /// or `redis-cli` is missing or the cluster does not form.
    pub fn start(base: u16) -> Result<Self, String> {
        let ports: Vec<u16> = (base..base + 6).collect();
        let dir = std::env::temp_dir().join(format!("tower-oauth2-cluster-{base}"));
        for &p in &ports {
            // Whatever an earlier, interrupted run left there.
            let _ = cli(p, &["shutdown", "nosave"]);
        }
        let _ = std::fs::remove_dir_all(&dir);
        let mut cluster = Self {
            ports: ports.clone(),
            nodes: Vec::new(),
            dir: dir.clone(),
        };
        for &p in &ports {
            let node_dir = dir.join(p.to_string());
            std::fs::create_dir_all(&node_dir).map_err(|e| e.to_string())?;
            let child = Command::new("redis-server")
                .args(["--bind", "127.0.0.1", "--port", &p.to_string()])
                .args(["--cluster-enabled", "yes", "--cluster-node-timeout", "1000"])
                .args(["--save", "", "--appendonly", "no"])
                // Replicas sync at once, so one can take over from the first second.
                .args(["--repl-diskless-sync-delay", "0"])
                .arg("--dir")
                .arg(&node_dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("redis-server: {e}"))?;
            cluster.nodes.push(Some(child));
        }
        for &p in &ports {
            wait(Duration::from_secs(5), || {
                cli(p, &["ping"]).is_ok_and(|o| o.trim() == "PONG")
            })
            .ok_or(format!("node {p} did not start"))?;
        }
        let hosts: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&hosts)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| format!("redis-cli: {e}"))?;
        if !created.success() {
            return Err("redis-cli --cluster create failed".into());
        }
        cluster.wait_healthy(Duration::from_secs(20))?;
        // A replica that never synced does not stand for election: wait for every primary's.
        wait(Duration::from_secs(20), || {
            ports.iter().all(|&p| {
                cli(p, &["info", "replication"]).is_ok_and(|i| {
                    i.contains("role:slave") && i.contains("master_link_status:up")
                        || i.contains("role:master") && i.contains("state=online")
                })
            })
        })
        .ok_or("the replicas did not sync")?;
        Ok(cluster)
    }

    /// Its URL, naming every node.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        format!("redis+cluster://{}", hosts.join(","))
    }

    /// Wait until every slot is served and every node agrees.
    pub fn wait_healthy(&self, within: Duration) -> Result<(), String> {
        wait(within, || {
            self.live_ports()
                .all(|p| cli(p, &["cluster", "info"]).is_ok_and(|i| i.contains("cluster_state:ok")))
        })
        .ok_or_else(|| "the cluster did not become healthy".into())
    }

    fn live_ports(&self) -> impl Iterator<Item = u16> + '_ {
        self.ports
            .iter()
            .zip(&self.nodes)
            .filter(|(_, n)| n.is_some())
            .map(|(p, _)| *p)
    }

    /// The port of the primary that serves `key`'s slot.
    pub fn primary_of(&self, key: &str) -> u16 {
        let port = self.live_ports().next().expect("a live node");
        let slot: u16 = cli(port, &["cluster", "keyslot", key])
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let nodes = cli(port, &["cluster", "nodes"]).unwrap();
        for line in nodes.lines() {
            let f: Vec<&str> = line.split(' ').collect();
            if !f[2].contains("master") || f[2].contains("fail") {
                continue;
            }
            for range in &f[8..] {
                let (lo, hi) = range.split_once('-').unwrap_or((range, range));
                if let (Ok(lo), Ok(hi)) = (lo.parse::<u16>(), hi.parse::<u16>())
                    && (lo..=hi).contains(&slot)
                {
                    let address = f[1].split('@').next().unwrap();
                    return address.rsplit_once(':').unwrap().1.parse().unwrap();
                }
            }
        }
        panic!("no primary serves slot {slot}");
    }

    /// Kill the node on `port` outright (SIGKILL: no goodbye to the cluster).
    /// Wait until every replica of the primary on `port` has what it wrote so far (their
    /// acknowledged offsets reach its own): a kill then loses nothing. Replication is
    /// asynchronous, so without this a write made just before the kill may be gone after the
    /// failover — a lost write, which no store can prevent.
    pub fn wait_replicated(&self, port: u16, within: Duration) -> Result<(), String> {
        wait(within, || {
            let Ok(info) = cli(port, &["info", "replication"]) else {
                return false;
            };
            let field = |line: &str, name: &str| {
                line.split([',', ':'])
                    .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                    .and_then(|v| v.trim().parse::<u64>().ok())
            };
            let primary = info
                .lines()
                .find_map(|l| l.strip_prefix("master_repl_offset:"))
                .and_then(|v| v.trim().parse::<u64>().ok());
            let replicas: Vec<u64> = info
                .lines()
                .filter(|l| l.starts_with("slave"))
                .filter_map(|l| field(l, "offset"))
                .collect();
            primary.is_some_and(|p| !replicas.is_empty() && replicas.iter().all(|r| *r >= p))
        })
        .ok_or_else(|| format!("the replicas of {port} did not catch up"))
    }

    pub fn kill(&mut self, port: u16) {
        let i = self.ports.iter().position(|p| *p == port).expect("a node");
        if let Some(mut child) = self.nodes[i].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The role (`master` or `slave`) the node on `port` reports.
    pub fn role(&self, port: u16) -> String {
        cli(port, &["role"])
            .unwrap_or_default()
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned()
    }
}

fn wait(within: Duration, mut ok: impl FnMut() -> bool) -> Option<()> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if ok() {
            return Some(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for child in self.nodes.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
