//! Revocation announcements: how a shared store tells every instance's near-cache what was
//! revoked (the [`Announcements`] concern), and the messages on its channel.

use std::sync::Arc;

use crate::token::{GrantId, Route, TokenHash};

/// What a revocation made invalid, as a shared store announces it to every instance, so that a
/// [`NearCache`](super::NearCache) drops what it holds of it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Invalidation {
    /// One access token (revoked alone, or replaced at a refresh).
    AccessToken(TokenHash),
    /// Every token of a grant (a family revocation, a replay).
    Grant(GrantId),
    /// Every grant of a resource owner.
    Subject(String),
    /// Every grant of a client.
    Client(String),
    /// Anything: the announcement could not say what.
    Everything,
}

impl Invalidation {
    /// The announcement's wire form, shared by the stores: `a:{hash}`, `g:{grant}`,
    /// `s:{subject}`, `k:{client}`, `*`.
    pub fn encode(&self) -> String {
        match self {
            Self::AccessToken(h) => format!("a:{}", h.to_hex()),
            Self::Grant(g) => format!("g:{g}"),
            Self::Subject(s) => format!("s:{s}"),
            Self::Client(c) => format!("k:{c}"),
            Self::Everything => "*".into(),
        }
    }

    /// Read the wire form back. Anything not understood is [`Everything`](Self::Everything):
    /// dropping too much is safe, too little is not.
    pub fn decode(message: &str) -> Self {
        let parsed = match message.split_once(':') {
            Some(("a", h)) => TokenHash::parse_hex(h).map(Self::AccessToken),
            Some(("g", g)) => GrantId::parse_hex(g).map(Self::Grant),
            Some(("s", s)) => Some(Self::Subject(s.to_owned())),
            Some(("k", c)) => Some(Self::Client(c.to_owned())),
            _ => None,
        };
        parsed.unwrap_or(Self::Everything)
    }
}

/// Receives what a shared store's announcement channel carries, from the store's listener
/// ([`Announcements::listen`]): revocations, and the messages listeners exchange among themselves
/// through the [`Outbox`]. Each call is quick and never blocks on I/O.
pub trait InvalidationListener: Send + Sync + 'static {
    /// The channel is up: every revocation from now on will be announced. Announcements made
    /// while it was down were missed. `outbox` publishes on the channel, to every listener
    /// (this one included), in order after everything announced before.
    fn connected(&self, outbox: Outbox);
    /// The channel is down (or its state unknown): announcements may be missed until
    /// [`connected`](Self::connected) is called again.
    fn lost(&self);
    /// One message, in the order the channel delivered them: a revocation (in
    /// [`Invalidation::encode`]'s form) or a message some listener published.
    fn message(&self, text: &str);
    /// Called about once a second while the channel is up.
    fn tick(&self) {}
}

/// Publishes on a store's announcement channel (a pub/sub `PUBLISH`, a `pg_notify`): what a
/// store's listener hands to [`InvalidationListener::connected`]. The store's listener sends
/// what it receives here, in order. Cheap to clone.
///
/// A store with one channel per [`Route`](Route) (a Redis Cluster's sharded
/// channels, each served by the node that holds its route's keys) delivers in order per channel
/// only; a message about a route then goes on that route's channel
/// ([`publish_on`](Self::publish_on)), and the [`lanes`](Self::lanes) name one route per node,
/// which between them reach every channel's server.
#[derive(Clone, Debug)]
pub struct Outbox {
    tx: tokio::sync::mpsc::UnboundedSender<Outgoing>,
    lanes: Arc<[Route]>,
}

/// A message queued on an [`Outbox`], with the route whose channel it must travel on (`None`:
/// any).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// Where it goes, on a store with a channel per route.
    pub route: Option<Route>,
    /// The message.
    pub text: String,
}

impl Outbox {
    /// An outbox on one channel and the receiver a store's listener sends from.
    pub fn channel() -> (Self, tokio::sync::mpsc::UnboundedReceiver<Outgoing>) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        (
            Self {
                tx,
                lanes: Arc::from([]),
            },
            rx,
        )
    }

    /// The same outbox over channels per route, `lanes` naming one route per server.
    #[must_use]
    pub fn with_lanes(mut self, lanes: Vec<Route>) -> Self {
        self.lanes = Arc::from(lanes);
        self
    }

    /// One route per server of a store with channels per route; empty for one channel.
    pub fn lanes(&self) -> &[Route] {
        &self.lanes
    }

    /// Queue `message` for the channel (any, on a store with several); `false` once the
    /// store's listener has let go (the channel is down).
    pub fn publish(&self, message: String) -> bool {
        self.send(None, message)
    }

    /// Queue `message` for `route`'s channel, behind everything announced there so far.
    pub fn publish_on(&self, route: Option<Route>, message: String) -> bool {
        self.send(route, message)
    }

    fn send(&self, route: Option<Route>, text: String) -> bool {
        self.tx.send(Outgoing { route, text }).is_ok()
    }
}

/// A store's announcement channel: whether it announces every revocation, and how a listener
/// hears them. Both have defaults (announces nothing), so a store without a channel implements
/// it with an empty `impl`.
pub trait Announcements: Send + Sync + 'static {
    /// Whether this store announces every revocation, by any instance, to [`listen`]ers — in the
    /// same atomic step as the revocation itself. Only then may a
    /// [`NearCache`](super::NearCache) stand in front of it. `false` by default.
    ///
    /// [`listen`]: Self::listen
    fn announces_revocations(&self) -> bool {
        false
    }

    /// Deliver revocation announcements to `listener` for as long as it lives (a task of the
    /// store's own, holding a connection apart from the pool). Called once, inside a Tokio
    /// runtime, and only when [`announces_revocations`](Self::announces_revocations) is `true`.
    fn listen(&self, _listener: std::sync::Weak<dyn InvalidationListener>) {}
}
