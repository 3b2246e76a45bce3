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
    /// A cluster, from a `redis+cluster://` URL.
    Cluster(Box<ClusterClient>),
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

/// The primaries of the cluster, by address, as `CLUSTER NODES` lists them (failed ones left
/// out).
pub(super) async fn primaries(
    conn: &mut ClusterConnection,
) -> redis::RedisResult<Vec<(String, u16)>> {
    let text: String = redis::from_redis_value(
        conn.route_command(
            redis::cmd("CLUSTER").arg("NODES").clone(),
            RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random),
        )
        .await?,
    )?;
    Ok(text
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(' ');
            let (_, address, flags) = (fields.next()?, fields.next()?, fields.next()?);
            let flags: Vec<&str> = flags.split(',').collect();
            if !flags.contains(&"master") || flags.iter().any(|f| f.starts_with("fail")) {
                return None;
            }
            // ip:port@cport[,hostname]
            let address = address.split(['@', ',']).next()?;
            let (host, port) = address.rsplit_once(':')?;
            Some((host.to_owned(), port.parse().ok()?))
        })
        .collect())
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
