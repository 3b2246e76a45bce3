//! The cache as the store's listener: the channel coming up and going down, the announcements
//! it delivers, and the messages instances exchange on it (greetings, barriers).

use std::sync::atomic::Ordering;

use super::{PEER_TTL, Shared, entries::echoes_back};
use crate::store::{Invalidation, InvalidationListener, Outbox};

impl Shared {
    pub(super) fn publish(&self, message: String) -> bool {
        let outbox = self.outbox.lock().unwrap_or_else(|e| e.into_inner());
        outbox.as_ref().is_some_and(|o| o.publish(message))
    }

    /// Note that `peer` spoke; whether it was unknown until now.
    pub(super) fn heard_from(&self, peer: u64) -> bool {
        if peer == self.id {
            return false;
        }
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        peers.insert(peer, std::time::Instant::now()).is_none()
    }

    /// A hello from `peer`: a newcomer learns of this instance at once, not at its next hello.
    pub(super) fn greeted_by(&self, peer: u64) {
        if self.heard_from(peer) {
            self.publish(format!("~hi:{:x}", self.id));
        }
    }

    /// The instances' own messages, after the `~`: `hi:{id}` (every second), `m:{id}:{n}` (a
    /// barrier after revocation `n` of instance `id`), `ack:{id}:{n}:{from}` (instance `from`
    /// has applied everything up to that barrier). Ids are hex.
    pub(super) fn control(&self, message: &str) {
        let mut parts = message.split(':');
        let kind = parts.next();
        let mut id = || parts.next().and_then(|p| u64::from_str_radix(p, 16).ok());
        match (kind, id(), id(), id()) {
            (Some("hi"), Some(peer), None, None) => self.greeted_by(peer),
            (Some("m"), Some(origin), Some(n), None) if origin != self.id => {
                self.heard_from(origin);
                // Every announcement before the barrier has been applied: messages come in order.
                self.publish(format!("~ack:{origin:x}:{n:x}:{:x}", self.id));
            }
            (Some("ack"), Some(origin), Some(n), Some(from)) if origin == self.id => {
                self.heard_from(from);
                let mut barriers = self.barriers.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(b) = barriers.get_mut(&n) {
                    b.waiting.remove(&from);
                    if b.waiting.is_empty() {
                        if let Some(done) = b.done.take() {
                            let _ = done.send(());
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

impl InvalidationListener for Shared {
    fn connected(&self, outbox: Outbox) {
        let mut index = self.lock();
        // Whatever was missed while down: start empty.
        self.flush(&mut index);
        *self.outbox.lock().unwrap_or_else(|e| e.into_inner()) = Some(outbox);
        self.up.store(true, Ordering::Release);
        drop(index);
        self.publish(format!("~hi:{:x}", self.id));
        tracing::info!("near-cache: revocation announcements connected; cache in use");
    }

    fn lost(&self) {
        self.up.store(false, Ordering::Release);
        *self.outbox.lock().unwrap_or_else(|e| e.into_inner()) = None;
        let mut index = self.lock();
        self.flush(&mut index);
        tracing::warn!("near-cache: revocation announcements lost; bypassing the cache");
    }

    fn message(&self, text: &str) {
        if let Some(control) = text.strip_prefix('~') {
            self.control(control);
            return;
        }
        let what = Invalidation::decode(text);
        self.apply(&what);
        let mut echoes = self.echoes.lock().unwrap_or_else(|e| e.into_inner());
        // A dropped sender wakes its waiter: dropping the matched ones is the signal.
        echoes.retain(|(waiting, _)| !echoes_back(waiting, &what));
    }

    fn tick(&self) {
        self.publish(format!("~hi:{:x}", self.id));
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        peers.retain(|_, seen| seen.elapsed() < PEER_TTL);
    }
}
