//! TLS client settings for what the crate fetches over `https://` (feature `tls`).

/// A TLS client configuration trusting `roots` (PEM certificates) or else the system's root
/// certificates, on the AWS-LC provider. The error says what is wrong with the roots.
pub(crate) fn client_config(roots: Option<&str>) -> Result<rustls::ClientConfig, &'static str> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let mut store = rustls::RootCertStore::empty();
    match roots {
        Some(pem) => {
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                let cert = cert.map_err(|_| "the TLS roots are not PEM")?;
                store
                    .add(cert)
                    .map_err(|_| "a TLS root certificate is invalid")?;
            }
            if store.is_empty() {
                return Err("no certificate among the TLS roots");
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for e in &found.errors {
                tracing::warn!(error = %e, "a system root certificate could not be read");
            }
            let (_added, _ignored) = store.add_parsable_certificates(found.certs);
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|_| "no TLS protocol version available")?
        .with_root_certificates(store)
        .with_no_client_auth())
}
