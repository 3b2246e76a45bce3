//! Reading the scripts' replies and the stored hashes: a [`Reply`] hands out its fields in the
//! order the script documents, so each field is named once, where it is read.

use std::sync::Arc;

use crate::{
    client::GrantType,
    clock::UnixTime,
    error::StoreError,
    resource::Resources,
    scope::Scope,
    store::GrantRecord,
    token::{GrantId, TokenHash},
};

/// A reply's fields (nil or bytes), read front to back.
pub(super) struct Reply {
    fields: std::vec::IntoIter<Option<Vec<u8>>>,
}

impl Reply {
    pub(super) fn new(fields: Vec<Option<Vec<u8>>>) -> Self {
        Self {
            fields: fields.into_iter(),
        }
    }

    /// The next field, `None` when nil (an empty string is `Some`).
    fn field(&mut self) -> Option<Vec<u8>> {
        self.fields.next().flatten()
    }

    /// The next field, `None` when nil or empty.
    pub(super) fn bytes(&mut self) -> Option<Vec<u8>> {
        self.field().filter(|b| !b.is_empty())
    }

    pub(super) fn opt_text(&mut self) -> Option<String> {
        self.bytes().map(lossy)
    }

    /// A field that must be there, possibly empty.
    pub(super) fn text(&mut self, what: &'static str) -> Result<String, StoreError> {
        self.field().map(lossy).ok_or_else(|| missing(what))
    }

    pub(super) fn opt_num(&mut self, what: &'static str) -> Result<Option<u64>, StoreError> {
        self.opt_text()
            .map(|s| s.parse().map_err(|_| StoreError::corrupt(what)))
            .transpose()
    }

    pub(super) fn time(&mut self, what: &'static str) -> Result<UnixTime, StoreError> {
        self.text(what)?
            .parse()
            .map_err(|_| StoreError::corrupt(what))
    }

    pub(super) fn generation(&mut self, what: &'static str) -> Result<u32, StoreError> {
        u32::try_from(self.opt_num(what)?.unwrap_or(0)).map_err(|_| StoreError::corrupt(what))
    }

    pub(super) fn scope(&mut self, what: &'static str) -> Result<Scope, StoreError> {
        Scope::parse(&self.text(what)?).map_err(|_| StoreError::corrupt(what))
    }

    /// Resources (RFC 8707) as stored; nil (a record an earlier version wrote) is none.
    pub(super) fn resources(&mut self) -> Resources {
        self.opt_text()
            .map_or_else(Resources::empty, |s| Resources::from_stored(&s))
    }

    pub(super) fn grant_id(&mut self) -> Result<GrantId, StoreError> {
        grant_id(&self.text("grant id")?)
    }

    pub(super) fn token_hash(&mut self) -> Result<Option<TokenHash>, StoreError> {
        self.opt_text().map(|h| token_hash(&h)).transpose()
    }

    /// The grant fields every token reply ends with (`grant_reply` in the prelude), and the
    /// family's newest generation.
    pub(super) fn grant(&mut self, id: GrantId) -> Result<(GrantRecord, u32), StoreError> {
        let client_id = Arc::from(self.text("grant client")?);
        let subject = self.opt_text().map(Arc::from);
        let scope = self.scope("grant scope")?;
        let grant_type = GrantType::parse(&self.text("grant type")?)
            .ok_or_else(|| StoreError::corrupt("bad grant type"))?;
        let created_at = self.time("grant creation")?;
        let expires_at = self.opt_num("grant end")?;
        let generation = self.generation("family generation")?;
        let resources = self.resources();
        let grant = GrantRecord {
            id,
            client_id,
            subject,
            scope,
            resources,
            grant_type,
            created_at,
            expires_at,
        };
        Ok((grant, generation))
    }
}

fn lossy(bytes: Vec<u8>) -> String {
    String::from_utf8_lossy(&bytes).into_owned()
}

fn missing(what: &'static str) -> StoreError {
    StoreError::corrupt(format!("missing field: {what}"))
}

pub(super) fn grant_id(hex: &str) -> Result<GrantId, StoreError> {
    GrantId::parse_hex(hex).ok_or_else(|| StoreError::corrupt("bad grant id"))
}

fn token_hash(hex: &str) -> Result<TokenHash, StoreError> {
    let bad = || StoreError::corrupt("bad token hash");
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<_>>()
        .ok_or_else(bad)?;
    Ok(TokenHash::from_bytes(bytes.try_into().map_err(|_| bad())?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(fields: &[Option<&str>]) -> Reply {
        Reply::new(
            fields
                .iter()
                .map(|f| f.map(|s| s.as_bytes().to_vec()))
                .collect(),
        )
    }

    #[test]
    fn fields_are_read_in_order() {
        let mut r = reply(&[
            Some("7"),
            None,
            Some(""),
            Some("read write"),
            Some(""),
            Some("x"),
            None,
        ]);
        assert_eq!(r.time("a").unwrap(), 7);
        assert_eq!(r.opt_num("b").unwrap(), None);
        assert_eq!(r.opt_text(), None);
        assert_eq!(r.scope("c").unwrap().as_str(), "read write");
        assert_eq!(r.text("empty but there").unwrap(), "");
        assert!(r.time("not a number").is_err());
        assert!(r.scope("nil").is_err());
        assert!(r.text("past the end").is_err());
    }

    #[test]
    fn token_hashes_round_trip_and_bad_ones_are_corrupt() {
        let hash = TokenHash::of("t");
        assert_eq!(token_hash(&hash.to_hex()).unwrap(), hash);
        for bad in ["", "zz", "abc", &"0".repeat(62)] {
            assert!(token_hash(bad).is_err(), "{bad:?}");
        }
    }
}
