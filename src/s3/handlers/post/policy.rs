//! The POST policy: a base64 JSON document with an `expiration` and a list of
//! `conditions` every form field must satisfy. The signature covers the policy, the
//! policy covers the fields; a field no condition names could have been added by anyone
//! holding the form, so it is refused.
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-HTTPPOSTConstructPolicy.html>

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::s3::error::S3Error;

/// Form fields that no condition needs to name: the signature and the policy itself,
/// the file, and the `x-ignore-` fields S3 ignores.
const EXEMPT: [&str; 5] = [
    "x-amz-signature",
    "signature",
    "awsaccesskeyid",
    "file",
    "policy",
];

/// One condition, field names lower-cased (they match case-insensitively).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    Eq { field: String, value: String },
    StartsWith { field: String, prefix: String },
    LengthRange { min: u64, max: u64 },
}

/// A decoded, well-formed policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub expiration: OffsetDateTime,
    pub conditions: Vec<Condition>,
}

fn invalid(why: &str) -> S3Error {
    S3Error::new(
        "InvalidPolicyDocument",
        http::StatusCode::BAD_REQUEST,
        format!("Invalid Policy: {why}"),
    )
}

fn denied(why: String) -> S3Error {
    S3Error::access_denied(format!("Invalid according to Policy: {why}"))
}

impl Policy {
    /// Decodes the `policy` field: base64 of a JSON object with `expiration` (ISO 8601)
    /// and `conditions` (a list); both names are case-sensitive, as in S3.
    pub fn parse(policy_b64: &str) -> Result<Policy, S3Error> {
        let json = BASE64
            .decode(policy_b64.trim())
            .map_err(|_| invalid("Invalid Base64 Encoding."))?;
        let doc: Value = serde_json::from_slice(&json).map_err(|_| invalid("Invalid JSON."))?;
        let Value::Object(doc) = doc else {
            return Err(invalid("Invalid JSON."));
        };
        let expiration = match doc.get("expiration") {
            // ISO 8601 as S3 writes it (`2026-12-03T12:00:00.000Z`); RFC 3339 alone
            // would also take a space for the `T`.
            Some(Value::String(s)) if s.as_bytes().get(10) == Some(&b'T') => {
                OffsetDateTime::parse(s, &Rfc3339)
                    .map_err(|_| invalid(&format!("Invalid 'expiration' value: '{s}'")))?
            }
            Some(_) => return Err(invalid("Invalid 'expiration' value.")),
            None => return Err(invalid("Policy missing expiration.")),
        };
        let Some(Value::Array(list)) = doc.get("conditions") else {
            return Err(invalid("Policy missing conditions."));
        };
        let mut conditions = Vec::new();
        for c in list {
            parse_condition(c, &mut conditions)?;
        }
        Ok(Policy {
            expiration,
            conditions,
        })
    }

