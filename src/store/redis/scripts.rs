//! The Lua scripts, each a file of its own under `lua/` with the shared prelude prepended. Every
//! atomic step of the store is one script, so it is one round trip and atomic inside Redis.

use redis::Script;

const PRELUDE: &str = include_str!("lua/prelude.lua");

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
}

impl Scripts {
    pub(super) fn new() -> Self {
        let with_prelude = |body: &str| Script::new(&format!("{PRELUDE}\n{body}"));
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
        }
    }
}
