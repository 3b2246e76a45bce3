//! The grant and code operations: each one script (or one command), one round trip.

use std::sync::Arc;

use async_trait::async_trait;

use super::{
    REVOKE_BATCH, RedisStore,
    index::keep_until,
    reply::{Reply, grant_id},
    scripts::Call,
};
use crate::{
    clock::UnixTime,
    error::StoreError,
    store::{
        AccessTokenRecord, AuthorizationCodeRecord, CODE_RETENTION_SECS, CodeChallengeMethod,
        CodeStore, GrantFilter, GrantRecord, GrantStore, NewAccessToken, NewRefreshToken,
        Redemption, RefreshTokenRecord, RefreshTokenState, Rotation, RotationOutcome, Sealed,
        TOMBSTONE_SECS, grant_purge_at,
    },
    token::{GrantId, Route, TokenHash},
};

fn flag(on: bool) -> &'static str {
    if on { "1" } else { "0" }
}

/// The arguments that describe a new refresh token (`has_r rhash riat rexp rgen`), shared by
/// `create_grant` and `rotate`.
fn refresh_args(inv: &mut Call<'_>, refresh: Option<&NewRefreshToken>) {
    match refresh {
        Some(r) => inv
            .arg("1")
            .arg(r.hash.to_hex())
            .arg(r.issued_at)
            .arg(r.expires_at)
            .arg(r.generation),
        None => inv.arg("0").arg("").arg(0).arg(0).arg(0),
    };
}

/// The 20 arguments of the Lua `create_grant` (see `lua/prelude.lua`); `keep` is the grant's
/// [`keep_until`] time.
fn grant_args(
    inv: &mut Call<'_>,
    grant: &GrantRecord,
    access: &NewAccessToken,
    refresh: Option<&NewRefreshToken>,
    keep: UnixTime,
) {
    inv.arg(grant.id.to_string())
        .arg(&*grant.client_id)
        .arg(flag(grant.subject.is_some()))
        .arg(grant.subject.as_deref().unwrap_or(""))
        .arg(grant.scope.as_str())
        .arg(grant.grant_type.as_str())
        .arg(grant.created_at)
        .arg(grant.expires_at.map(|e| e.to_string()).unwrap_or_default())
        .arg(keep)
        .arg(access.hash.to_hex())
        .arg(access.scope.as_str())
        .arg(access.issued_at)
        .arg(access.expires_at);
    refresh_args(inv, refresh);
    inv.arg(grant.resources.as_str())
        .arg(access.audience.as_str());
}

/// The fields of a code's hash, in the order [`RedisStore::find_code`] reads them.
const CODE_FIELDS: [&str; 11] = [
    "client",
    "sub",
    "has_redirect",
    "redirect",
    "scope",
    "challenge",
    "method",
    "iat",
    "exp",
    "res",
    "redeemed_by",
];

#[async_trait]
impl GrantStore for RedisStore {
    async fn create_grant(
        &self,
        grant: GrantRecord,
        access: NewAccessToken,
        refresh: Option<NewRefreshToken>,
    ) -> Result<(), StoreError> {
        let route = grant.id.route();
        let scope = self.scope_for_writing(
            route,
            &[Some(&access.hash), refresh.as_ref().map(|r| &r.hash)],
        )?;
        let mut inv = self.script(&self.inner.scripts.create_grant, &scope);
        let purge_at = grant_purge_at(&access, refresh.as_ref());
        let keep = keep_until(purge_at, grant.created_at, refresh.is_some());
        grant_args(&mut inv, &grant, &access, refresh.as_ref(), keep);
        self.invoke_creating::<i64>(inv, &grant, keep).await?;
        if refresh.is_some() {
            self.remember_kept(grant.id, keep, grant.created_at);
        }
        Ok(())
    }

    async fn find_access_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<AccessTokenRecord>, StoreError> {
        let Some(scope) = self.scope(hash.route()) else {
            return Ok(None);
        };
        let mut inv = self.script(&self.inner.scripts.find_access, &scope);
        inv.arg(hash.to_hex());
        let Some(fields) = self.invoke::<Option<_>>(inv).await? else {
            return Ok(None);
        };
        // lua/find_access.lua: gid scope iat exp aud, then the grant.
        let mut r = Reply::new(fields);
        let id = r.grant_id()?;
        let scope = r.scope("access scope")?;
        let issued_at = r.time("access issue time")?;
        let expires_at = r.time("access expiry")?;
        let audience = r.resources();
        let (grant, _) = r.grant(id)?;
        Ok(Some(AccessTokenRecord {
            grant,
            scope,
            audience,
            issued_at,
            expires_at,
        }))
    }

