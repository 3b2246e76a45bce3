//! The near-cache's announcement channel on Redis: a pub/sub connection of its own, subscribed
//! to `{prefix}invalidations`, which the revoking scripts `PUBLISH` to in their atomic step.
//! Redis pub/sub delivers to every connected subscriber, in order, and says nothing to one that
//! was disconnected — so a disconnection (the stream ends, or a heartbeat `PING` goes
//! unanswered) is reported as lost, and the cache stays bypassed until the subscription is back.

use std::{pin::Pin, sync::Weak, time::Duration};

use futures_core::Stream;

use crate::store::{Invalidation, InvalidationListener};

/// How often a silent channel is checked with a `PING`, and how long the answer may take.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// Waits between reconnection attempts: doubling from the first to the last.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(50), Duration::from_secs(2));

pub(super) fn spawn(
    client: redis::Client,
    channel: String,
    connect_timeout: Duration,
    listener: Weak<dyn InvalidationListener>,
) {
    tokio::spawn(async move {
        let mut backoff = BACKOFF.0;
        while listener.strong_count() > 0 {
            match subscribe(&client, &channel, connect_timeout).await {
                Ok((sink, stream)) => {
                    let Some(l) = listener.upgrade() else { return };
                    l.connected();
                    drop(l);
                    backoff = BACKOFF.0;
                    let why = pump(sink, stream, &listener).await;
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

type Channel = (redis::aio::PubSubSink, redis::aio::PubSubStream);

async fn subscribe(
    client: &redis::Client,
    channel: &str,
    timeout: Duration,
) -> Result<Channel, String> {
    let made = tokio::time::timeout(timeout, async {
        let (mut sink, stream) = client.get_async_pubsub().await?.split();
        // Resolves once Redis has confirmed the subscription.
        sink.subscribe(channel).await?;
        Ok::<_, redis::RedisError>((sink, stream))
    })
    .await;
    match made {
        Ok(Ok(channel)) => Ok(channel),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".into()),
    }
}

/// Deliver announcements until the connection fails; says why.
async fn pump(
    mut sink: redis::aio::PubSubSink,
    mut stream: redis::aio::PubSubStream,
    listener: &Weak<dyn InvalidationListener>,
) -> &'static str {
    loop {
        let next = std::future::poll_fn(|cx| Pin::new(&mut stream).poll_next(cx));
        match tokio::time::timeout(HEARTBEAT, next).await {
            Ok(Some(message)) => {
                let Some(l) = listener.upgrade() else {
                    return "the cache is gone";
                };
                let what = match std::str::from_utf8(message.get_payload_bytes()) {
                    Ok(text) => Invalidation::decode(text),
                    Err(_) => Invalidation::Everything,
                };
                l.invalidate(&what);
            }
            Ok(None) => return "the connection closed",
            Err(_) => {
                // Quiet for a while: make sure the connection is still there.
                let ping = tokio::time::timeout(HEARTBEAT, sink.ping::<redis::Value>()).await;
                if !matches!(ping, Ok(Ok(_))) {
                    return "a heartbeat went unanswered";
                }
            }
        }
    }
}
