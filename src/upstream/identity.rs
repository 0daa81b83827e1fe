//! Who the proxy is towards the backend for one request: [`BackendIdentity`], and the
//! table ([`BackendIdentities`]) that picks it from the client's verified access key.
//!
//! The backend's own permissions (bucket ownership, ACLs, policies naming users) only
//! separate clients when each reaches the backend as a different user, so a client
//! entry may name its own backend key pair. Entries without one, the sidecar case and
//! the proxy's own traffic (readiness, CLI) use `[backend]`'s pair. Anonymous requests
//! (forwarded only when `auth.anonymous = "forward"`) go out unsigned, so the backend
//! treats them as it treats anyone on the network.
//!
//! One [`BackendSigner`] per distinct key pair, built at startup: each caches its day's
//! signing key, which a signer per request would derive again every time.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::CredentialEntry;

use super::sign::BackendSigner;

/// The identity one backend request is sent as.
#[derive(Debug, Clone)]
pub enum BackendIdentity {
    /// Signed with SigV4 and this key pair.
    Signed(Arc<BackendSigner>),
    /// Sent without any signature: the backend's anonymous user.
    Anonymous,
}

impl BackendIdentity {
    /// The backend access key, or `None` for the anonymous identity (logs and tests).
    pub fn access_key(&self) -> Option<&str> {
        match self {
            BackendIdentity::Signed(s) => Some(s.access_key()),
            BackendIdentity::Anonymous => None,
        }
    }
}

/// Client access key → backend identity, with `[backend]`'s as the default.
#[derive(Debug, Clone)]
pub struct BackendIdentities {
    default: Arc<BackendSigner>,
    by_client: HashMap<String, Arc<BackendSigner>>,
}

impl BackendIdentities {
    /// The table for `entries`; `default` is `[backend]`'s signer, whose region every
    /// identity signs for. Clients naming the same backend pair share one signer (and
    /// so its cached day key), the default's included.
    pub fn new(default: Arc<BackendSigner>, entries: &[CredentialEntry]) -> BackendIdentities {
        let mut signers: Vec<Arc<BackendSigner>> = vec![default.clone()];
        let mut by_client = HashMap::new();
        for entry in entries {
            let Some((access_key, secret_key)) = entry.backend_pair() else {
                continue;
            };
            let signer = match signers
                .iter()
                .find(|s| s.has_credentials(access_key, secret_key))
            {
                Some(s) => s.clone(),
                None => {
                    let s = Arc::new(BackendSigner::new(access_key, secret_key, default.region()));
                    signers.push(s.clone());
                    s
                }
            };
            by_client.insert(entry.access_key.clone(), signer);
        }
        BackendIdentities { default, by_client }
    }

    /// The identity requests verified with `client_access_key` are sent as.
    pub fn for_client(&self, client_access_key: &str) -> BackendIdentity {
        let signer = self
            .by_client
            .get(client_access_key)
            .unwrap_or(&self.default);
        BackendIdentity::Signed(signer.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(access_key: &str, backend: Option<(&str, &str)>) -> CredentialEntry {
        let mut e = CredentialEntry::new(access_key, "client-secret");
        if let Some((a, s)) = backend {
            e.backend_access_key = Some(a.into());
            e.backend_secret_key = Some(s.into());
        }
        e
    }

    fn signer_of(id: &BackendIdentity) -> &Arc<BackendSigner> {
        match id {
            BackendIdentity::Signed(s) => s,
            BackendIdentity::Anonymous => panic!("expected a signed identity"),
        }
    }

    #[test]
    fn clients_get_their_own_pair_or_the_default() {
        let default = Arc::new(BackendSigner::new("MAIN", "main-secret", "us-east-1"));
        let ids = BackendIdentities::new(
            default.clone(),
            &[
                entry("A", Some(("USERA", "a-secret"))),
                entry("B", Some(("USERB", "b-secret"))),
                entry("C", None),
            ],
        );
        assert_eq!(ids.for_client("A").access_key(), Some("USERA"));
        assert_eq!(ids.for_client("B").access_key(), Some("USERB"));
        // Unmapped, unknown (the sidecar case signs with the backend pair) → default.
        assert!(Arc::ptr_eq(signer_of(&ids.for_client("C")), &default));
        assert!(Arc::ptr_eq(signer_of(&ids.for_client("MAIN")), &default));
        assert_eq!(BackendIdentity::Anonymous.access_key(), None);
    }

    #[test]
    fn one_signer_per_distinct_pair() {
        let default = Arc::new(BackendSigner::new("MAIN", "main-secret", "us-east-1"));
        let ids = BackendIdentities::new(
            default.clone(),
            &[
                entry("A", Some(("USERA", "a-secret"))),
                entry("A2", Some(("USERA", "a-secret"))),
                entry("M", Some(("MAIN", "main-secret"))),
                // Same access key, another secret: another identity, not a shared one.
                entry("X", Some(("USERA", "other-secret"))),
            ],
        );
        let a = ids.for_client("A");
        assert!(Arc::ptr_eq(signer_of(&a), signer_of(&ids.for_client("A2"))));
        assert!(Arc::ptr_eq(signer_of(&ids.for_client("M")), &default));
        assert!(!Arc::ptr_eq(signer_of(&ids.for_client("X")), signer_of(&a)));
    }
}
