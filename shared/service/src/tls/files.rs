//! The three PEM files of a TLS identity: the mesh CA, this party's certificate
//! chain and its private key.

use std::fmt;
use std::path::{Path, PathBuf};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};

/// Where a party's TLS material lives (Kubernetes secrets mounted as files).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The mesh CA certificate(s) peers must chain to.
    pub ca_file: PathBuf,
    /// This party's certificate (and intermediates), PEM.
    pub cert_file: PathBuf,
    /// This party's private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
}

/// A TLS file that is missing or unusable. Names the file, never its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsError {
    pub file: PathBuf,
    pub message: String,
}

impl TlsError {
    pub fn new(file: &Path, message: impl Into<String>) -> Self {
        TlsError {
            file: file.to_owned(),
            message: message.into(),
        }
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TLS file {}: {}", self.file.display(), self.message)
    }
}

impl std::error::Error for TlsError {}

pub(super) fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| TlsError::new(path, e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::new(path, e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsError::new(path, "holds no PEM certificate"));
    }
    Ok(certs)
}

pub(super) fn key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    // The parse error of a key file could quote key material; say only what failed.
    PrivateKeyDer::from_pem_file(path)
        .map_err(|_| TlsError::new(path, "holds no readable PEM private key"))
}

impl TlsFiles {
    pub fn ca(&self) -> Result<Vec<CertificateDer<'static>>, TlsError> {
        certs(&self.ca_file)
    }

    pub fn chain(&self) -> Result<Vec<CertificateDer<'static>>, TlsError> {
        certs(&self.cert_file)
    }

    pub fn key(&self) -> Result<PrivateKeyDer<'static>, TlsError> {
        key(&self.key_file)
    }

    /// Every file, for change detection.
    pub fn paths(&self) -> [&Path; 3] {
        [&self.ca_file, &self.cert_file, &self.key_file]
    }

    /// Checks that all three files load; the first problem found.
    pub fn check(&self) -> Result<(), TlsError> {
        self.ca()?;
        self.chain()?;
        self.key()?;
        Ok(())
    }
}