    async fn find_refresh_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<RefreshTokenRecord>, StoreError> {
        let Some(scope) = self.scope(hash.route()) else {
            return Ok(None);
        };
        let mut inv = self.script(&self.inner.scripts.find_refresh, &scope);
        inv.arg(hash.to_hex());
        let Some(fields) = self.invoke::<Option<_>>(inv).await? else {
            return Ok(None);
        };
        // lua/find_refresh.lua: gid iat exp gen access state rotated_at sealed sealed_until,
        // then the grant.
        let mut r = Reply::new(fields);
        let id = r.grant_id()?;
        let issued_at = r.time("refresh issue time")?;
        let expires_at = r.time("refresh expiry")?;
        let generation = u32::try_from(r.time("refresh generation")?)
            .map_err(|_| StoreError::corrupt("bad generation"))?;
        let access_token = r.token_hash()?;
        let active = r.text("refresh state")? == "active";
        let rotated_at = r.opt_num("rotation time")?;
        let sealed = r.bytes();
        let sealed_until = r.opt_num("grace window end")?;
        let (grant, family_generation) = r.grant(id)?;
        let state = if active {
            RefreshTokenState::Active
        } else {
            RefreshTokenState::Rotated {
                at: rotated_at.ok_or_else(|| StoreError::corrupt("rotated without a time"))?,
                sealed: sealed.zip(sealed_until).map(|(bytes, until)| Sealed {
                    bytes: bytes.into(),
                    until,
                }),
            }
        };
        Ok(Some(RefreshTokenRecord {
            hash: *hash,
            grant,
            issued_at,
            expires_at,
            generation,
            family_generation,
            access_token,
            state,
        }))
    }

    async fn rotate_refresh_token(
        &self,
        rotation: Rotation,
    ) -> Result<RotationOutcome, StoreError> {
        // lua/rotate.lua's arguments, in order.
        let route = rotation.grant.route();
        let scope = self.scope_for_writing(
            route,
            &[
                Some(&rotation.presented),
                Some(&rotation.access.hash),
                rotation.refresh.as_ref().map(|r| &r.hash),
            ],
        )?;
        let mut inv = self.script(&self.inner.scripts.rotate, &scope);
        let a = &rotation.access;
        inv.arg(rotation.presented.to_hex())
            .arg(rotation.generation)
            .arg(rotation.now)
            .arg(a.hash.to_hex())
            .arg(a.scope.as_str())
            .arg(a.issued_at)
            .arg(a.expires_at);
        refresh_args(&mut inv, rotation.refresh.as_ref());
        match &rotation.sealed {
            Some(s) => inv.arg(&*s.bytes).arg(s.until),
            None => inv.arg("").arg(0),
        };
        // The family lives on: its grant key and index entries are extended when what this
        // instance last wrote no longer covers its new purge time (about once a day), by the
        // script on one server, on a cluster the index entries beside it (harmless when it turns
        // out a conflict: an entry lasting longer only costs a lookup).
        let purge_at = grant_purge_at(a, rotation.refresh.as_ref());
        let extend = self.extension(rotation.grant, purge_at, rotation.now);
        inv.arg(flag(rotation.revoke_previous_access))
            .arg(extend.unwrap_or(0))
            .arg(a.audience.as_str());
        let index = async {
            match extend {
                Some(keep) => {
                    self.index_apart(
                        rotation.grant,
                        &rotation.client_id,
                        rotation.subject.as_deref(),
                        keep,
                        rotation.now,
                    )
                    .await
                }
                None => Ok(()),
            }
        };
        let (applied, ()) = tokio::try_join!(self.invoke::<i64>(inv), index)?;
        if applied != 1 {
            return Ok(RotationOutcome::Conflict);
        }
        if let Some(keep) = extend {
            self.remember_kept(rotation.grant, keep, rotation.now);
        }
        Ok(RotationOutcome::Rotated)
    }

    async fn revoke_access_token(&self, hash: &TokenHash) -> Result<bool, StoreError> {
        let Some(scope) = self.scope(hash.route()) else {
            return Ok(false);
        };
        let mut inv = self.script(&self.inner.scripts.revoke_access, &scope);
        inv.arg(hash.to_hex());
        Ok(self.invoke::<i64>(inv).await? == 1)
    }

    async fn revoke_grant(&self, id: GrantId) -> Result<bool, StoreError> {
        let scope = self.scope(Some(id.route())).unwrap_or_default();
        let mut inv = self.script(&self.inner.scripts.revoke_grant, &scope);
        inv.arg(id.to_string()).arg(TOMBSTONE_SECS);
        Ok(self.invoke::<i64>(inv).await? == 1)
    }

    async fn revoke_grants(&self, filter: &GrantFilter) -> Result<u64, StoreError> {
        let set = match filter {
            GrantFilter::Subject(s) => format!("s:{s}"),
            GrantFilter::Client(c) => format!("k:{c}"),
        };
        if self.clustered() {
            return self.revoke_indexed(&set).await;
        }
        let mut total = 0u64;
        loop {
            let mut inv = self.script(&self.inner.scripts.revoke_set, self.prefix());
            inv.arg(&set).arg(REVOKE_BATCH);
            let (revoked, popped): (u64, usize) = self.invoke(inv).await?;
            total += revoked;
            if popped < REVOKE_BATCH {
                return Ok(total);
            }
        }
    }
}

