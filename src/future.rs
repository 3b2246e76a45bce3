//! The boxed future that trait objects here return ([`Validator`](crate::bearer::Validator),
//! the store wrappers of [`store::wrap`](crate::store::wrap), the `on_refresh` callback).

use std::{future::Future, pin::Pin};

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
