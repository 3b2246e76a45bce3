//! The near-cache's announcement channels on a Redis Cluster: sharded pub/sub. A revoking script
//! `SPUBLISH`es on its slot's own channel, `{prefix}{route}invalidations`, which only the shard
//! holding that slot serves; so the listener `SSUBSCRIBE`s to the channel of every route (4096,
//! spread over the nodes) on a RESP3 cluster connection of its own, and publishes what the
//! cache asks on the channel of the route it names — messages on one node reach a subscriber in
//! the order they were published there, which is what the cache's barriers rely on. The
//! outbox's lanes name one route per primary, for what spans them all.
//!
//! Sharded pub/sub says nothing to a subscriber that missed messages: a node connection that
//! drops (redis-rs reports it), a slot that moves away (the server unsubscribes us from its
//! channels), a heartbeat `PING` to a primary that goes unanswered, or a change in which
//! primaries serve which slots are each reported as lost, and the cache stays bypassed until
//! every channel is subscribed again.

use std::{sync::Weak, time::Duration};

use futures_util::future::join_all;
use redis::{
    PushInfo, PushKind, Value,
    cluster::ClusterClient,
    cluster_async::ClusterConnection,
    cluster_routing::{MultipleNodeRoutingInfo, ResponsePolicy, RoutingInfo},
};

use super::conn::{self, key_slot};
use crate::{
    store::{InvalidationListener, Outbox, Outgoing},
    token::Route,
};

/// How often the listener is ticked and the primaries checked with a `PING`, and how long an
/// answer may take.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// Heartbeats between checks that the primaries still serve the slots they did.
const TOPOLOGY_EVERY: u32 = 5;
/// Waits between resubscription attempts: doubling from the first to the last.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(50), Duration::from_secs(2));
/// Subscriptions in flight at once.
const SUBSCRIBE_BATCH: usize = 256;

type Pushes = tokio::sync::mpsc::UnboundedReceiver<PushInfo>;

fn channel(prefix: &str, route: Route) -> String {
    format!("{prefix}{{{route}}}invalidations")
}

