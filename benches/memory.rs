//! Resident memory: 1 M live grants (one access and one refresh token each), and a sustained
//! issue-and-expire churn that must stay flat once the sweep runs.
//!
//! `cargo bench --bench memory` (Linux: reads VmRSS from /proc/self/status).

use std::sync::Arc;

use tower_oauth2::{
    GrantType, Scope,
    store::{GrantRecord, MemoryStore, NewAccessToken, NewRefreshToken, StoreCounts, TokenStore},
    token::{self, GrantId},
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
) {
    let (at, rt) = (token::generate(), token::generate());
    let g = GrantRecord {
        id: GrantId::generate(),
        client_id: Arc::clone(client),
        subject: Some(Arc::from(format!("user-{i}"))),
        scope: scope.clone(),
        grant_type: GrantType::Password,
        created_at: now,
        expires_at: Some(now + 90 * 86_400),
    };
    let a = NewAccessToken {
        hash: at.hash(),
        scope: scope.clone(),
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
    for i in 0..1_000_000 {
        insert(&store, &client, &scope, i, now, 3600, true);
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
}
