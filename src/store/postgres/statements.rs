//! The SQL, each statement a file under `sql/` (the schema under `migrations/`), composed once
//! when the store is built: shared fragments are spliced in where a file names them in a
//! `/* … */` comment.

/// The schema, one file per version; applied in order by `PostgresStore::migrate`.
pub(super) const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_init.sql"),
    include_str!("migrations/0002_sealed_until.sql"),
    include_str!("migrations/0003_pending.sql"),
    include_str!("migrations/0004_announce.sql"),
    include_str!("migrations/0005_records.sql"),
    include_str!("migrations/0006_resources.sql"),
];

/// The schema version whose triggers announce revocations.
pub(super) const ANNOUNCING_VERSION: i32 = 4;

pub(super) const FIND_CODE: &str = include_str!("sql/find_code.sql");
pub(super) const CREATE_CODE: &str = include_str!("sql/create_code.sql");
pub(super) const ROTATE: &str = include_str!("sql/rotate.sql");
pub(super) const LOCK_REFRESH: &str = include_str!("sql/lock_refresh.sql");
pub(super) const REVOKE_ACCESS: &str = include_str!("sql/revoke_access.sql");
pub(super) const REVOKE_GRANT: &str = include_str!("sql/revoke_grant.sql");
pub(super) const CLEAR_SEALED: &str = include_str!("sql/clear_sealed.sql");
pub(super) const RECORD_PUT: &str = include_str!("sql/record_put.sql");
pub(super) const RECORD_REPLACE: &str = include_str!("sql/record_replace.sql");
pub(super) const RECORD_EXTEND: &str = include_str!("sql/record_extend.sql");
pub(super) const RECORD_GET: &str = include_str!("sql/record_get.sql");
pub(super) const RECORD_TAKE: &str = include_str!("sql/record_take.sql");
pub(super) const RECORD_DELETE: &str =
    "WITH d AS (DELETE FROM oauth_records WHERE key = $1 RETURNING 1) SELECT count(*) FROM d";
pub(super) const RECORD_COUNT: &str = include_str!("sql/record_count.sql");

/// Which cutoff a purge statement compares against.
#[derive(Clone, Copy)]
pub(super) enum Cutoff {
    /// The time of the purge.
    Now,
    /// The time of the purge less the code retention.
    CodeRetention,
}

/// What the purge deletes: (table, key, the rows that may go as of `$1`, cutoff).
const PURGES: &[(&str, &str, &str, Cutoff)] = &[
    (
        "oauth_access_tokens",
        "hash",
        "SELECT hash FROM oauth_access_tokens WHERE expires_at <= $1",
        Cutoff::Now,
    ),
    (
        "oauth_access_tokens",
        "hash",
        "SELECT a.hash FROM oauth_access_tokens a JOIN oauth_grants g ON g.id = a.grant_id
         WHERE g.revoked OR g.expires_at <= $1",
        Cutoff::Now,
    ),
    (
        "oauth_refresh_tokens",
        "hash",
        "SELECT hash FROM oauth_refresh_tokens WHERE expires_at <= $1",
        Cutoff::Now,
    ),
    (
        "oauth_refresh_tokens",
        "hash",
        "SELECT r.hash FROM oauth_refresh_tokens r JOIN oauth_grants g ON g.id = r.grant_id
         WHERE g.revoked OR g.expires_at <= $1",
        Cutoff::Now,
    ),
    (
        "oauth_codes",
        "hash",
        "SELECT hash FROM oauth_codes WHERE expires_at <= $1",
        Cutoff::CodeRetention,
    ),
    (
        "oauth_grants",
        "id",
        "SELECT id FROM oauth_grants WHERE purge_at <= $1",
        Cutoff::Now,
    ),
    (
        "oauth_records",
        "key",
        "SELECT key FROM oauth_records WHERE expires_at <= $1",
        Cutoff::Now,
    ),
];

/// The statements built from fragments.
pub(super) struct Statements {
    pub(super) create_grant: String,
    pub(super) redeem_code: String,
    pub(super) find_access: String,
    pub(super) find_refresh: String,
    pub(super) revoke_by_subject: String,
    pub(super) revoke_by_client: String,
    pub(super) purges: Vec<(String, Cutoff)>,
}

impl Statements {
    pub(super) fn new() -> Self {
        let insert_grant =
            |gate: &str| include_str!("sql/insert_grant.sql").replace("/* gate */", gate);
        let grant_columns = include_str!("sql/grant_columns.sql").trim_end();
        let with_grant_columns = |sql: &str| sql.replace("/* grant_columns */", grant_columns);
        let revoke_by =
            |column: &str| include_str!("sql/revoke_grants.sql").replace("/* column */", column);
        Self {
            create_grant: include_str!("sql/create_grant.sql")
                .replace("/* insert_grant */", &insert_grant("")),
            redeem_code: include_str!("sql/redeem_code.sql").replace(
                "/* insert_grant */",
                &insert_grant("WHERE EXISTS (SELECT 1 FROM c)"),
            ),
            find_access: with_grant_columns(include_str!("sql/find_access.sql")),
            find_refresh: with_grant_columns(include_str!("sql/find_refresh.sql")),
            revoke_by_subject: revoke_by("subject"),
            revoke_by_client: revoke_by("client_id"),
            purges: PURGES
                .iter()
                .map(|(table, key, rows, cutoff)| {
                    let sql = include_str!("sql/purge.sql")
                        .replace("/* table */", table)
                        .replace("/* key */", key)
                        .replace("/* rows */", rows);
                    (sql, *cutoff)
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fragment_is_spliced_in() {
        let s = Statements::new();
        let mut all = vec![
            &s.create_grant,
            &s.redeem_code,
            &s.find_access,
            &s.find_refresh,
            &s.revoke_by_subject,
            &s.revoke_by_client,
        ];
        all.extend(s.purges.iter().map(|(sql, _)| sql));
        for sql in all {
            let body: String = sql
                .lines()
                .filter(|l| !l.trim_start().starts_with("--"))
                .collect();
            assert!(!body.contains("/*"), "unspliced fragment in {sql}");
        }
        assert!(s.redeem_code.contains("WHERE EXISTS (SELECT 1 FROM c)"));
        assert_eq!(s.purges.len(), PURGES.len());
    }
}