    /// Checks the policy against the form: not expired, every condition holds, every
    /// field (and the bucket) named by some condition, the file size within range.
    /// `fields` are (name, value) as sent, the key with `${filename}` already replaced.
    pub fn check(
        &self,
        now: OffsetDateTime,
        bucket: &str,
        fields: &[(String, String)],
        file_len: u64,
    ) -> Result<(), S3Error> {
        if now > self.expiration {
            return Err(denied("Policy expired.".into()));
        }
        let value_of = |name: &str| -> Option<&str> {
            if name == "bucket" {
                return Some(bucket);
            }
            fields
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        for c in &self.conditions {
            let holds = match c {
                Condition::Eq { field, value } => value_of(field) == Some(value.as_str()),
                Condition::StartsWith { field, prefix } => match value_of(field) {
                    // Content-Type may list several types; each must match.
                    Some(v) if field == "content-type" => v
                        .split(',')
                        .all(|t| t.trim_start().starts_with(prefix.as_str())),
                    Some(v) => v.starts_with(prefix.as_str()),
                    None => false,
                },
                Condition::LengthRange { min, max } => {
                    if file_len > *max {
                        return Err(S3Error::entity_too_large(
                            "Your proposed upload exceeds the maximum allowed size",
                        )
                        .with_extra("ProposedSize", file_len.to_string())
                        .with_extra("MaxSizeAllowed", max.to_string()));
                    }
                    if file_len < *min {
                        return Err(S3Error::new(
                            "EntityTooSmall",
                            http::StatusCode::BAD_REQUEST,
                            "Your proposed upload is smaller than the minimum allowed size",
                        )
                        .with_extra("ProposedSize", file_len.to_string())
                        .with_extra("MinSizeAllowed", min.to_string()));
                    }
                    true
                }
            };
            if !holds {
                return Err(denied(format!("Policy Condition failed: {}", describe(c))));
            }
        }
        let covered = |name: &str| {
            self.conditions.iter().any(|c| match c {
                Condition::Eq { field, .. } | Condition::StartsWith { field, .. } => {
                    field.eq_ignore_ascii_case(name)
                }
                Condition::LengthRange { .. } => false,
            })
        };
        if !covered("bucket") {
            return Err(denied(
                "Policy Condition failed: [\"eq\", \"$bucket\"]".into(),
            ));
        }
        for (name, _) in fields {
            let lower = name.to_ascii_lowercase();
            if EXEMPT.contains(&lower.as_str()) || lower.starts_with("x-ignore-") {
                continue;
            }
            if !covered(&lower) {
                return Err(denied(format!("Extra input fields: {name}")));
            }
        }
        Ok(())
    }
}

fn describe(c: &Condition) -> String {
    match c {
        Condition::Eq { field, value } => format!("[\"eq\", \"${field}\", \"{value}\"]"),
        Condition::StartsWith { field, prefix } => {
            format!("[\"starts-with\", \"${field}\", \"{prefix}\"]")
        }
        Condition::LengthRange { min, max } => {
            format!("[\"content-length-range\", {min}, {max}]")
        }
    }
}

fn parse_condition(c: &Value, out: &mut Vec<Condition>) -> Result<(), S3Error> {
    match c {
        // `{"field": "value"}`: exact match.
        Value::Object(map) => {
            if map.is_empty() {
                return Err(invalid(
                    "Invalid Policy: Invalid Simple-Condition: Simple-Conditions must have exactly one property specified.",
                ));
            }
            for (field, value) in map {
                let Value::String(value) = value else {
                    return Err(invalid("Invalid Simple-Condition: value must be a string."));
                };
                out.push(Condition::Eq {
                    field: field.trim_start_matches('$').to_ascii_lowercase(),
                    value: value.clone(),
                });
            }
            Ok(())
        }
        Value::Array(items) => {
            let op = match items.first() {
                Some(Value::String(op)) => op.to_ascii_lowercase(),
                _ => return Err(invalid("Invalid condition operator.")),
            };
            if items.len() != 3 {
                return Err(invalid(&format!(
                    "Invalid '{op}' condition: it must have exactly 3 elements."
                )));
            }
            match op.as_str() {
                "eq" | "starts-with" => {
                    let (Value::String(field), Value::String(value)) = (&items[1], &items[2])
                    else {
                        return Err(invalid(&format!(
                            "Invalid '{op}' condition: field and value must be strings."
                        )));
                    };
                    let Some(field) = field.strip_prefix('$') else {
                        return Err(invalid(&format!(
                            "Invalid '{op}' condition: the field name must start with '$'."
                        )));
                    };
                    let field = field.to_ascii_lowercase();
                    out.push(if op == "eq" {
                        Condition::Eq {
                            field,
                            value: value.clone(),
                        }
                    } else {
                        Condition::StartsWith {
                            field,
                            prefix: value.clone(),
                        }
                    });
                    Ok(())
                }
                "content-length-range" => {
                    let (Some(min), Some(max)) = (length(&items[1]), length(&items[2])) else {
                        return Err(invalid(
                            "Invalid 'content-length-range' condition: bounds must be integers from 0.",
                        ));
                    };
                    out.push(Condition::LengthRange { min, max });
                    Ok(())
                }
                _ => Err(invalid(&format!("Invalid condition operator: '{op}'."))),
            }
        }
        _ => Err(invalid("Invalid condition: must be an object or a list.")),
    }
}

/// A non-negative integer, as a JSON number or a string of digits.
fn length(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(json: &str) -> String {
        BASE64.encode(json)
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::parse("2026-12-03T12:00:00Z", &Rfc3339).unwrap_or_else(|_| unreachable!())
    }

    fn policy(conditions: &str) -> Policy {
        let json =
            format!(r#"{{"expiration": "2026-12-04T00:00:00.000Z", "conditions": {conditions}}}"#);
        match Policy::parse(&b64(&json)) {
            Ok(p) => p,
            Err(e) => panic!("policy parses: {}", e.message),
        }
    }

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    fn code(r: Result<(), S3Error>) -> String {
        r.err().map(|e| e.code.into_owned()).unwrap_or_default()
    }

    #[test]
    fn every_condition_type_holds_or_fails() {
        let p = policy(
            r#"[{"bUcKeT": "b"}, ["StArTs-WiTh", "$KeY", "user/"], ["eq", "$acl", "private"],
                ["starts-with", "$Content-Type", "image/"], ["starts-with", "$x-amz-meta-tag", ""],
                ["content-length-range", 1, 10]]"#,
        );
        let good = fields(&[
            ("kEy", "user/a.jpg"),
            ("ACL", "private"),
            ("Content-Type", "image/jpeg, image/png"),
            ("x-amz-meta-tag", "anything"),
            ("x-ignore-me", "ok"),
            ("policy", "…"),
            ("X-Amz-Signature", "…"),
        ]);
        assert_eq!(code(p.check(now(), "b", &good, 5)), "");
        assert_eq!(code(p.check(now(), "other", &good, 5)), "AccessDenied");
        let mut wrong_key = good.clone();
        wrong_key[0].1 = "admin/a.jpg".into();
        assert_eq!(code(p.check(now(), "b", &wrong_key, 5)), "AccessDenied");
        let mut wrong_acl = good.clone();
        wrong_acl[1].1 = "public-read".into();
        assert_eq!(code(p.check(now(), "b", &wrong_acl, 5)), "AccessDenied");
        let mut one_bad_type = good.clone();
        one_bad_type[2].1 = "image/jpeg, text/html".into();
        assert_eq!(code(p.check(now(), "b", &one_bad_type, 5)), "AccessDenied");
        let missing_field = fields(&[
            ("key", "user/a"),
            ("acl", "private"),
            ("content-type", "image/x"),
        ]);
        assert_eq!(code(p.check(now(), "b", &missing_field, 5)), "AccessDenied");
        assert_eq!(code(p.check(now(), "b", &good, 11)), "EntityTooLarge");
        assert_eq!(code(p.check(now(), "b", &good, 0)), "EntityTooSmall");
        assert_eq!(code(p.check(now(), "b", &good, 10)), "");
        assert_eq!(code(p.check(now(), "b", &good, 1)), "");
    }

    #[test]
    fn extra_fields_and_an_uncovered_bucket_are_refused() {
        let p = policy(r#"[{"bucket": "b"}, {"key": "k"}]"#);
        assert_eq!(code(p.check(now(), "b", &fields(&[("key", "k")]), 0)), "");
        let extra = p.check(
            now(),
            "b",
            &fields(&[("key", "k"), ("x-amz-meta-a", "1")]),
            0,
        );
        let e = extra.err().unwrap_or_else(|| S3Error::internal_error(""));
        assert_eq!(e.code, "AccessDenied");
        assert_eq!(
            e.message,
            "Invalid according to Policy: Extra input fields: x-amz-meta-a"
        );
        let no_bucket = policy(r#"[{"key": "k"}]"#);
        assert_eq!(
            code(no_bucket.check(now(), "b", &fields(&[("key", "k")]), 0)),
            "AccessDenied"
        );
    }

    #[test]
    fn an_expired_policy_is_refused() {
        let p = policy(r#"[{"bucket": "b"}]"#);
        let later = OffsetDateTime::parse("2026-12-04T00:00:01Z", &Rfc3339)
            .unwrap_or_else(|_| unreachable!());
        let e = p
            .check(later, "b", &[], 0)
            .err()
            .unwrap_or_else(|| S3Error::internal_error(""));
        assert_eq!(e.code, "AccessDenied");
        assert_eq!(e.message, "Invalid according to Policy: Policy expired.");
    }

    #[test]
    fn malformed_policies_are_invalid_documents() {
        let bad = [
            "not base64!".to_string(),
            b64("not json"),
            b64("[]"),
            b64(r#"{"conditions": []}"#),
            b64(r#"{"EXPIRATION": "2026-12-04T00:00:00Z", "conditions": []}"#),
            b64(r#"{"expiration": "2026-12-04 00:00:00.123+00:00", "conditions": []}"#),
            b64(r#"{"expiration": "2026-12-04T00:00:00Z"}"#),
            b64(r#"{"expiration": "2026-12-04T00:00:00Z", "CONDITIONS": []}"#),
            b64(r#"{"expiration": "2026-12-04T00:00:00Z", "conditions": [{}]}"#),
            b64(
                r#"{"expiration": "2026-12-04T00:00:00Z", "conditions": [["content-length-range", 0]]}"#,
            ),
            b64(
                r#"{"expiration": "2026-12-04T00:00:00Z", "conditions": [["content-length-range", -1, 0]]}"#,
            ),
            b64(r#"{"expiration": "2026-12-04T00:00:00Z", "conditions": [["eq", "key", "k"]]}"#),
            b64(
                r#"{"expiration": "2026-12-04T00:00:00Z", "conditions": [["between", "$key", "k"]]}"#,
            ),
            b64(r#"{"expiration": "2026-12-04T00:00:00Z", "conditions": [{"key": 1}]}"#),
            b64(r#"{"expiration": "2026-12-04T00:00:00Z", "conditions": ["key"]}"#),
        ];
        for b in bad {
            let e = Policy::parse(&b).err().map(|e| e.code.into_owned());
            assert_eq!(e.as_deref(), Some("InvalidPolicyDocument"), "{b}");
        }
        let ok = Policy::parse(&b64(
            r#"{"expiration": "2026-12-04T00:00:00Z", "conditions": [["content-length-range", "0", "5"]], "other": 1}"#,
        ));
        assert_eq!(
            ok.ok().map(|p| p.conditions),
            Some(vec![Condition::LengthRange { min: 0, max: 5 }])
        );
    }
}