pub(super) fn spawn(
    nodes: Vec<String>,
    prefix: String,
    connect_timeout: Duration,
    listener: Weak<dyn InvalidationListener>,
) {
    crate::store::spawn_listener("tower-oauth2-redis-cluster-announcements", async move {
        let (push_tx, mut pushes) = tokio::sync::mpsc::unbounded_channel();
        let client = ClusterClient::builder(nodes)
            .use_protocol(redis::ProtocolVersion::RESP3)
            .push_sender(push_tx)
            .connection_timeout(connect_timeout)
            // As long as a whole subscription attempt may take: a command answered late on a
            // loaded machine must not count as a dropped connection (redis-rs reconnects the
            // node and reports a disconnection, which restarts every subscription, and under
            // the same load the next attempt again). Dead primaries are still found within a
            // second: the heartbeat has its own bound.
            .response_timeout((connect_timeout * 10).max(HEARTBEAT))
            .retries(2)
            .build();
        let client = match client {
            Ok(c) => c,
            Err(e) => {
                // The store's own client was built from the same URL; the cache stays bypassed.
                tracing::error!(error = %e, "Redis Cluster invalidation channel: no client");
                return;
            }
        };
        let mut conn: Option<ClusterConnection> = None;
        let mut subscribed = Subscribed::none();
        let mut backoff = BACKOFF.0;
        while listener.strong_count() > 0 {
            let attempt = subscribe(
                &client,
                &mut conn,
                &prefix,
                connect_timeout,
                &mut pushes,
                &mut subscribed,
            );
            match attempt.await {
                Ok((c, lanes)) => {
                    let (outbox, outgoing) = Outbox::channel();
                    let Some(l) = listener.upgrade() else { return };
                    l.connected(outbox.with_lanes(lanes.clone()));
                    drop(l);
                    backoff = BACKOFF.0;
                    let why = pump(c, &mut pushes, outgoing, &prefix, &lanes, &listener).await;
                    // Whatever ended it may have dropped any subscription.
                    subscribed = Subscribed::none();
                    let Some(l) = listener.upgrade() else { return };
                    l.lost();
                    tracing::warn!(
                        reason = why,
                        "Redis Cluster invalidation channels down; resubscribing"
                    );
                }
                Err(e) => {
                    tracing::warn!(error = %e, "Redis Cluster invalidation channels: cannot subscribe");
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(BACKOFF.1);
        }
    });
}

/// Which routes' channels are known subscribed since the last time one may have been lost.
/// Kept across attempts, so that an attempt cut short by a timeout (a loaded machine, a slow
/// node) resumes where it stopped rather than starting over: starting over, an attempt that
/// needs longer than its bound never ends.
struct Subscribed {
    done: Vec<bool>,
    count: usize,
}

impl Subscribed {
    fn none() -> Self {
        Self {
            done: vec![false; usize::from(Route::COUNT)],
            count: 0,
        }
    }

    fn mark(&mut self, route: Route) {
        let done = &mut self.done[usize::from(route.get())];
        if !*done {
            *done = true;
            self.count += 1;
        }
    }

    fn missing(&self) -> Vec<Route> {
        Route::all()
            .filter(|r| !self.done[usize::from(r.get())])
            .collect()
    }
}

/// Subscribe to every route's channel not known subscribed (again after a loss: redis-rs
/// resubscribes by itself too, and a repeated subscription is harmless) and work out the
/// lanes. A node connection that dropped, or a slot that moved, before or during the attempt
/// means any subscription may be missing: everything is subscribed again, and such an event
/// during the attempt fails it. A timeout keeps what was confirmed.
async fn subscribe(
    client: &ClusterClient,
    conn: &mut Option<ClusterConnection>,
    prefix: &str,
    timeout: Duration,
    pushes: &mut Pushes,
    subscribed: &mut Subscribed,
) -> Result<(ClusterConnection, Vec<Route>), String> {
    // Messages queued before the attempt predate the cache's (empty) start.
    while let Ok(push) = pushes.try_recv() {
        if is_loss(&push) {
            *subscribed = Subscribed::none();
        }
    }
    let made = tokio::time::timeout(timeout * 10, async {
        let mut c = match conn {
            Some(c) => c.clone(),
            None => {
                let c = client.get_async_connection().await?;
                *conn = Some(c.clone());
                c
            }
        };
        for batch in subscribed.missing().chunks(SUBSCRIBE_BATCH) {
            let results = join_all(batch.iter().map(|&route| {
                let mut c = c.clone();
                async move { (route, c.ssubscribe(channel(prefix, route)).await) }
            }))
            .await;
            let mut failed = None;
            for (route, result) in results {
                match result {
                    Ok(()) => subscribed.mark(route),
                    Err(e) => failed = Some(e),
                }
            }
            if let Some(e) = failed {
                return Err(e);
            }
        }
        let lanes = lanes(&mut c, prefix).await?;
        Ok::<_, redis::RedisError>((c, lanes))
    })
    .await;
    let lost = std::iter::from_fn(|| pushes.try_recv().ok()).fold(None, |lost, push| {
        lost.or_else(|| is_loss(&push).then_some(push.kind))
    });
    if let Some(kind) = lost {
        *subscribed = Subscribed::none();
        return Err(format!("{kind:?} while subscribing"));
    }
    match made {
        Ok(Ok(made)) => Ok(made),
        Ok(Err(e)) => Err(format!(
            "{e} ({} of {} channels subscribed)",
            subscribed.count,
            Route::COUNT
        )),
        Err(_) => Err(format!(
            "timed out ({} of {} channels subscribed)",
            subscribed.count,
            Route::COUNT
        )),
    }
}

/// A push saying subscriptions may be gone: a node connection closed, or the server
/// unsubscribed us (the slot moved).
fn is_loss(push: &PushInfo) -> bool {
    matches!(push.kind, PushKind::Disconnection | PushKind::SUnsubscribe)
}

/// One route per live primary whose channel that primary serves.
async fn lanes(conn: &mut ClusterConnection, prefix: &str) -> redis::RedisResult<Vec<Route>> {
    let primaries = conn::primaries(conn).await?;
    let slots: Vec<(Route, u16)> = Route::all()
        .map(|r| (r, key_slot(channel(prefix, r).as_bytes())))
        .collect();
    let mut lanes: Vec<Route> = primaries
        .iter()
        .filter_map(|p| {
            slots
                .iter()
                .find(|(_, slot)| p.slots.iter().any(|(lo, hi)| (lo..=hi).contains(&slot)))
                .map(|(r, _)| *r)
        })
        .collect();
    lanes.sort();
    Ok(lanes)
}

/// Deliver messages and publish the cache's own until something may have been missed; says
/// why.
async fn pump(
    mut c: ClusterConnection,
    pushes: &mut Pushes,
    mut outgoing: tokio::sync::mpsc::UnboundedReceiver<Outgoing>,
    prefix: &str,
    lanes_then: &[Route],
    listener: &Weak<dyn InvalidationListener>,
) -> &'static str {
    let mut ticks = tokio::time::interval(HEARTBEAT);
    ticks.tick().await;
    let mut beats = 0u32;
    let anywhere = lanes_then.first().copied().or(Route::new(0));
    loop {
        tokio::select! {
            biased;
            push = pushes.recv() => {
                let Some(push) = push else { return "the connection closed" };
                match push.kind {
                    PushKind::SMessage => {
                        let Some(l) = listener.upgrade() else { return "the cache is gone" };
                        match push.data.last() {
                            Some(Value::BulkString(bytes)) => match std::str::from_utf8(bytes) {
                                Ok(text) => l.message(text),
                                // Not ours to read: drop everything, to be safe.
                                Err(_) => l.message("*"),
                            },
                            _ => l.message("*"),
                        }
                    }
                    PushKind::Disconnection => return "a node's connection closed",
                    // Server-side: the slot moved to another node.
                    PushKind::SUnsubscribe => return "a slot moved",
                    _ => {}
                }
            }
            Some(Outgoing { route, text }) = outgoing.recv() => {
                let Some(route) = route.or(anywhere) else { return "no route to publish on" };
                let sent = tokio::time::timeout(
                    HEARTBEAT,
                    redis::cmd("SPUBLISH")
                        .arg(channel(prefix, route))
                        .arg(text)
                        .query_async::<i64>(&mut c),
                )
                .await;
                if !matches!(sent, Ok(Ok(_))) {
                    return "a publish failed";
                }
            }
            _ = ticks.tick() => {
                let Some(l) = listener.upgrade() else { return "the cache is gone" };
                l.tick();
                drop(l);
                let ping = tokio::time::timeout(HEARTBEAT, async {
                    c.route_command(
                        redis::cmd("PING"),
                        RoutingInfo::MultiNode((
                            MultipleNodeRoutingInfo::AllMasters,
                            Some(ResponsePolicy::AllSucceeded),
                        )),
                    )
                    .await
                })
                .await;
                if !matches!(ping, Ok(Ok(_))) {
                    return "a heartbeat went unanswered";
                }
                beats += 1;
                if beats % TOPOLOGY_EVERY == 0 {
                    match tokio::time::timeout(HEARTBEAT, lanes(&mut c, prefix)).await {
                        Ok(Ok(now)) if now == lanes_then => {}
                        Ok(Ok(_)) => return "the primaries serve other slots now",
                        _ => return "the cluster's topology could not be read",
                    }
                }
            }
        }
    }
}
