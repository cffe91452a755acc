//! When the certificates in use expire: the gauge
//! `meridian_tls_certificate_expiry_timestamp_seconds{role, identity}` and a warning
//! when one expires within [`WARN_WITHIN`], and [`keep_current`], the loop that
//! re-reads rotated files, swaps them in and keeps both up to date.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio_util::sync::CancellationToken;

use super::{FileWatch, TlsError, TlsFiles};

/// The gauge's name.
pub const EXPIRY_METRIC: &str = "meridian_tls_certificate_expiry_timestamp_seconds";

/// A certificate expiring within this is logged at WARN (on start and on reload).
pub const WARN_WITHIN: Duration = Duration::from_secs(14 * 86_400);

/// The roles a certificate is used in, the `role` label.
pub mod role {
    pub const SITE_API: &str = "site-api";
    pub const WORKER_API: &str = "worker-api";
    pub const MASTER_API: &str = "master-api";
    pub const CLIENT: &str = "client";
}

/// The leaf certificate of a chain file: its identity and its notAfter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expiry {
    /// The first DNS subject-alternative name (empty when there is none).
    pub identity: String,
    /// notAfter as a Unix time.
    pub not_after: i64,
}

impl Expiry {
    /// Reads the first certificate of `cert_file`.
    pub fn read(cert_file: &Path) -> Result<Expiry, TlsError> {
        let files = TlsFiles {
            ca_file: cert_file.to_owned(),
            cert_file: cert_file.to_owned(),
            key_file: cert_file.to_owned(),
        };
        let chain = files.chain()?;
        Expiry::of(&chain[0]).ok_or_else(|| TlsError::new(cert_file, "is not an X.509 certificate"))
    }

    pub fn of(der: &[u8]) -> Option<Expiry> {
        let (_, parsed) = x509_parser::parse_x509_certificate(der).ok()?;
        Some(Expiry {
            identity: super::identities(der)
                .into_iter()
                .next()
                .unwrap_or_default(),
            not_after: parsed.validity().not_after.timestamp(),
        })
    }

    /// Sets the gauge for each role. Gauges idle for a minute are dropped by the
    /// recorder, so owners call this on every reload tick.
    pub fn publish(&self, roles: &[&'static str]) {
        for role in roles {
            metrics::gauge!(EXPIRY_METRIC, "role" => *role, "identity" => self.identity.clone())
                .set(self.not_after as f64);
        }
    }

    /// Seconds until notAfter (negative once expired).
    pub fn remaining_seconds(&self) -> i64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default();
        self.not_after - now
    }

    /// One WARN line per role when the certificate expires within [`WARN_WITHIN`].
    pub fn warn_if_soon(&self, roles: &[&'static str]) {
        let left = self.remaining_seconds();
        if left >= WARN_WITHIN.as_secs() as i64 {
            return;
        }
        for role in roles {
            if left <= 0 {
                tracing::warn!(role, identity = %self.identity, not_after = self.not_after,
                    "the {role} certificate of {} has expired; rotate it", self.identity);
            } else {
                tracing::warn!(role, identity = %self.identity, not_after = self.not_after,
                    days_left = left / 86_400,
                    "the {role} certificate of {} expires in {} days; rotate it", self.identity, left / 86_400);
            }
        }
    }

    /// Reads, publishes and warns; a file that cannot be read is logged, not fatal
    /// (whoever loaded the TLS configuration already reported it).
    pub fn observe(cert_file: &Path, roles: &[&'static str]) -> Option<Expiry> {
        match Expiry::read(cert_file) {
            Ok(e) => {
                e.publish(roles);
                e.warn_if_soon(roles);
                Some(e)
            }
            Err(e) => {
                tracing::warn!("cannot read the certificate's expiry: {e}");
                None
            }
        }
    }
}

/// Every `every`: publishes the certificate's expiry; when the files changed, calls
/// `swap` (which builds and installs the new configuration) and, if it succeeded,
/// reads the new expiry and warns if it is near. A half-written or bad set keeps
/// the previous configuration and says why. Returns when `stop` fires.
pub async fn keep_current<F>(
    files: TlsFiles,
    every: Duration,
    roles: Vec<&'static str>,
    stop: CancellationToken,
    mut swap: F,
) where
    F: FnMut() -> Result<(), TlsError> + Send,
{
    let mut expiry = Expiry::observe(&files.cert_file, &roles);
    let mut watch = FileWatch::new(&files);
    loop {
        if let Some(e) = &expiry {
            e.publish(&roles);
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        if !watch.changed() {
            continue;
        }
        match swap() {
            Ok(()) => {
                tracing::info!(
                    roles = ?roles,
                    "TLS files changed; new connections use the new certificate"
                );
                expiry = Expiry::observe(&files.cert_file, &roles).or(expiry);
            }
            Err(e) => tracing::warn!(
                "TLS files changed but cannot be used yet ({e}); keeping the previous ones"
            ),
        }
    }
}
