//! The signature of a browser form upload (S3 PostObject): the client signs the
//! base64 policy document, not the request, so the proxy checks it with the client's
//! secret here, where secrets live.
//!
//! SigV4: `x-amz-signature` = hex HMAC-SHA256 of the base64 policy under the signing
//! key of `x-amz-credential`'s scope. SigV2: `signature` = base64 HMAC-SHA1 of the
//! base64 policy under the secret itself.
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-authentication-HTTPPOST.html>
//! <https://docs.aws.amazon.com/AmazonS3/latest/userguide/HTTPPOSTForms.html>

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::error::AuthError;
use super::signing::{self, SigningKey};
use super::sigv4::Credential;
use super::{AuthMethod, CredentialStore};

/// The signature fields of a form, as sent.
#[derive(Debug, Clone, Copy)]
pub enum FormSignature<'a> {
    V4 {
        /// `x-amz-algorithm`.
        algorithm: &'a str,
        /// `x-amz-credential`: `AK/YYYYMMDD/region/s3/aws4_request`.
        credential: &'a str,
        /// `x-amz-signature`, hex.
        signature: &'a str,
    },
    V2 {
        /// `AWSAccessKeyId`.
        access_key: &'a str,
        /// `signature`, base64.
        signature: &'a str,
    },
}

