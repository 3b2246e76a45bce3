//! The Lua scripts, each a file of its own under `lua/` with the shared prelude prepended. Every
//! atomic step of the store is one script, so it is one round trip and atomic inside Redis.

use redis::{Arg, Cmd, ErrorKind, FromRedisValue, RedisResult, ServerErrorKind, ToRedisArgs};

const PRELUDE: &str = include_str!("lua/prelude.lua");

/// A Lua script: its text, and its SHA-1, by which Redis knows it once it has seen it.
pub(super) struct Script {
    code: String,
    hash: String,
}

impl Script {
    fn new(code: String) -> Self {
        let hash = redis::Script::new(&code).get_hash().to_owned();
        Self { code, hash }
    }

    /// A call of this script on `keys`, to which [`Call::arg`] adds its arguments.
    pub(super) fn call<K: ToRedisArgs>(&self, keys: &[K]) -> Call<'_> {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(&self.hash).arg(keys.len());
        for key in keys {
            cmd.arg(key);
        }
        Call { script: self, cmd }
    }
}

/// One call of a [`Script`]: `EVALSHA` with its keys and arguments packed into one command as
/// they are added (redis-rs's `ScriptInvocation` keeps each argument in a buffer of its own and
/// copies them all into a command at every call; on the hot path that was measurable).
pub(super) struct Call<'a> {
    script: &'a Script,
    cmd: Cmd,
}

impl Call<'_> {
    /// Add an argument (`ARGV[n]`, in order).
    pub(super) fn arg<T: ToRedisArgs>(&mut self, arg: T) -> &mut Self {
        self.cmd.arg(arg);
        self
    }

    /// Run the call on `con`. A server that does not know the script yet (a restart, a
    /// `SCRIPT FLUSH`, a new cluster node) is sent the same call as `EVAL` with the script's
    /// text, which also makes it known for the next calls; routed like the first, by the key.
    pub(super) async fn invoke<T: FromRedisValue>(
        &self,
        con: &mut impl redis::aio::ConnectionLike,
    ) -> RedisResult<T> {
        match self.cmd.query_async(con).await {
            Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                let mut eval = redis::cmd("EVAL");
                eval.arg(&self.script.code);
                // Past EVALSHA's name and the script's hash: numkeys, keys, arguments.
                for arg in self.cmd.args_iter().skip(2) {
                    if let Arg::Simple(bytes) = arg {
                        eval.arg(bytes);
                    }
                }
                eval.query_async(con).await
            }
            other => other,
        }
    }
}

pub(super) struct Scripts {
    pub(super) create_grant: Script,
    pub(super) find_access: Script,
    pub(super) find_refresh: Script,
    pub(super) rotate: Script,
    pub(super) revoke_grant: Script,
    pub(super) revoke_set: Script,
    pub(super) revoke_access: Script,
    pub(super) redeem_code: Script,
    pub(super) purge: Script,
    pub(super) index: Script,
    /// Short-lived records: on their own key, without the prelude.
    pub(super) record_put: Script,
    pub(super) record_count: Script,
    pub(super) record_extend: Script,
}

impl Scripts {
    pub(super) fn new() -> Self {
        let with_prelude = |body: &str| Script::new(format!("{PRELUDE}\n{body}"));
        Self {
            create_grant: with_prelude(include_str!("lua/create_grant.lua")),
            find_access: with_prelude(include_str!("lua/find_access.lua")),
            find_refresh: with_prelude(include_str!("lua/find_refresh.lua")),
            rotate: with_prelude(include_str!("lua/rotate.lua")),
            revoke_grant: with_prelude(include_str!("lua/revoke_grant.lua")),
            revoke_set: with_prelude(include_str!("lua/revoke_set.lua")),
            revoke_access: with_prelude(include_str!("lua/revoke_access.lua")),
            redeem_code: with_prelude(include_str!("lua/redeem_code.lua")),
            purge: with_prelude(include_str!("lua/purge.lua")),
            index: with_prelude(include_str!("lua/index.lua")),
            record_put: Script::new(include_str!("lua/record_put.lua").to_owned()),
            record_count: Script::new(include_str!("lua/record_count.lua").to_owned()),
            record_extend: Script::new(include_str!("lua/record_extend.lua").to_owned()),
        }
    }
}
