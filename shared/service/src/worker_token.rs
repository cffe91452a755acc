//! The worker credential: an HS256 token signed with the site's worker key (from the
//! environment variable named by `worker.auth_key_env`), carrying the site name in its
//! audience and a short expiry. A credential minted for another site fails twice over:
//! another key signs it, and its audience names another site. Workers sign their own
//! short-lived credentials with the key (a Kubernetes Secret mounted into orchestrator
//! and worker pods alike) and sign a fresh one before the old one ends.
//!
//! Neither the key nor a token ever appears in logs or error messages.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

const ISSUER: &str = "meridian-worker";

/// Seconds of clock skew tolerated between worker and orchestrator.
const LEEWAY_SECONDS: u64 = 5;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerClaims {
    /// The worker id.
    pub sub: String,
    pub iss: String,
    /// `meridian-site:<site name>`
    pub aud: String,
    pub exp: u64,
    pub iat: u64,
}

fn audience(site: &str) -> String {
    format!("meridian-site:{site}")
}

/// Signs a credential for `worker_id` at `site`, valid for `ttl_seconds` (a negative
/// offset is only useful to tests that need an expired one).
pub fn mint(key: &[u8], site: &str, worker_id: &str, ttl_seconds: i64) -> String {
    let now = jsonwebtoken::get_current_timestamp();
    let claims = WorkerClaims {
        sub: worker_id.to_owned(),
        iss: ISSUER.to_owned(),
        aud: audience(site),
        exp: now.saturating_add_signed(ttl_seconds),
        iat: now,
    };
    // HS256 over serde_json output cannot fail with a secret key.
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(key),
    )
    .unwrap_or_default()
}

/// Checks credentials of one site.
pub struct Verifier {
    key: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Verifier { key: <redacted> }")
    }
}

impl Verifier {
    pub fn new(key: &[u8], site: &str) -> Verifier {
        // Exactly HS256: a token whose header names another algorithm (or `none`) is
        // refused before its signature is looked at.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[audience(site)]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECONDS;
        Verifier {
            key: DecodingKey::from_secret(key),
            validation,
        }
    }

    /// The claims, or why the credential is refused (safe to show: no token text).
    pub fn verify(&self, token: &str) -> Result<WorkerClaims, &'static str> {
        jsonwebtoken::decode::<WorkerClaims>(token, &self.key, &self.validation)
            .map(|d| d.claims)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind as K;
                match e.kind() {
                    K::ExpiredSignature => "the worker credential has expired",
                    K::InvalidAudience => "the worker credential is for another site",
                    K::InvalidSignature => {
                        "the worker credential is not signed with this site's key"
                    }
                    K::InvalidAlgorithm => "the worker credential's algorithm is not accepted",
                    K::MissingRequiredClaim(_) => "the worker credential lacks a required claim",
                    _ => "the worker credential is malformed",
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn a_fresh_credential_of_this_site_passes() {
        let v = Verifier::new(KEY, "london");
        let c = v.verify(&mint(KEY, "london", "w1", 60)).unwrap();
        assert_eq!(c.sub, "w1");
    }

    #[test]
    fn other_sites_expired_and_forged_credentials_fail() {
        let v = Verifier::new(KEY, "london");
        assert_eq!(
            v.verify(&mint(KEY, "tokyo", "w1", 60)).unwrap_err(),
            "the worker credential is for another site"
        );
        assert_eq!(
            v.verify(&mint(
                b"another-key-another-key-another!",
                "london",
                "w1",
                60
            ))
            .unwrap_err(),
            "the worker credential is not signed with this site's key"
        );
        assert_eq!(
            v.verify(&mint(KEY, "london", "w1", -3600)).unwrap_err(),
            "the worker credential has expired"
        );
        assert!(v.verify("not-a-token").is_err());
    }
}
