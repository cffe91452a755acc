//! Mutual TLS between the master and its sites, on rustls.
//!
//! Identities are DNS subject-alternative names: a site's certificate names the site
//! (`DNS:london`), the master's names `master`. A child accepts only client
//! certificates chained to the mesh CA whose identity is on its allow-list; the master
//! checks a child's certificate against the site name it expects, whatever host or
//! address the site's URL has, so a certificate of `tokyo` cannot stand in for
//! `london` even though both list `127.0.0.1`.

mod files;
mod reload;
mod verify;

pub use files::{TlsError, TlsFiles};
pub use reload::FileWatch;

use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// The identity the master's certificate carries.
pub const MASTER_IDENTITY: &str = "master";

fn roots(files: &TlsFiles) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for ca in files.ca()? {
        roots.add(ca).map_err(|e| {
            TlsError::new(&files.ca_file, format!("not a usable CA certificate: {e}"))
        })?;
    }
    Ok(roots)
}

/// The server side of a site: its certificate, client certificates required, chained
/// to the CA and carrying one of `allowed_clients`.
pub fn server_config(
    files: &TlsFiles,
    allowed_clients: &[String],
) -> Result<Arc<ServerConfig>, TlsError> {
    let inner = WebPkiClientVerifier::builder(Arc::new(roots(files)?))
        .build()
        .map_err(|e| TlsError::new(&files.ca_file, e.to_string()))?;
    let verifier = verify::AllowList::new(inner, allowed_clients.to_vec());
    let mut cfg = ServerConfig::builder()
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(files.chain()?, files.key()?)
        .map_err(|e| {
            TlsError::new(
                &files.key_file,
                format!("does not match the certificate: {e}"),
            )
        })?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// The client side of the master towards one site: presents the master's
/// certificate and accepts only a server certificate naming `expected_site`.
pub fn client_config(files: &TlsFiles, expected_site: &str) -> Result<ClientConfig, TlsError> {
    let expected = ServerName::try_from(expected_site.to_owned()).map_err(|_| {
        TlsError::new(
            &files.cert_file,
            format!("`{expected_site}` is not a valid identity"),
        )
    })?;
    let verifier = verify::ExpectedName::new(Arc::new(roots(files)?), expected)
        .map_err(|e| TlsError::new(&files.ca_file, e))?;
    let mut cfg = ClientConfig::builder()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_auth_cert(files.chain()?, files.key()?)
        .map_err(|e| {
            TlsError::new(
                &files.key_file,
                format!("does not match the certificate: {e}"),
            )
        })?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

/// The DNS identities a certificate carries (its DNS subject-alternative names).
pub fn identities(cert: &[u8]) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    let Ok((_, parsed)) = x509_parser::parse_x509_certificate(cert) else {
        return Vec::new();
    };
    let Ok(Some(san)) = parsed.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::DNSName(d) => Some((*d).to_owned()),
            _ => None,
        })
        .collect()
}
