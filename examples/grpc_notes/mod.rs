//! A small gRPC service, `notes.Notes`, written out by hand: the prost messages and the service
//! glue that `tonic-prost-build` would generate from this definition —
//!
//! ```proto
//! package notes;
//! service Notes {
//!   rpc List(ListNotes) returns (NoteList);   // needs scope "read"
//!   rpc Add(AddNote) returns (Note);          // needs scope "write"
//! }
//! message ListNotes {}
//! message AddNote { string text = 1; }
//! message Note { string text = 1; string author = 2; }
//! message NoteList { repeated Note notes = 1; }
//! ```
//!
//! — so the example builds on a fresh machine with no `protoc` and no build script in the
//! library. Shared by `examples/tonic.rs` and `tests/integration/grpc.rs`.
#![allow(dead_code)]

use std::{
    convert::Infallible,
    sync::{Arc, Mutex},
    task::{Context, Poll},
};

use tonic::{
    Status,
    body::Body,
    codegen::{BoxFuture, http},
    server::{Grpc, NamedService, UnaryService},
};
use tonic_prost::ProstCodec;
use tower_oauth2::TokenInfo;

pub const LIST: &str = "/notes.Notes/List";
pub const ADD: &str = "/notes.Notes/Add";

#[derive(Clone, PartialEq, prost::Message)]
pub struct ListNotes {}

#[derive(Clone, PartialEq, prost::Message)]
pub struct AddNote {
    #[prost(string, tag = "1")]
    pub text: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Note {
    #[prost(string, tag = "1")]
    pub text: String,
    #[prost(string, tag = "2")]
    pub author: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct NoteList {
    #[prost(message, repeated, tag = "1")]
    pub notes: Vec<Note>,
}

/// The server: notes in memory. Handlers read the caller from the `TokenInfo` the bearer layer
/// put into the request's extensions.
#[derive(Clone, Default)]
pub struct NotesServer {
    notes: Arc<Mutex<Vec<Note>>>,
}

impl NamedService for NotesServer {
    const NAME: &'static str = "notes.Notes";
}

struct List(NotesServer);
struct Add(NotesServer);

impl UnaryService<ListNotes> for List {
    type Response = NoteList;
    type Future = BoxFuture<tonic::Response<NoteList>, Status>;
    fn call(&mut self, _: tonic::Request<ListNotes>) -> Self::Future {
        let notes = self.0.notes.lock().map(|n| n.clone()).unwrap_or_default();
        Box::pin(async move { Ok(tonic::Response::new(NoteList { notes })) })
    }
}

impl UnaryService<AddNote> for Add {
    type Response = Note;
    type Future = BoxFuture<tonic::Response<Note>, Status>;
    fn call(&mut self, request: tonic::Request<AddNote>) -> Self::Future {
        // The bearer layer guarantees a TokenInfo here; answer cleanly if it is missing anyway.
        let author = match request.extensions().get::<TokenInfo>() {
            Some(t) => t.subject.as_deref().unwrap_or(&t.client_id).to_owned(),
            None => return Box::pin(async { Err(Status::unauthenticated("no token details")) }),
        };
        let note = Note {
            text: request.into_inner().text,
            author,
        };
        if let Ok(mut notes) = self.0.notes.lock() {
            notes.push(note.clone());
        }
        Box::pin(async move { Ok(tonic::Response::new(note)) })
    }
}

impl tower::Service<http::Request<Body>> for NotesServer {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let server = self.clone();
        match req.uri().path() {
            LIST => Box::pin(async move {
                Ok(Grpc::new(ProstCodec::default())
                    .unary(List(server), req)
                    .await)
            }),
            ADD => Box::pin(async move {
                Ok(Grpc::new(ProstCodec::default())
                    .unary(Add(server), req)
                    .await)
            }),
            _ => Box::pin(async { Ok(Status::unimplemented("no such method").into_http()) }),
        }
    }
}

/// A client for `notes.Notes` over any tonic channel, sending `Authorization: Bearer <token>`.
pub struct NotesClient {
    grpc: tonic::client::Grpc<tonic::transport::Channel>,
    token: Option<String>,
}

impl NotesClient {
    pub fn new(channel: tonic::transport::Channel, token: Option<&str>) -> Self {
        Self {
            grpc: tonic::client::Grpc::new(channel),
            token: token.map(str::to_owned),
        }
    }

    async fn unary<Req, Res>(&mut self, path: &'static str, msg: Req) -> Result<Res, Status>
    where
        Req: prost::Message + Send + Sync + 'static,
        Res: prost::Message + Default + Send + Sync + 'static,
    {
        let mut request = tonic::Request::new(msg);
        if let Some(t) = &self.token {
            let value = format!("Bearer {t}")
                .parse()
                .map_err(|_| Status::invalid_argument("token"))?;
            request.metadata_mut().insert("authorization", value);
        }
        self.grpc
            .ready()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let path = http::uri::PathAndQuery::from_static(path);
        Ok(self
            .grpc
            .unary(request, path, ProstCodec::default())
            .await?
            .into_inner())
    }

    pub async fn list(&mut self) -> Result<NoteList, Status> {
        self.unary(LIST, ListNotes {}).await
    }

    pub async fn add(&mut self, text: &str) -> Result<Note, Status> {
        self.unary(
            ADD,
            AddNote {
                text: text.to_owned(),
            },
        )
        .await
    }
}