#[async_trait]
impl CodeStore for RedisStore {
    async fn create_code(&self, code: AuthorizationCodeRecord) -> Result<(), StoreError> {
        // A code goes on its own route, which the grant it starts takes.
        let route = code.hash.route().unwrap_or_else(Route::random);
        let scope = self.scope_for_writing(route, &[Some(&code.hash)])?;
        let key = format!("{scope}c:{}", code.hash.to_hex());
        let (challenge, method) = match &code.code_challenge {
            Some((c, m)) => (c.clone(), m.as_str().to_owned()),
            None => (String::new(), String::new()),
        };
        // The same fields as `CODE_FIELDS`, with their values.
        let fields: [String; 10] = [
            code.client_id.to_string(),
            code.subject.to_string(),
            flag(code.redirect_uri.is_some()).to_owned(),
            code.redirect_uri.clone().unwrap_or_default(),
            code.scope.to_string(),
            challenge,
            method,
            code.issued_at.to_string(),
            code.expires_at.to_string(),
            code.resources.as_str().to_owned(),
        ];
        let pairs: Vec<(&str, String)> = CODE_FIELDS.into_iter().zip(fields).collect();
        let mut cmd = redis::pipe();
        cmd.atomic()
            .hset_multiple(&key, &pairs)
            .ignore()
            .cmd("EXPIREAT")
            .arg(&key)
            .arg(code.expires_at.saturating_add(CODE_RETENTION_SECS))
            .ignore();
        self.run(|mut c| async move { cmd.query_async::<()>(&mut c).await })
            .await
    }

    async fn find_code(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<AuthorizationCodeRecord>, StoreError> {
        let Some(scope) = self.scope(hash.route()) else {
            return Ok(None);
        };
        let key = format!("{scope}c:{}", hash.to_hex());
        let fields: Vec<Option<Vec<u8>>> = self
            .run(|mut c| async move {
                redis::cmd("HMGET")
                    .arg(&key)
                    .arg(&CODE_FIELDS)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        if fields.first().is_none_or(Option::is_none) {
            return Ok(None);
        }
        let mut r = Reply::new(fields);
        let client_id = Arc::from(r.text("code client")?);
        let subject = Arc::from(r.text("code subject")?);
        let has_redirect = r.text("code redirect flag")? == "1";
        let redirect = r.text("code redirect")?;
        let scope = r.scope("code scope")?;
        let challenge = r.opt_text();
        let method = r.opt_text();
        let code_challenge = match (challenge, method) {
            (None, _) => None,
            (Some(c), Some(m)) => Some((
                c,
                CodeChallengeMethod::parse(&m)
                    .ok_or_else(|| StoreError::corrupt("bad challenge method"))?,
            )),
            (Some(_), None) => return Err(StoreError::corrupt("challenge without a method")),
        };
        let issued_at = r.time("code issue time")?;
        let expires_at = r.time("code expiry")?;
        let resources = r.resources();
        let redeemed_by = r.opt_text().map(|g| grant_id(&g)).transpose()?;
        Ok(Some(AuthorizationCodeRecord {
            hash: *hash,
            client_id,
            subject,
            redirect_uri: has_redirect.then_some(redirect),
            scope,
            resources,
            code_challenge,
            issued_at,
            expires_at,
            redeemed_by,
        }))
    }

    async fn redeem_code(
        &self,
        hash: &TokenHash,
        grant: GrantRecord,
        access: NewAccessToken,
        refresh: Option<NewRefreshToken>,
    ) -> Result<Redemption, StoreError> {
        // The grant goes on its code's route: one slot, one atomic step. On a cluster a code
        // that names no route is nowhere.
        let code_route = match hash.route() {
            Some(route) => route,
            None if self.clustered() => return Ok(Redemption::Missing),
            None => grant.id.route(),
        };
        if self.clustered() && grant.id.route() != code_route {
            return Err(StoreError::corrupt(
                "a grant not on its code's route (GrantId::generate_in)",
            ));
        }
        let scope = self.scope_for_writing(
            code_route,
            &[Some(&access.hash), refresh.as_ref().map(|r| &r.hash)],
        )?;
        let mut inv = self.script(&self.inner.scripts.redeem_code, &scope);
        inv.arg(hash.to_hex());
        let purge_at = grant_purge_at(&access, refresh.as_ref());
        let keep = keep_until(purge_at, grant.created_at, refresh.is_some());
        grant_args(&mut inv, &grant, &access, refresh.as_ref(), keep);
        let reply: Vec<String> = self.invoke_creating(inv, &grant, keep).await?;
        match reply.first().map(String::as_str) {
            Some("ok") => {
                if refresh.is_some() {
                    self.remember_kept(grant.id, keep, grant.created_at);
                }
                Ok(Redemption::Redeemed)
            }
            Some("missing") => Ok(Redemption::Missing),
            Some("used") => Ok(Redemption::AlreadyRedeemed(grant_id(
                reply.get(1).map_or("", String::as_str),
            )?)),
            _ => Err(StoreError::corrupt("unexpected script reply")),
        }
    }
}
