//! What a [`RedisStore`](super::RedisStore) talks over: one server (redis-rs's connection
//! manager) or a Redis Cluster (redis-rs's cluster connection, which follows the slots as they
//! move and fails over with the cluster), and the `redis+cluster://` URL that names a cluster.

use redis::{
    Cmd, Pipeline, RedisFuture, Value,
    aio::{ConnectionLike, ConnectionManager},
    cluster::ClusterClient,
    cluster_async::ClusterConnection,
    cluster_routing::{RoutingInfo, SingleNodeRoutingInfo},
};

use crate::error::ConfigError;

/// The scheme of a cluster URL.
pub(super) const CLUSTER_SCHEME: &str = "redis+cluster://";

/// What makes connections, as the store was built.
#[derive(Clone)]
pub(super) enum Connector {
    /// One server, from a `redis://` URL.
    Server(redis::Client),
    /// A cluster, from a `redis+cluster://` URL, with the node URLs it names.
    Cluster {
        client: Box<ClusterClient>,
        nodes: Vec<String>,
    },
    /// The app gave its own connection.
    Given,
}

/// A connection of either kind; cloning shares it.
#[derive(Clone)]
pub(super) enum Conn {
    Server(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Server(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Server(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Server(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

/// The node URLs a `redis+cluster://[user[:password]@]host:port[,host:port…][/]` URL names, each
/// as `redis://[user[:password]@]host:port`; the client learns the rest of the cluster from any
/// of them.
pub(super) fn cluster_nodes(url: &str) -> Result<Vec<String>, ConfigError> {
    let invalid = || ConfigError::Store("invalid Redis Cluster URL");
    let rest = url.strip_prefix(CLUSTER_SCHEME).ok_or_else(invalid)?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (credentials, hosts) = match rest.rsplit_once('@') {
        Some((c, h)) => (Some(c), h),
        None => (None, rest),
    };
    let nodes = hosts
        .split(',')
        .map(|host| {
            let (name, port) = host.rsplit_once(':').ok_or_else(invalid)?;
            if name.is_empty() || name.contains(['/', '?', '#']) || port.parse::<u16>().is_err() {
                return Err(invalid());
            }
            Ok(match credentials {
                Some(c) => format!("redis://{c}@{host}"),
                None => format!("redis://{host}"),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    for node in &nodes {
        redis::Client::open(node.as_str()).map_err(|_| invalid())?;
    }
    Ok(nodes)
}

/// A primary of the cluster: its address and the slots it serves.
pub(super) struct Primary {
    pub(super) address: (String, u16),
    pub(super) slots: Vec<(u16, u16)>,
}

/// The primaries of the cluster, as `CLUSTER NODES` lists them (failed ones left out).
pub(super) async fn primaries(conn: &mut ClusterConnection) -> redis::RedisResult<Vec<Primary>> {
    let text: String = redis::from_redis_value(
        conn.route_command(
            redis::cmd("CLUSTER").arg("NODES").clone(),
            RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random),
        )
        .await?,
    )?;
    Ok(text.lines().filter_map(primary).collect())
}

/// One line of `CLUSTER NODES`, when it is a live primary:
/// `id ip:port@cport[,hostname] flags master ping pong epoch link slot…`.
fn primary(line: &str) -> Option<Primary> {
    let fields: Vec<&str> = line.split(' ').collect();
    let flags: Vec<&str> = fields.get(2)?.split(',').collect();
    if !flags.contains(&"master") || flags.iter().any(|f| f.starts_with("fail")) {
        return None;
    }
    let address = fields.get(1)?.split(['@', ',']).next()?;
    let (host, port) = address.rsplit_once(':')?;
    let slots = fields
        .get(8..)
        .unwrap_or_default()
        .iter()
        // Single slots, ranges; `[slot->-node]` entries are migrations, not yet its own.
        .filter_map(|r| {
            let (lo, hi) = r.split_once('-').unwrap_or((r, r));
            Some((lo.parse().ok()?, hi.parse().ok()?))
        })
        .collect();
    Some(Primary {
        address: (host.to_owned(), port.parse().ok()?),
        slots,
    })
}

/// The hash slot of `key`, as Redis Cluster computes it: CRC16 (XMODEM) of the key's hash tag
/// (the part between the first `{` and the next `}`, when not empty) or of the whole key,
/// modulo 16384.
pub(super) fn key_slot(key: &[u8]) -> u16 {
    let tagged = key.iter().position(|&b| b == b'{').and_then(|open| {
        let rest = &key[open + 1..];
        let len = rest.iter().position(|&b| b == b'}')?;
        (len > 0).then(|| &rest[..len])
    });
    let mut crc: u16 = 0;
    for &byte in tagged.unwrap_or(key) {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % 16384
}

/// Run `cmd` on the node at `host:port`.
pub(super) async fn on_node<T: redis::FromRedisValue>(
    conn: &mut ClusterConnection,
    (host, port): &(String, u16),
    cmd: Cmd,
) -> redis::RedisResult<T> {
    let value = conn
        .route_command(
            cmd,
            RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                host: host.clone(),
                port: *port,
            }),
        )
        .await?;
    Ok(redis::from_redis_value(value)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_redis_clusters() {
        // What `CLUSTER KEYSLOT` answers for each.
        for (key, slot) in [
            ("foo", 12182),
            ("bar", 5061),
            ("{user1000}.following", 3443),
            ("tower-oauth2:{abc}invalidations", 7638),
            ("a{}b", 13694),
            ("{}x{y}", 2166),
        ] {
            assert_eq!(key_slot(key.as_bytes()), slot, "{key}");
        }
    }

    #[test]
    fn cluster_nodes_lines_give_live_primaries_and_their_slots() {
        let up = primary(
            "07c3 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460 5462 [5461->-e7d1]",
        )
        .unwrap();
        assert_eq!(up.address, ("127.0.0.1".to_owned(), 7000));
        assert_eq!(up.slots, [(0, 5460), (5462, 5462)]);
        assert!(primary("e7d1 127.0.0.1:7003@17003 slave 07c3 0 0 1 connected").is_none());
        assert!(primary("e7d1 127.0.0.1:7001@17001 master,fail - 0 0 2 disconnected").is_none());
    }

    #[test]
    fn cluster_urls_name_their_nodes() {
        assert_eq!(
            cluster_nodes("redis+cluster://127.0.0.1:7000,127.0.0.1:7001/").unwrap(),
            ["redis://127.0.0.1:7000", "redis://127.0.0.1:7001"]
        );
        assert_eq!(
            cluster_nodes("redis+cluster://app:s3cret@a.example:6379,b.example:6380").unwrap(),
            [
                "redis://app:s3cret@a.example:6379",
                "redis://app:s3cret@b.example:6380"
            ]
        );
        for bad in [
            "redis://127.0.0.1:7000",
            "redis+cluster://",
            "redis+cluster://127.0.0.1",
            "redis+cluster://127.0.0.1:x",
            "redis+cluster://127.0.0.1:7000,",
            "redis+cluster://127.0.0.1:7000/1",
        ] {
            assert!(cluster_nodes(bad).is_err(), "{bad}");
        }
    }
}
