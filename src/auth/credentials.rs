//! The access keys clients may sign with, and their secrets.
//!
//! Secrets live in [`Zeroizing`] buffers so they are wiped when the store is dropped,
//! and `Debug` lists access keys only. Nothing outside `auth` can read a secret: the
//! verifiers borrow it just long enough to derive a signing key.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use zeroize::Zeroizing;

use super::signing::SigningKey;

/// Signing keys kept at most; the store is cleared when full. A day has one key per
/// (access key, region, service) in use, so this is reached only by requests naming
/// many regions, which then cost a derivation each, as without the cache.
const MAX_SIGNING_KEYS: usize = 1024;

/// Access key → secret access key, and the SigV4 signing keys derived from them.
pub struct CredentialStore {
    secrets: HashMap<String, Zeroizing<String>>,
    /// `access key \0 date \0 region \0 service` → signing key. Deriving one is four
    /// HMACs, every request needs one, and it changes once a day per client.
    signing_keys: Mutex<HashMap<String, SigningKey>>,
}

impl CredentialStore {
    /// Builds the store; a repeated access key keeps the last secret given.
    pub fn new(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        let secrets = pairs
            .into_iter()
            .map(|(k, s)| (k, Zeroizing::new(s)))
            .collect();
        CredentialStore {
            secrets,
            signing_keys: Mutex::new(HashMap::new()),
        }
    }

    pub fn contains(&self, access_key: &str) -> bool {
        self.secrets.contains_key(access_key)
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// The secret for `access_key`; crate-private so secrets never leave `auth`.
    pub(crate) fn secret(&self, access_key: &str) -> Option<&str> {
        self.secrets.get(access_key).map(|s| s.as_str())
    }

    /// The SigV4 signing key of `access_key` for one day, region and service (`None`
    /// for an unknown access key), derived once and then served from memory.
    pub(crate) fn signing_key(
        &self,
        access_key: &str,
        date: &str,
        region: &str,
        service: &str,
    ) -> Option<SigningKey> {
        let secret = self.secret(access_key)?;
        let mut id = String::with_capacity(access_key.len() + date.len() + region.len() + 12);
        for (i, part) in [access_key, date, region, service].into_iter().enumerate() {
            if i > 0 {
                id.push('\0');
            }
            id.push_str(part);
        }
        // A poisoned lock only means another request panicked while holding it; the
        // map itself is always whole, so keep using it.
        let mut keys = self
            .signing_keys
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(key) = keys.get(&id) {
            return Some(key.clone());
        }
        let key = SigningKey::derive(secret, date, region, service);
        if keys.len() >= MAX_SIGNING_KEYS {
            keys.clear();
        }
        keys.insert(id, key.clone());
        Some(key)
    }
}

impl fmt::Debug for CredentialStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut keys: Vec<&str> = self.secrets.keys().map(String::as_str).collect();
        keys.sort_unstable();
        f.debug_struct("CredentialStore")
            .field("access_keys", &keys)
            .field("secrets", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secrets() {
        let store = CredentialStore::new([("AK".to_string(), "topsecretvalue".to_string())]);
        let shown = format!("{store:?}");
        assert!(shown.contains("AK"));
        assert!(!shown.contains("topsecretvalue"));
        assert!(store.contains("AK"));
        assert!(!store.contains("ak"));
        assert_eq!(store.secret("AK"), Some("topsecretvalue"));
    }

    #[test]
    fn signing_keys_are_the_derived_ones_per_scope() {
        let store = CredentialStore::new([
            ("AK".to_string(), "secret-one".to_string()),
            ("BK".to_string(), "secret-two".to_string()),
        ]);
        let derived = |secret, date, region| {
            SigningKey::derive(secret, date, region, "s3").expose_for_tests()
        };
        for _ in 0..2 {
            let got = |ak, date, region| {
                store
                    .signing_key(ak, date, region, "s3")
                    .map(|k| k.expose_for_tests())
            };
            assert_eq!(
                got("AK", "20250101", "us-east-1"),
                Some(derived("secret-one", "20250101", "us-east-1"))
            );
            assert_eq!(
                got("AK", "20250102", "us-east-1"),
                Some(derived("secret-one", "20250102", "us-east-1"))
            );
            assert_eq!(
                got("AK", "20250101", "eu-west-1"),
                Some(derived("secret-one", "20250101", "eu-west-1"))
            );
            assert_eq!(
                got("BK", "20250101", "us-east-1"),
                Some(derived("secret-two", "20250101", "us-east-1"))
            );
            assert_eq!(got("CK", "20250101", "us-east-1"), None);
        }
        // Parts that run together must not share a key: "a\0b" is not "a" + "b".
        assert_ne!(
            store
                .signing_key("AK", "20250101", "us-east-1", "s3")
                .map(|k| k.expose_for_tests()),
            store
                .signing_key("AK", "2025010", "1us-east-1", "s3")
                .map(|k| k.expose_for_tests())
        );
    }

    #[test]
    fn signing_key_store_stays_bounded() {
        let store = CredentialStore::new([("AK".to_string(), "s".to_string())]);
        for i in 0..(MAX_SIGNING_KEYS * 3) {
            let region = format!("region-{i}");
            let key = store.signing_key("AK", "20250101", &region, "s3");
            assert_eq!(
                key.map(|k| k.expose_for_tests()),
                Some(SigningKey::derive("s", "20250101", &region, "s3").expose_for_tests())
            );
        }
        let held = store
            .signing_keys
            .lock()
            .map(|k| k.len())
            .unwrap_or(usize::MAX);
        assert!(held <= MAX_SIGNING_KEYS, "{held} keys held");
    }
}
