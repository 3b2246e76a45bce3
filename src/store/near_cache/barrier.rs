//! A revocation made here waits until every instance it knows of has applied it: its own
//! announcement's echo, or a barrier each instance confirms.

use std::{collections::HashSet, sync::atomic::Ordering};

use super::{BARRIER_WAIT, Barrier, ECHO_WAIT, NearCache, PEER_TTL, entries::route_of};
use crate::{store::Invalidation, token::Route};

impl NearCache {
    /// Before a revocation: be told when its announcement comes back through the channel.
    pub(super) fn expect_echo(
        &self,
        what: &Invalidation,
    ) -> Option<tokio::sync::oneshot::Receiver<()>> {
        if !self.shared.up.load(Ordering::Acquire) {
            return None;
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let mut echoes = self.shared.echoes.lock().unwrap_or_else(|e| e.into_inner());
        echoes.push((what.clone(), tx));
        Some(rx)
    }

    /// After a revocation: drop it here at once; then, when the store announced it
    /// (`announced`), make sure the other instances have applied it before returning. Each
    /// known instance confirms a barrier published after the revocation — announcements come
    /// in order, so a confirmation means the revocation was applied there (up to 100 ms; one
    /// that does not answer is forgotten until heard from again). With no other instance known,
    /// wait (up to 50 ms) for the announcement to come back here.
    pub(super) async fn revoked_here(
        &self,
        what: Invalidation,
        echo: Option<tokio::sync::oneshot::Receiver<()>>,
        announced: bool,
    ) {
        self.shared.apply(&what);
        let Some(echo) = echo else { return };
        if announced && !self.barrier(&what).await {
            let _ = tokio::time::timeout(ECHO_WAIT, echo).await;
        } else {
            drop(echo);
        }
        let mut echoes = self.shared.echoes.lock().unwrap_or_else(|e| e.into_inner());
        echoes.retain(|(_, tx)| !tx.is_closed());
    }

    /// Wait for every known instance to confirm a barrier published behind `what`'s
    /// announcement; `false` when none is known (or the barrier cannot be published). On a store
    /// with a channel per route the barrier goes on `what`'s route's channel, or, for what spans
    /// routes (a user's or a client's grants), on every lane: one per server.
    pub(super) async fn barrier(&self, what: &Invalidation) -> bool {
        let s = &self.shared;
        let waiting: HashSet<u64> = {
            let peers = s.peers.lock().unwrap_or_else(|e| e.into_inner());
            peers
                .iter()
                .filter(|(_, seen)| seen.elapsed() < PEER_TTL)
                .map(|(id, _)| *id)
                .collect()
        };
        if waiting.is_empty() {
            return false;
        }
        let Some(outbox) = s.outbox.lock().unwrap_or_else(|e| e.into_inner()).clone() else {
            return false;
        };
        let routes: Vec<Option<Route>> = match (route_of(what), outbox.lanes()) {
            (_, []) => vec![None],
            (Some(route), _) => vec![Some(route)],
            (None, lanes) => lanes.iter().copied().map(Some).collect(),
        };
        let mut numbers = Vec::with_capacity(routes.len());
        let mut done = Vec::with_capacity(routes.len());
        let mut published = true;
        for route in routes {
            let n = s.next_barrier.fetch_add(1, Ordering::Relaxed);
            let (tx, rx) = tokio::sync::oneshot::channel();
            s.barriers.lock().unwrap_or_else(|e| e.into_inner()).insert(
                n,
                Barrier {
                    waiting: waiting.clone(),
                    done: Some(tx),
                },
            );
            numbers.push(n);
            done.push(rx);
            published &= outbox.publish_on(route, format!("~m:{:x}:{n:x}", s.id));
        }
        if published {
            let deadline = tokio::time::Instant::now() + BARRIER_WAIT;
            for rx in done {
                let _ = tokio::time::timeout_at(deadline, rx).await;
            }
        }
        let silent: HashSet<u64> = {
            let mut barriers = s.barriers.lock().unwrap_or_else(|e| e.into_inner());
            numbers
                .iter()
                .filter_map(|n| barriers.remove(n))
                .flat_map(|b| b.waiting)
                .collect()
        };
        if !silent.is_empty() {
            tracing::warn!(
                instances = silent.len(),
                "near-cache: instances did not confirm a revocation in time; forgotten until heard from"
            );
            let mut peers = s.peers.lock().unwrap_or_else(|e| e.into_inner());
            for id in &silent {
                peers.remove(id);
            }
        }
        published
    }
}
