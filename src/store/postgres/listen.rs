//! The near-cache's announcement channel on PostgreSQL: a connection of its own (not from the
//! pool, whose connections drop notifications), `LISTEN`ing on the schema's channel, which the
//! triggers of migration 4 notify from each revoking transaction. The connection is checked
//! with a heartbeat query; when it fails, or the schema predates the triggers, the channel is
//! reported lost (or never connected), and the cache stays bypassed.

use std::{sync::Weak, time::Duration};

use tokio_postgres::{AsyncMessage, NoTls};

use super::statements::ANNOUNCING_VERSION;
use crate::store::{InvalidationListener, Outbox};

const HEARTBEAT: Duration = Duration::from_secs(1);
const BACKOFF: (Duration, Duration) = (Duration::from_millis(50), Duration::from_secs(2));

pub(super) fn spawn(config: tokio_postgres::Config, listener: Weak<dyn InvalidationListener>) {
    crate::store::spawn_listener("tower-oauth2-pg-announcements", async move {
        let mut backoff = BACKOFF.0;
        while listener.strong_count() > 0 {
            match session(&config, &listener, &mut backoff).await {
                Ok(()) => return,
                Err(why) => {
                    tracing::warn!(reason = %why, "PostgreSQL invalidation channel down; reconnecting");
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(BACKOFF.1);
        }
    });
}

/// One connection's life: `Ok` when the cache is gone, `Err` with the reason it ended.
async fn session(
    config: &tokio_postgres::Config,
    listener: &Weak<dyn InvalidationListener>,
    backoff: &mut Duration,
) -> Result<(), String> {
    let (client, mut connection) = tokio::time::timeout(HEARTBEAT * 2, config.connect(NoTls))
        .await
        .map_err(|_| "connecting timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    // The connection delivers notifications as it is polled: announce each as it comes.
    let forward = listener.clone();
    let (ended, mut closed) = tokio::sync::oneshot::channel::<()>();
    let driver = tokio::spawn(async move {
        // Dropped when the connection ends, which tells `listen` at once.
        let _ended = ended;
        while let Some(message) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    let Some(l) = forward.upgrade() else { return };
                    l.message(n.payload());
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    let result = listen(&client, listener, backoff, &mut closed).await;
    driver.abort();
    if let Some(l) = listener.upgrade() {
        l.lost();
    }
    result
}

/// `call`, bounded by the heartbeat.
async fn within<T>(
    call: impl Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, String> {
    match tokio::time::timeout(HEARTBEAT, call).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".into()),
    }
}

async fn listen(
    client: &tokio_postgres::Client,
    listener: &Weak<dyn InvalidationListener>,
    backoff: &mut Duration,
    closed: &mut tokio::sync::oneshot::Receiver<()>,
) -> Result<(), String> {
    let row = within(client.query_one(
        "SELECT current_schema()::text, (SELECT coalesce(max(version), 0) FROM oauth_schema_version)",
        &[],
    ))
    .await?;
    let (schema, version): (String, i32) = (row.get(0), row.get(1));
    if version < ANNOUNCING_VERSION {
        return Err(format!(
            "schema version {version} does not announce revocations: run PostgresStore::migrate"
        ));
    }
    let channel: String = format!("oauth:{schema}").chars().take(63).collect();
    within(client.batch_execute(&format!("LISTEN \"{}\"", channel.replace('"', "\"\"")))).await?;
    let (outbox, mut outgoing) = Outbox::channel();
    let Some(l) = listener.upgrade() else {
        return Ok(());
    };
    l.connected(outbox);
    drop(l);
    *backoff = BACKOFF.0;
    let mut ticks = tokio::time::interval(HEARTBEAT);
    ticks.tick().await;
    loop {
        tokio::select! {
            biased;
            _ = &mut *closed => return Err("the connection closed".into()),
            Some(crate::store::Outgoing { text, .. }) = outgoing.recv() => {
                within(client.execute("SELECT pg_notify($1, $2)", &[&channel, &text])).await?;
            }
            _ = ticks.tick() => {
                let Some(l) = listener.upgrade() else {
                    return Ok(());
                };
                l.tick();
                drop(l);
                within(client.batch_execute("SELECT 1")).await?;
            }
        }
    }
}
