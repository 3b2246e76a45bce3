//! The integration tests, one binary: each area a module, the harness (`support`) compiled once.
//!
//! One binary rather than one per file: every file used to compile the harness and relink axum,
//! tonic, reqwest and oauth2 on its own, which made a cold `cargo test` spend most of its time
//! linking. Run one area with `cargo test --all-features --test integration <area>::`.

mod support;

mod authorization_code;
mod authorize;
mod bearer;
mod browser;
mod conformance;
mod demo;
mod device;
mod documents;
mod failure;
mod grpc;
mod hostile;
mod instances;
mod interop;
mod introspection;
mod jwt;
mod lifecycle;
mod logs;
mod loopback;
mod mcp;
mod near_cache;
mod oauth2_client;
mod openid;
mod openid_clients;
mod refresh_token;
mod registration;
mod resources;
mod stores;
mod tls;
mod token_endpoint;
