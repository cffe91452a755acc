//! JWT bearer tokens on the user API: one algorithm pinned by the server,
//! `exp`, `iss` and `aud` required, at most 60 s of leeway; roles `viewer` (read),
//! `operator` (create and cancel jobs) and `admin` (everything). Tokens are never
//! logged and never forwarded to sites.

use std::str::FromStr;

use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey, Header, Validation};
use meridian_service::config::ConfigError;
use serde::{Deserialize, Serialize};

use crate::config::AuthConfig;

/// What a caller may do; each role includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Operator,
    Admin,
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            other => Err(format!(
                "role `{other}` is unknown; allowed: viewer, operator, admin"
            )),
        }
    }
}

/// The claims Meridian reads.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub iss: String,
    pub aud: String,
    pub exp: u64,
    #[serde(default)]
    pub iat: Option<u64>,
    #[serde(default)]
    pub roles: Vec<String>,
}

impl Claims {
    /// The highest known role the token carries; unknown role names are ignored.
    pub fn role(&self) -> Option<Role> {
        self.roles.iter().filter_map(|r| r.parse().ok()).max()
    }
}

/// Checks tokens against the configured key, algorithm, issuer and audience.
#[derive(Clone)]
pub struct Verifier {
    key: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("algorithms", &self.validation.algorithms)
            .finish()
    }
}

fn algorithm(cfg: &AuthConfig) -> Result<Algorithm, ConfigError> {
    Algorithm::from_str(&cfg.algorithm).map_err(|_| {
        ConfigError::new(
            "auth.algorithm",
            format!(
                "value `{}` is unknown; allowed: ES256, ES384, RS256, RS384, RS512, PS256, PS384, PS512, EdDSA, HS256, HS384, HS512",
                cfg.algorithm
            ),
        )
    })
}

fn read(key: &str, path: &Option<std::path::PathBuf>, what: &str) -> Result<Vec<u8>, ConfigError> {
    let path = path
        .as_ref()
        .ok_or_else(|| ConfigError::new(key, format!("is not set; the algorithm needs {what}")))?;
    std::fs::read(path)
        .map_err(|e| ConfigError::new(key, format!("cannot read {}: {e}", path.display())))
}

fn hmac_secret(cfg: &AuthConfig) -> Result<Vec<u8>, ConfigError> {
    let var = cfg.hmac_secret_env.as_ref().ok_or_else(|| {
        ConfigError::new(
            "auth.hmac_secret_env",
            "is not set; HS* algorithms need the name of a variable holding the secret",
        )
    })?;
    let secret = std::env::var(var).map_err(|_| {
        ConfigError::new(
            "auth.hmac_secret_env",
            format!("environment variable `{var}` is not set"),
        )
    })?;
    if secret.len() < 32 {
        return Err(ConfigError::new(
            "auth.hmac_secret_env",
            format!("the secret in `{var}` is shorter than 32 bytes"),
        ));
    }
    Ok(secret.into_bytes())
}

impl Verifier {
    pub fn from_config(cfg: &AuthConfig) -> Result<Verifier, ConfigError> {
        let alg = algorithm(cfg)?;
        let bad = |e: jsonwebtoken::errors::Error| {
            ConfigError::new(
                "auth.public_key_file",
                format!("not a usable public key for {}: {e}", cfg.algorithm),
            )
        };
        let key = match alg.family() {
            AlgorithmFamily::Hmac => DecodingKey::from_secret(&hmac_secret(cfg)?),
            AlgorithmFamily::Ec => DecodingKey::from_ec_pem(&read(
                "auth.public_key_file",
                &cfg.public_key_file,
                "a public key",
            )?)
            .map_err(bad)?,
            AlgorithmFamily::Rsa => DecodingKey::from_rsa_pem(&read(
                "auth.public_key_file",
                &cfg.public_key_file,
                "a public key",
            )?)
            .map_err(bad)?,
            AlgorithmFamily::Ed => DecodingKey::from_ed_pem(&read(
                "auth.public_key_file",
                &cfg.public_key_file,
                "a public key",
            )?)
            .map_err(bad)?,
        };
        // `Validation::new` accepts exactly this algorithm: a token whose header names
        // another one (including `none`) is refused before its signature is looked at.
        let mut validation = Validation::new(alg);
        validation.set_issuer(&[&cfg.issuer]);
        validation.set_audience(&[&cfg.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = cfg.leeway_seconds;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        Ok(Verifier { key, validation })
    }

    /// The token's claims, or a reason it is refused (safe to show: no token text).
    pub fn verify(&self, token: &str) -> Result<Claims, String> {
        jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map(|d| d.claims)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind as K;
                match e.kind() {
                    K::ExpiredSignature => "the token has expired".to_owned(),
                    K::InvalidIssuer => "the token's issuer is not accepted".to_owned(),
                    K::InvalidAudience => "the token's audience is not accepted".to_owned(),
                    K::InvalidAlgorithm => "the token's algorithm is not accepted".to_owned(),
                    K::InvalidSignature => "the token's signature is invalid".to_owned(),
                    K::MissingRequiredClaim(c) => format!("the token lacks the `{c}` claim"),
                    K::ImmatureSignature => "the token is not valid yet".to_owned(),
                    _ => "the token is malformed".to_owned(),
                }
            })
    }
}

/// Mints a token with the configured signing key (dev and tests only).
pub fn mint(
    cfg: &AuthConfig,
    subject: &str,
    roles: &[Role],
    ttl_seconds: u64,
) -> Result<String, ConfigError> {
    let alg = algorithm(cfg)?;
    let bad = |e: jsonwebtoken::errors::Error| {
        ConfigError::new(
            "auth.signing_key_file",
            format!("not a usable private key for {}: {e}", cfg.algorithm),
        )
    };
    let key = match alg.family() {
        AlgorithmFamily::Hmac => EncodingKey::from_secret(&hmac_secret(cfg)?),
        AlgorithmFamily::Ec => EncodingKey::from_ec_pem(&read(
            "auth.signing_key_file",
            &cfg.signing_key_file,
            "a private key to sign with",
        )?)
        .map_err(bad)?,
        AlgorithmFamily::Rsa => EncodingKey::from_rsa_pem(&read(
            "auth.signing_key_file",
            &cfg.signing_key_file,
            "a private key to sign with",
        )?)
        .map_err(bad)?,
        AlgorithmFamily::Ed => EncodingKey::from_ed_pem(&read(
            "auth.signing_key_file",
            &cfg.signing_key_file,
            "a private key to sign with",
        )?)
        .map_err(bad)?,
    };
    let now = jsonwebtoken::get_current_timestamp();
    let claims = Claims {
        sub: subject.to_owned(),
        iss: cfg.issuer.clone(),
        aud: cfg.audience.clone(),
        exp: now + ttl_seconds,
        iat: Some(now),
        roles: roles
            .iter()
            .map(|r| format!("{r:?}").to_lowercase())
            .collect(),
    };
    jsonwebtoken::encode(&Header::new(alg), &claims, &key)
        .map_err(|e| ConfigError::new("auth.signing_key_file", format!("cannot sign: {e}")))
}
