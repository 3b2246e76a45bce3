//! The wire formats both sides of the crate speak, below both: the
//! `application/x-www-form-urlencoded` codec ([`form`]) and the few pieces of HTTP header grammar
//! the endpoints and the bearer layer share ([`header`]), and how a rendered JSON document is
//! served ([`document`]).
//!
//! Nothing here knows about endpoints, grants or the bearer layer, and nothing here decides an
//! OAuth answer: a failure is a [`WireError`], which the endpoints turn into `invalid_request`
//! (RFC 6749 §5.2) and the bearer layer into its own `400` (RFC 6750 §3.1).

pub(crate) mod document;
pub(crate) mod form;
pub(crate) mod header;
#[cfg(feature = "tls")]
pub(crate) mod tls;
pub(crate) mod uri;

use std::fmt;

/// Why a form or a header could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WireError {
    /// A parameter name appears twice (RFC 6749 §3.1, §3.2). Holds the name when it is short
    /// and plain enough to echo back.
    Repeated(Option<Box<str>>),
    /// More parameters than [`form::MAX_PARAMETERS`].
    TooManyParameters,
    /// `%` not followed by two hex digits.
    PercentEncoding,
    /// The decoded bytes are not UTF-8.
    NotUtf8,
    /// A header that may appear once appears more than once.
    RepeatedHeader(&'static str),
    /// The body is not `application/x-www-form-urlencoded`.
    ContentType,
    /// A charset other than UTF-8.
    Charset,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Repeated(Some(name)) => write!(f, "parameter {name} is repeated"),
            Self::Repeated(None) => f.write_str("a parameter is repeated"),
            Self::TooManyParameters => {
                write!(f, "too many parameters (at most {})", form::MAX_PARAMETERS)
            }
            Self::PercentEncoding => f.write_str("invalid percent-encoding"),
            Self::NotUtf8 => f.write_str("parameters must be UTF-8"),
            Self::RepeatedHeader(name) => write!(f, "more than one {name} header"),
            Self::ContentType => {
                f.write_str("Content-Type must be application/x-www-form-urlencoded")
            }
            Self::Charset => f.write_str("only the UTF-8 charset is supported"),
        }
    }
}

impl std::error::Error for WireError {}
