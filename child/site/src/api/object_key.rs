//! How an object key is shown outside the site: as it is, or as a keyed hash when
//! `site.object_keys` is `hashed` (see `meridian_config::object_keys`).

use hmac::{Hmac, Mac};
use meridian_config::{ObjectKeys, SystemConfig};
use sha2::Sha256;

/// Maps keys for one answer; the secret is read once per answer.
pub struct Outward {
    secret: Option<Vec<u8>>,
}

impl Outward {
    /// The secret was checked at start-up; a variable removed since then fails
    /// closed (every key hashed under an empty secret would be guessable, so keys
    /// are withheld instead).
    pub fn new(cfg: &SystemConfig) -> Outward {
        let secret = match cfg.site.object_keys {
            ObjectKeys::Plain => None,
            ObjectKeys::Hashed => Some(
                meridian_config::object_keys::secret(cfg)
                    .ok()
                    .flatten()
                    .unwrap_or_default(),
            ),
        };
        Outward { secret }
    }

    pub fn key(&self, data_source: &str, key: &str) -> String {
        let Some(secret) = &self.secret else {
            return key.to_owned();
        };
        if secret.is_empty() {
            return "withheld".to_owned();
        }
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
            return "withheld".to_owned();
        };
        mac.update(data_source.as_bytes());
        mac.update(b"/");
        mac.update(key.as_bytes());
        let digest = mac.finalize().into_bytes();
        format!("hmac-sha256:{}", hex::encode(&digest[..16]))
    }
}
