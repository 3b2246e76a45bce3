//! Resident memory: 1 M live grants (one access and one refresh token each), and a sustained
//! issue-and-expire churn that must stay flat once the sweep runs. Then the sweep's cost to
//! readers: token lookups timed on one thread while another sweeps the 1 M grants, beside the
//! same lookups with no sweep.
//!
//! `cargo bench --bench memory` (Linux: reads VmRSS from /proc/self/status).

use std::sync::Arc;

use tower_oauth2::{
    GrantType, Scope,
    store::{GrantRecord, MemoryStore, NewAccessToken, NewRefreshToken, StoreCounts, prelude::*},
    token::{self, GrantId, TokenHash},
};

fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    loop {
        if let std::task::Poll::Ready(v) = f
            .as_mut()
            .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
        {
            return v;
        }
    }
}

fn insert(
    store: &MemoryStore,
    client: &Arc<str>,
    scope: &Scope,
    i: usize,
    now: u64,
    lifetime: u64,
    refresh: bool,
) -> String {
    let (at, rt) = (token::generate(), token::generate());
    let g = GrantRecord {
        id: GrantId::generate(),
        client_id: Arc::clone(client),
        subject: Some(Arc::from(format!("user-{i}"))),
        scope: scope.clone(),
        resources: Default::default(),
        grant_type: GrantType::Password,
        created_at: now,
        expires_at: Some(now + 90 * 86_400),
    };
    let a = NewAccessToken {
        hash: at.hash(),
        scope: scope.clone(),
        audience: Default::default(),
        issued_at: now,
        expires_at: now + lifetime,
    };
    let r = refresh.then(|| NewRefreshToken {
        hash: rt.hash(),
        issued_at: now,
        expires_at: now + lifetime,
        generation: 0,
    });
    block_on(store.create_grant(g, a, r)).unwrap();
    at.expose().to_owned()
}

/// Lookup latencies in nanoseconds, sorted: `probes` looked up in turn for `secs` seconds, with
/// another thread sweeping the store the whole time when `sweeping`. Also the sweeps' durations.
fn lookups(
    store: &MemoryStore,
    probes: &[String],
    secs: u64,
    sweeping: bool,
) -> (Vec<u64>, Vec<u64>) {
    use std::{
        sync::atomic::{AtomicBool, Ordering},
        time::{Duration, Instant},
    };
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let sweeper = sweeping.then(|| {
            scope.spawn(|| {
                let mut took = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    // Nothing has expired: every entry is visited and kept, the longest sweep.
                    block_on(store.purge_expired(1_800_000_000)).unwrap();
                    took.push(u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX));
                }
                took
            })
        });
        let end = Instant::now() + Duration::from_secs(secs);
        let mut latencies = Vec::new();
        'outer: loop {
            for p in probes {
                let t = Instant::now();
                let found = block_on(store.find_access_token(&TokenHash::of(p))).unwrap();
                latencies.push(u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX));
                assert!(found.is_some());
                if latencies.len() % 1024 == 0 && Instant::now() >= end {
                    break 'outer;
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
        latencies.sort_unstable();
        let sweeps = sweeper.map(|s| s.join().unwrap()).unwrap_or_default();
        (latencies, sweeps)
    })
}

fn quantile(sorted: &[u64], q: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` / `cargo bench -- --list` compatibility
    }
    let client: Arc<str> = Arc::from("bench");
    let scope = Scope::parse("read write").unwrap();
    let now = 1_800_000_000;

    // Churn: every minute of store time, 100 000 new grants whose tokens live one minute.
    let start = rss_mb();
    let store = MemoryStore::new();
    let mut readings = Vec::new();
    for round in 0..12u64 {
        let t = now + round * 60;
        for i in 0..100_000 {
            insert(&store, &client, &scope, i, t, 60, false);
        }
        readings.push((round, rss_mb(), store.counts().access_tokens));
    }
    println!(
        "churn (100k grants per minute, 60 s tokens): round, resident MB, live access entries"
    );
    for (round, mb, live) in &readings {
        println!("  {round:>2} {mb:>8.0} {live:>8}");
    }
    let tail: Vec<f64> = readings[4..].iter().map(|r| r.1).collect();
    let (lo, hi) = tail
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
    println!(
        "churn: resident memory over rounds 4..12 between {lo:.0} and {hi:.0} MB (process started at {start:.0} MB)"
    );
    drop(store);

    let before = rss_mb();
    let store = MemoryStore::new();
    let mut probes = Vec::new();
    for i in 0..1_000_000 {
        let at = insert(&store, &client, &scope, i, now, 3600, true);
        if i % 97 == 0 {
            probes.push(at);
        }
    }
    let after = rss_mb();
    let StoreCounts {
        grants,
        access_tokens,
        refresh_tokens,
        ..
    } = store.counts();
    println!(
        "1M live grants: {:.0} MB resident ({:.0} bytes per grant; {grants} grants, {access_tokens} access, {refresh_tokens} refresh tokens)",
        after - before,
        (after - before) * 1024.0 * 1024.0 / 1e6
    );

    // The sweep's cost to readers, side by side in one run, quiet first.
    println!(
        "lookups of live tokens among 1M grants, microseconds (p50 / p99 / p99.9 / max), and how many took over 1 ms:"
    );
    for sweeping in [false, true, false, true] {
        let (lat, sweeps) = lookups(&store, &probes, 3, sweeping);
        let row = [0.5, 0.99, 0.999, 1.0].map(|q| quantile(&lat, q));
        let label = if sweeping {
            "during sweeps"
        } else {
            "no sweep"
        };
        let sweep_ms = if sweeps.is_empty() {
            String::new()
        } else {
            let mean = sweeps.iter().sum::<u64>() as f64 / sweeps.len() as f64 / 1e6;
            format!(", {} sweeps of {mean:.0} ms each", sweeps.len())
        };
        let over_1ms = lat.iter().filter(|&&ns| ns > 1_000_000).count();
        println!(
            "  {label:>13}: {:.2} / {:.2} / {:.2} / {:.0}, {over_1ms} over 1 ms ({} lookups{sweep_ms})",
            row[0],
            row[1],
            row[2],
            row[3],
            lat.len()
        );
    }
}
