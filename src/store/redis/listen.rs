//! The near-cache's announcement channel on Redis: a pub/sub connection of its own, subscribed
//! to `{prefix}invalidations`, which the revoking scripts `PUBLISH` to in their atomic step, and
//! a second connection for what the listener publishes itself (a subscribed connection cannot).
//! Redis pub/sub delivers to every connected subscriber, in order, and says nothing to one that
//! was disconnected — so a disconnection (the stream ends, or a heartbeat `PING` goes
//! unanswered) is reported as lost, and the cache stays bypassed until the subscription is back.

use std::{pin::Pin, sync::Weak, time::Duration};

use futures_core::Stream;

use crate::store::{InvalidationListener, Outbox};

/// How often the listener is ticked and a silent channel checked with a `PING`, and how long
/// the answer may take.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// Waits between reconnection attempts: doubling from the first to the last.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(50), Duration::from_secs(2));

pub(super) fn spawn(
    client: redis::Client,
    channel: String,
    connect_timeout: Duration,
    listener: Weak<dyn InvalidationListener>,
) {
    crate::store::spawn_listener("tower-oauth2-redis-announcements", async move {
        let mut backoff = BACKOFF.0;
        while listener.strong_count() > 0 {
            match subscribe(&client, &channel, connect_timeout).await {
                Ok(connections) => {
                    let (outbox, outgoing) = Outbox::channel();
                    let Some(l) = listener.upgrade() else { return };
                    l.connected(outbox);
                    drop(l);
                    backoff = BACKOFF.0;
                    let why = pump(connections, outgoing, &channel, &listener).await;
                    let Some(l) = listener.upgrade() else { return };
                    l.lost();
                    tracing::warn!(
                        reason = why,
                        "Redis invalidation channel down; reconnecting"
                    );
                }
                Err(e) => {
                    tracing::warn!(error = %e, "Redis invalidation channel: cannot subscribe");
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(BACKOFF.1);
        }
    });
}

struct Connections {
    sink: redis::aio::PubSubSink,
    stream: redis::aio::PubSubStream,
    publisher: redis::aio::MultiplexedConnection,
}

async fn subscribe(
    client: &redis::Client,
    channel: &str,
    timeout: Duration,
) -> Result<Connections, String> {
    let made = tokio::time::timeout(timeout, async {
        let (mut sink, stream) = client.get_async_pubsub().await?.split();
        // Resolves once Redis has confirmed the subscription.
        sink.subscribe(channel).await?;
        let publisher = client.get_multiplexed_async_connection().await?;
        Ok::<_, redis::RedisError>(Connections {
            sink,
            stream,
            publisher,
        })
    })
    .await;
    match made {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".into()),
    }
}

/// Deliver messages and publish the listener's own until a connection fails; says why.
async fn pump(
    mut c: Connections,
    mut outgoing: tokio::sync::mpsc::UnboundedReceiver<crate::store::Outgoing>,
    channel: &str,
    listener: &Weak<dyn InvalidationListener>,
) -> &'static str {
    let mut ticks = tokio::time::interval(HEARTBEAT);
    ticks.tick().await;
    let mut quiet = true;
    loop {
        let next = std::future::poll_fn(|cx| Pin::new(&mut c.stream).poll_next(cx));
        tokio::select! {
            biased;
            message = next => {
                let Some(message) = message else {
                    return "the connection closed";
                };
                let Some(l) = listener.upgrade() else {
                    return "the cache is gone";
                };
                quiet = false;
                match std::str::from_utf8(message.get_payload_bytes()) {
                    Ok(text) => l.message(text),
                    // Not ours to read: drop everything, to be safe.
                    Err(_) => l.message("*"),
                }
            }
            Some(crate::store::Outgoing { text, .. }) = outgoing.recv() => {
                let sent = tokio::time::timeout(
                    HEARTBEAT,
                    redis::cmd("PUBLISH").arg(channel).arg(text).query_async::<i64>(&mut c.publisher),
                )
                .await;
                if !matches!(sent, Ok(Ok(_))) {
                    return "a publish failed";
                }
            }
            _ = ticks.tick() => {
                let Some(l) = listener.upgrade() else {
                    return "the cache is gone";
                };
                l.tick();
                drop(l);
                if quiet {
                    // Nothing heard for a while: make sure the connection is still there.
                    let ping = tokio::time::timeout(HEARTBEAT, c.sink.ping::<redis::Value>()).await;
                    if !matches!(ping, Ok(Ok(_))) {
                        return "a heartbeat went unanswered";
                    }
                }
                quiet = true;
            }
        }
    }
}
