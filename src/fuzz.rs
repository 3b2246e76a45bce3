//! Entry points for the fuzz targets in `fuzz/` (crate-private parsers made reachable). Not part
//! of the API; hidden from the docs and free to change.

use std::sync::OnceLock;

use http::{HeaderMap, Request};

use crate::{
    bearer::credentials::{Extracted, extract},
    client::Client,
    client::GrantType,
    client::InMemoryClients,
    endpoint::client_auth,
    server::AuthServer,
    wire::form::Form,
};

fn server() -> &'static AuthServer {
    static SERVER: OnceLock<AuthServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        let built = Client::confidential("c", "s")
            .grant_types(GrantType::ALL)
            .build()
            .and_then(|c| {
                AuthServer::builder()
                    .clients(InMemoryClients::new().with(c))
                    .build()
            });
        match built {
            Ok(server) => server,
            Err(e) => panic!("the fixed fuzzing configuration is invalid: {e}"),
        }
    })
}

/// Parse a form body. Returns the number of bytes consumed on success.
pub fn form(body: &[u8]) -> Option<usize> {
    Form::parse(body).ok().map(|_| body.len())
}

/// Parse a form body: the number of parameters it holds, or `None` when it is refused.
pub fn form_parameters(body: &[u8]) -> Option<usize> {
    Form::parse(body).ok().map(|form| form.pairs().count())
}

/// Read client credentials as the token endpoint does, from headers and a form body.
pub fn client_credentials(headers: &HeaderMap, body: &[u8]) -> bool {
    Form::parse(body).is_ok_and(|form| client_auth::presented(server(), headers, &form).is_ok())
}

/// Extract a bearer token as the layer does. 0: token, 1: missing, 2: malformed.
pub fn bearer<B>(req: &Request<B>, allow_query: bool) -> u8 {
    match extract(req, allow_query) {
        Extracted::Token(t) if crate::token::is_b64token(&t) => 0,
        Extracted::Token(_) => 2,
        Extracted::Missing => 1,
        Extracted::Malformed => 2,
    }
}
