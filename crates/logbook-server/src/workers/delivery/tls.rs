//! TLS for syslog destinations (RFC 5425): a rustls client that trusts the public web PKI roots
//! and, per destination, the CA certificates its administrators pasted (a collector signed by a
//! private CA). The collector's name (or IP literal) must be in its certificate; Logbook presents
//! no client certificate.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::sender::SendError;

/// The certificates of `pem` (one or more `CERTIFICATE` blocks), refusing text with none or with
/// a block that is not DER inside.
pub fn parse_trusted_ca_pem(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certificates = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| format!("the CA certificates do not parse: {error}"))?;
    if certificates.is_empty() {
        return Err("no CERTIFICATE block was found".to_owned());
    }
    let mut roots = rustls::RootCertStore::empty();
    for certificate in &certificates {
        roots.add(certificate.clone()).map_err(|error| {
            format!("a CA certificate is not usable as a trust anchor: {error}")
        })?;
    }
    Ok(certificates)
}

/// A client configuration trusting the web PKI roots plus `trusted_ca_pem`.
pub fn client_config(trusted_ca_pem: Option<&str>) -> Result<Arc<rustls::ClientConfig>, SendError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(pem) = trusted_ca_pem {
        for certificate in parse_trusted_ca_pem(pem).map_err(SendError::Tls)? {
            roots
                .add(certificate)
                .map_err(|error| SendError::Tls(error.to_string()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| SendError::Tls(error.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Runs the TLS handshake on `stream` for `host` (a DNS name or an IP literal).
pub async fn handshake(
    config: Arc<rustls::ClientConfig>,
    host: &str,
    stream: TcpStream,
) -> Result<TlsStream<TcpStream>, SendError> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let server_name = ServerName::try_from(host.to_owned()).map_err(|error| {
        SendError::Tls(format!("{host} is not a valid TLS server name: {error}"))
    })?;
    TlsConnector::from(config)
        .connect(server_name, stream)
        .await
        .map_err(|error| SendError::Tls(super::sender::error_chain_text(&error)))
}
