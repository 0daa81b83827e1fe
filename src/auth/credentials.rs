//! The access keys clients may sign with, and their secrets.
//!
//! Secrets live in [`Zeroizing`] buffers so they are wiped when the store is dropped,
//! and `Debug` lists access keys only. Nothing outside `auth` can read a secret: the
//! verifiers borrow it just long enough to derive a signing key.

use std::collections::HashMap;
use std::fmt;

use zeroize::Zeroizing;

/// Access key → secret access key.
pub struct CredentialStore {
    secrets: HashMap<String, Zeroizing<String>>,
}

impl CredentialStore {
    /// Builds the store; a repeated access key keeps the last secret given.
    pub fn new(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        let secrets = pairs
            .into_iter()
            .map(|(k, s)| (k, Zeroizing::new(s)))
            .collect();
        CredentialStore { secrets }
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
}
