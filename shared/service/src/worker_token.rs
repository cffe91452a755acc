//! The worker credential: an HS256 token signed with the site's worker key (from the
//! environment variable named by `worker.auth_key_env`), carrying the site name in its
//! audience and a short expiry. A credential minted for another site fails twice over:
//! another key signs it, and its audience names another site. Workers sign their own
//! short-lived credentials with the key (a Kubernetes Secret mounted into orchestrator
//! and worker pods alike) and sign a fresh one before the old one ends.
//!
//! Since whoever holds the key can sign any claims, the verifier does not take a
//! credential's word for how long it lives: it refuses one whose lifetime
//! (`exp - iat`) exceeds `worker.credential_ttl_seconds`, or whose `iat` lies in the
//! future beyond the clock skew, so a leaked credential is worth minutes, not years.
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
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECONDS;
        Verifier {
            key: DecodingKey::from_secret(key),
            validation,
        }
    }

    /// The claims, or why the credential is refused (safe to show: no token text).
    /// `max_lifetime_seconds` is the longest `exp - iat` accepted
    /// (`worker.credential_ttl_seconds`).
    pub fn verify(
        &self,
        token: &str,
        max_lifetime_seconds: u64,
    ) -> Result<WorkerClaims, &'static str> {
        let claims = jsonwebtoken::decode::<WorkerClaims>(token, &self.key, &self.validation)
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
            })?;
        let now = jsonwebtoken::get_current_timestamp();
        if claims.iat > now.saturating_add(LEEWAY_SECONDS) {
            return Err("the worker credential is issued in the future");
        }
        if claims.exp.saturating_sub(claims.iat) > max_lifetime_seconds {
            return Err(
                "the worker credential lives longer than worker.credential_ttl_seconds allows",
            );
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn a_fresh_credential_of_this_site_passes() {
        let v = Verifier::new(KEY, "london");
        let c = v.verify(&mint(KEY, "london", "w1", 60), 60).unwrap();
        assert_eq!(c.sub, "w1");
    }

    #[test]
    fn other_sites_expired_and_forged_credentials_fail() {
        let v = Verifier::new(KEY, "london");
        assert_eq!(
            v.verify(&mint(KEY, "tokyo", "w1", 60), 900).unwrap_err(),
            "the worker credential is for another site"
        );
        assert_eq!(
            v.verify(
                &mint(b"another-key-another-key-another!", "london", "w1", 60),
                900
            )
            .unwrap_err(),
            "the worker credential is not signed with this site's key"
        );
        assert_eq!(
            v.verify(&mint(KEY, "london", "w1", -3600), 900)
                .unwrap_err(),
            "the worker credential has expired"
        );
        assert!(v.verify("not-a-token", 900).is_err());
    }

    #[test]
    fn a_credential_signed_for_longer_than_the_ttl_or_from_the_future_fails() {
        let v = Verifier::new(KEY, "london");
        assert!(v.verify(&mint(KEY, "london", "w1", 900), 900).is_ok());
        assert_eq!(
            v.verify(&mint(KEY, "london", "w1", 901), 900).unwrap_err(),
            "the worker credential lives longer than worker.credential_ttl_seconds allows"
        );
        let now = jsonwebtoken::get_current_timestamp();
        let later = WorkerClaims {
            sub: "w1".into(),
            iss: ISSUER.into(),
            aud: audience("london"),
            exp: now + 3700,
            iat: now + 3600,
        };
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &later,
            &EncodingKey::from_secret(KEY),
        )
        .unwrap();
        assert_eq!(
            v.verify(&token, 900).unwrap_err(),
            "the worker credential is issued in the future"
        );
    }
}
