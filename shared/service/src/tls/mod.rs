//! Mutual TLS between the master and its sites, on rustls.
//!
//! Identities are DNS subject-alternative names: a site's certificate names the site
//! (`DNS:london`), the master's names `master`. A child accepts only client
//! certificates chained to the mesh CA whose identity is on its allow-list; the master
//! checks a child's certificate against the site name it expects, whatever host or
//! address the site's URL has, so a certificate of `tokyo` cannot stand in for
//! `london` even though both list `127.0.0.1`.

pub mod expiry;
mod files;
mod reload;
pub mod server;
mod verify;

pub use expiry::{EXPIRY_METRIC, Expiry, keep_current};
pub use files::{TlsError, TlsFiles};
pub use reload::FileWatch;
pub use server::{Limits, ServerTls};

use std::path::Path;
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

fn roots_of(ca_file: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for ca in files::certs(ca_file)? {
        roots
            .add(ca)
            .map_err(|e| TlsError::new(ca_file, format!("not a usable CA certificate: {e}")))?;
    }
    Ok(roots)
}

fn mismatch(key_file: &Path) -> impl Fn(rustls::Error) -> TlsError + '_ {
    move |e| TlsError::new(key_file, format!("does not match the certificate: {e}"))
}

/// A server presenting `cert_file`/`key_file`. With `client_ca`, client certificates
/// chained to it are `required`, or only checked when presented (`required` false);
/// without it no client certificate is asked for.
pub fn server_config_with(
    cert_file: &Path,
    key_file: &Path,
    client_ca: Option<&Path>,
    required: bool,
) -> Result<Arc<ServerConfig>, TlsError> {
    let builder = ServerConfig::builder();
    let builder = match client_ca {
        Some(ca) => {
            let verifier = WebPkiClientVerifier::builder(Arc::new(roots_of(ca)?));
            let verifier = if required {
                verifier
            } else {
                verifier.allow_unauthenticated()
            };
            let verifier = verifier
                .build()
                .map_err(|e| TlsError::new(ca, e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut cfg = builder
        .with_single_cert(files::certs(cert_file)?, files::key(key_file)?)
        .map_err(mismatch(key_file))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// The worker API of a site: the site's certificate; workers authenticate with their
/// bearer credential, and a client certificate, when one is presented, must chain to
/// the mesh CA.
pub fn worker_server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    server_config_with(
        &files.cert_file,
        &files.key_file,
        Some(&files.ca_file),
        false,
    )
}

/// A remote worker towards its site: trusts `ca_file`, accepts only a server
/// certificate naming `expected_site`, and presents `identity` (certificate and key
/// files) when it has one.
pub fn worker_client_config(
    ca_file: &Path,
    identity: Option<(&Path, &Path)>,
    expected_site: &str,
) -> Result<ClientConfig, TlsError> {
    let expected = ServerName::try_from(expected_site.to_owned()).map_err(|_| {
        TlsError::new(
            ca_file,
            format!("`{expected_site}` is not a valid identity"),
        )
    })?;
    let verifier = verify::ExpectedName::new(Arc::new(roots_of(ca_file)?), expected)
        .map_err(|e| TlsError::new(ca_file, e))?;
    let builder = ClientConfig::builder()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier));
    let mut cfg = match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(files::certs(cert)?, files::key(key)?)
            .map_err(mismatch(key))?,
        None => builder.with_no_client_auth(),
    };
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
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