/// Checks `signature` over `policy_b64` (the policy field exactly as sent); returns the
/// access key that signed it.
pub fn verify(
    credentials: &CredentialStore,
    allow_sigv2: bool,
    policy_b64: &str,
    signature: FormSignature<'_>,
) -> Result<(String, AuthMethod), AuthError> {
    match signature {
        FormSignature::V4 {
            algorithm,
            credential,
            signature,
        } => {
            if algorithm != signing::ALGORITHM {
                return Err(AuthError::InvalidArgument(
                    "Only AWS4-HMAC-SHA256 is supported as x-amz-algorithm.",
                ));
            }
            let cred = Credential::parse(credential).ok_or(AuthError::InvalidArgument(
                "Invalid x-amz-credential: expecting AK/YYYYMMDD/REGION/s3/aws4_request.",
            ))?;
            if cred.service != "s3" || cred.terminal != "aws4_request" {
                return Err(AuthError::InvalidArgument(
                    "Invalid x-amz-credential: expecting AK/YYYYMMDD/REGION/s3/aws4_request.",
                ));
            }
            let secret = credentials
                .secret(cred.access_key)
                .ok_or(AuthError::UnknownAccessKey)?;
            let provided =
                signing::parse_signature_hex(signature).ok_or(AuthError::SignatureMismatch)?;
            let key = SigningKey::derive(secret, cred.date, cred.region, cred.service);
            if !signing::signatures_equal(&key.sign(policy_b64.as_bytes()), &provided) {
                return Err(AuthError::SignatureMismatch);
            }
            Ok((cred.access_key.to_string(), AuthMethod::SigV4Header))
        }
        FormSignature::V2 { .. } if !allow_sigv2 => Err(AuthError::SigV2Disabled),
        FormSignature::V2 {
            access_key,
            signature,
        } => {
            let secret = credentials
                .secret(access_key)
                .ok_or(AuthError::UnknownAccessKey)?;
            let provided = BASE64
                .decode(signature.trim())
                .map_err(|_| AuthError::SignatureMismatch)?;
            let expected = super::sigv2::raw_sign(secret, policy_b64);
            if !signing::signatures_equal(&expected, &provided) {
                return Err(AuthError::SignatureMismatch);
            }
            Ok((access_key.to_string(), AuthMethod::SigV2Header))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::{KeyInit as _, Mac as _};

    const AK: &str = "AKIAIOSFODNN7EXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    const POLICY: &str = "eyAiZXhwaXJhdGlvbiI6ICIyMDE1LTEyLTMwVDEyOjAwOjAwLjAwMFoiLA0KICAiY29uZGl0aW9ucyI6IFsNCiAgICB7ImJ1Y2tldCI6ICJzaWd2NGV4YW1wbGVidWNrZXQifV0NCn0=";

    fn store() -> CredentialStore {
        CredentialStore::new([(AK.to_string(), SECRET.to_string())])
    }

    /// The SigV4 signature computed independently of `signing`: the HMAC chain by hand.
    fn v4_by_hand(secret: &str, date: &str, region: &str, policy: &str) -> String {
        fn mac(key: &[u8], data: &[u8]) -> Vec<u8> {
            let mut m =
                hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
        let k = mac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
        let k = mac(&k, region.as_bytes());
        let k = mac(&k, b"s3");
        let k = mac(&k, b"aws4_request");
        hex::encode(mac(&k, policy.as_bytes()))
    }

    #[test]
    fn v4_policy_signature_verifies() {
        let sig = v4_by_hand(SECRET, "20151229", "us-east-1", POLICY);
        let cred = format!("{AK}/20151229/us-east-1/s3/aws4_request");
        let ok = verify(
            &store(),
            false,
            POLICY,
            FormSignature::V4 {
                algorithm: "AWS4-HMAC-SHA256",
                credential: &cred,
                signature: &sig,
            },
        );
        assert_eq!(ok, Ok((AK.to_string(), AuthMethod::SigV4Header)));
        // One character of the policy changed: no longer signed.
        let tampered = POLICY.replacen('e', "f", 1);
        let bad = verify(
            &store(),
            false,
            &tampered,
            FormSignature::V4 {
                algorithm: "AWS4-HMAC-SHA256",
                credential: &cred,
                signature: &sig,
            },
        );
        assert_eq!(bad, Err(AuthError::SignatureMismatch));
        // Another region is another key.
        let other = format!("{AK}/20151229/eu-west-1/s3/aws4_request");
        let bad = verify(
            &store(),
            false,
            POLICY,
            FormSignature::V4 {
                algorithm: "AWS4-HMAC-SHA256",
                credential: &other,
                signature: &sig,
            },
        );
        assert_eq!(bad, Err(AuthError::SignatureMismatch));
    }

    #[test]
    fn v4_refuses_unknown_keys_algorithms_and_scopes() {
        let sig = v4_by_hand(SECRET, "20151229", "us-east-1", POLICY);
        let v4 = |algorithm: &str, credential: &str| {
            verify(
                &store(),
                false,
                POLICY,
                FormSignature::V4 {
                    algorithm,
                    credential,
                    signature: &sig,
                },
            )
        };
        assert_eq!(
            v4(
                "AWS4-HMAC-SHA256",
                "NOPE/20151229/us-east-1/s3/aws4_request"
            ),
            Err(AuthError::UnknownAccessKey)
        );
        assert!(matches!(
            v4(
                "AWS4-HMAC-SHA1",
                &format!("{AK}/20151229/us-east-1/s3/aws4_request")
            ),
            Err(AuthError::InvalidArgument(_))
        ));
        assert!(matches!(
            v4(
                "AWS4-HMAC-SHA256",
                &format!("{AK}/20151229/us-east-1/ec2/aws4_request")
            ),
            Err(AuthError::InvalidArgument(_))
        ));
        assert!(matches!(
            v4("AWS4-HMAC-SHA256", "garbage"),
            Err(AuthError::InvalidArgument(_))
        ));
    }

    #[test]
    fn v2_policy_signature_verifies_when_allowed() {
        // Computed with sha1 + hmac directly, as s3-tests does in Python.
        let mut m = hmac::Hmac::<sha1::Sha1>::new_from_slice(SECRET.as_bytes())
            .unwrap_or_else(|_| unreachable!());
        m.update(POLICY.as_bytes());
        let sig = BASE64.encode(m.finalize().into_bytes());
        let v2 = |allow, signature: &str| {
            verify(
                &store(),
                allow,
                POLICY,
                FormSignature::V2 {
                    access_key: AK,
                    signature,
                },
            )
        };
        assert_eq!(
            v2(true, &sig),
            Ok((AK.to_string(), AuthMethod::SigV2Header))
        );
        assert_eq!(v2(false, &sig), Err(AuthError::SigV2Disabled));
        let mut bad = sig.clone().into_bytes();
        bad[0] = if bad[0] == b'A' { b'B' } else { b'A' };
        let bad = String::from_utf8(bad).unwrap_or_default();
        assert_eq!(v2(true, &bad), Err(AuthError::SignatureMismatch));
        assert_eq!(v2(true, "not base64!"), Err(AuthError::SignatureMismatch));
        let unknown = verify(
            &store(),
            true,
            POLICY,
            FormSignature::V2 {
                access_key: "NOPE",
                signature: &sig,
            },
        );
        assert_eq!(unknown, Err(AuthError::UnknownAccessKey));
    }
}
