//! AwsKms against a fault-injecting stand-in for the KMS JSON API on 127.0.0.1:
//! 500s, 503s, throttling and slow answers are retried a bounded number of times;
//! every KMS error type maps to the right KmsError; requests have the AWS shape.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use sealgate::kms::aws::{AwsCredentials, AwsKms, AwsKmsConfig};
use sealgate::kms::{EncryptionContext, Kms, KmsError};
use zeroize::Zeroizing;

/// What the stand-in does with one request.
#[derive(Clone, Debug)]
enum Answer {
    /// A well-formed success for whatever operation was asked.
    Ok,
    /// This status with `{"__type": TYPE, "message": ...}` (TYPE may be empty: no JSON).
    Fail(u16, &'static str),
    /// Wait, then answer Ok.
    Slow(Duration),
}

#[derive(Clone, Debug)]
struct Seen {
    target: String,
    content_type: String,
    authorization: String,
    security_token: String,
    body: serde_json::Value,
}

#[derive(Default)]
struct Script {
    answers: VecDeque<Answer>,
    /// Used once `answers` is empty.
    otherwise: Option<Answer>,
    seen: Vec<Seen>,
}

struct StandIn {
    addr: SocketAddr,
    script: Arc<Mutex<Script>>,
}

impl StandIn {
    async fn start(answers: Vec<Answer>, otherwise: Answer) -> StandIn {
        let script = Arc::new(Mutex::new(Script {
            answers: answers.into(),
            otherwise: Some(otherwise),
            seen: Vec::new(),
        }));
        let Ok(listener) = tokio::net::TcpListener::bind("127.0.0.1:0").await else {
            panic!("bind")
        };
        let Ok(addr) = listener.local_addr() else {
            panic!("addr")
        };
        let shared = script.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let script = shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| answer(req, script.clone()));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        StandIn { addr, script }
    }

    fn kms(&self, max_retries: u32, timeout: Duration) -> AwsKms {
        self.kms_with_token(max_retries, timeout, None)
    }

    fn kms_with_token(&self, max_retries: u32, timeout: Duration, token: Option<&str>) -> AwsKms {
        let creds = AwsCredentials {
            access_key_id: "AKIDSTANDIN".into(),
            secret_access_key: Zeroizing::new("standin-secret".into()),
            session_token: token.map(|t| Zeroizing::new(t.to_string())),
        };
        let mut config = AwsKmsConfig::new("eu-west-3", creds);
        config.endpoint = Some(format!("http://{}", self.addr));
        config.max_retries = max_retries;
        config.timeout = timeout;
        config.backoff_base = Duration::from_millis(5);
        config.backoff_max = Duration::from_millis(20);
        match AwsKms::new(config) {
            Ok(kms) => kms,
            Err(e) => panic!("AwsKms::new: {e}"),
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.script
            .lock()
            .map(|s| s.seen.clone())
            .unwrap_or_default()
    }
}

async fn answer(
    req: Request<hyper::body::Incoming>,
    script: Arc<Mutex<Script>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let target = header("x-amz-target");
    let content_type = header("content-type");
    let authorization = header("authorization");
    let security_token = header("x-amz-security-token");
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let body = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    let next = {
        let Ok(mut s) = script.lock() else {
            panic!("script lock")
        };
        s.seen.push(Seen {
            target: target.clone(),
            content_type,
            authorization,
            security_token,
            body,
        });
        match s.answers.pop_front() {
            Some(a) => a,
            None => s.otherwise.clone().unwrap_or(Answer::Ok),
        }
    };
    let (status, text) = match next {
        Answer::Ok => (200, success_body(&target)),
        Answer::Slow(delay) => {
            tokio::time::sleep(delay).await;
            (200, success_body(&target))
        }
        Answer::Fail(status, "") => (status, "<html>oops</html>".to_string()),
        Answer::Fail(status, kind) => (
            status,
            serde_json::json!({"__type": kind, "message": "injected"}).to_string(),
        ),
    };
    let mut resp = Response::new(Full::new(Bytes::from(text)));
    *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
    Ok(resp)
}

const ARN: &str = "arn:aws:kms:eu-west-3:111122223333:key/standin";

fn success_body(target: &str) -> String {
    let key = B64.encode([0x42u8; 32]);
    match target {
        "TrentService.GenerateDataKey" => serde_json::json!({
            "CiphertextBlob": B64.encode(b"wrapped-blob"),
            "Plaintext": key,
            "KeyId": ARN,
        }),
        "TrentService.Decrypt" => serde_json::json!({
            "Plaintext": key, "KeyId": ARN, "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
        }),
        _ => serde_json::json!({
            "KeyMetadata": {"KeyId": "standin", "Arn": ARN, "Enabled": true, "KeyState": "Enabled"}
        }),
    }
    .to_string()
}

fn ctx() -> EncryptionContext {
    EncryptionContext::for_bucket("bucket")
}

#[tokio::test]
async fn requests_have_the_kms_json_shape_and_sigv4_signature() {
    let s = StandIn::start(vec![], Answer::Ok).await;
    let kms = s.kms(0, Duration::from_secs(5));
    let Ok(key) = kms.generate_data_key("alias/app", &ctx()).await else {
        panic!("generate")
    };
    assert_eq!(*key.plaintext, [0x42u8; 32]);
    assert_eq!(key.ciphertext_blob, b"wrapped-blob");
    assert_eq!(key.key_id, ARN);
    let Ok(plain) = kms.decrypt("alias/app", b"wrapped-blob", &ctx()).await else {
        panic!("decrypt")
    };
    assert_eq!(*plain, [0x42u8; 32]);
    let Ok(info) = kms.describe_key("alias/app").await else {
        panic!("describe")
    };
    assert!(info.is_enabled);
    assert_eq!(info.key_id, ARN);

    let seen = s.seen();
    let targets: Vec<&str> = seen.iter().map(|r| r.target.as_str()).collect();
    assert_eq!(
        targets,
        [
            "TrentService.GenerateDataKey",
            "TrentService.Decrypt",
            "TrentService.DescribeKey"
        ]
    );
    for r in &seen {
        assert_eq!(r.content_type, "application/x-amz-json-1.1");
        assert!(
            r.authorization
                .starts_with("AWS4-HMAC-SHA256 Credential=AKIDSTANDIN/")
                && r.authorization.contains("/eu-west-3/kms/aws4_request"),
            "{}",
            r.authorization
        );
        assert!(r.authorization.contains("x-amz-target"));
    }
    assert_eq!(seen[0].body["KeyId"], "alias/app");
    assert_eq!(seen[0].body["KeySpec"], "AES_256");
    assert_eq!(
        seen[0].body["EncryptionContext"]["aws:s3:arn"],
        "arn:aws:s3:::bucket"
    );
    assert_eq!(
        seen[1].body["CiphertextBlob"],
        B64.encode(b"wrapped-blob").as_str()
    );
    assert_eq!(
        seen[1].body["EncryptionContext"]["aws:s3:arn"],
        "arn:aws:s3:::bucket"
    );
}

#[tokio::test]
async fn transient_failures_are_retried_until_success() {
    let s = StandIn::start(
        vec![
            Answer::Fail(500, "KMSInternalException"),
            Answer::Fail(503, ""),
            Answer::Fail(400, "ThrottlingException"),
            Answer::Fail(429, ""),
        ],
        Answer::Ok,
    )
    .await;
    let kms = s.kms(4, Duration::from_secs(5));
    assert!(kms.generate_data_key("k", &ctx()).await.is_ok());
    assert_eq!(s.seen().len(), 5);
    assert_eq!(kms.attempts(), 5);
}

#[tokio::test]
async fn retries_are_bounded_and_errors_map() {
    let cases: [(Answer, &str, &str, u16); 4] = [
        (
            Answer::Fail(400, "ThrottlingException"),
            "throttled",
            "SlowDown",
            503,
        ),
        (
            Answer::Fail(500, "KMSInternalException"),
            "internal",
            "KMS.KMSInternalException",
            503,
        ),
        (
            Answer::Fail(503, ""),
            "unavailable",
            "ServiceUnavailable",
            503,
        ),
        (
            Answer::Fail(502, "ServiceUnavailableException"),
            "unavailable",
            "ServiceUnavailable",
            503,
        ),
    ];
    for (answer, metric, code, status) in cases {
        let s = StandIn::start(vec![], answer.clone()).await;
        let kms = s.kms(3, Duration::from_secs(5));
        let err = kms.decrypt("k", b"blob", &ctx()).await.err();
        let Some(err) = err else {
            panic!("{answer:?} succeeded")
        };
        assert_eq!(err.metric_result(), metric, "{answer:?}");
        assert_eq!(err.s3_code(), code);
        assert_eq!(err.status().as_u16(), status);
        assert_eq!(s.seen().len(), 4, "{answer:?}: 1 attempt + 3 retries");
    }
}

#[tokio::test]
async fn client_errors_are_not_retried_and_map_as_s3_does() {
    let cases: [(u16, &str, &str, u16); 7] = [
        (400, "NotFoundException", "KMS.NotFoundException", 400),
        (400, "DisabledException", "KMS.DisabledException", 400),
        (
            400,
            "KMSInvalidStateException",
            "KMS.KMSInvalidStateException",
            400,
        ),
        (
            400,
            "InvalidCiphertextException",
            "KMS.InvalidCiphertextException",
            400,
        ),
        (
            400,
            "IncorrectKeyException",
            "KMS.InvalidCiphertextException",
            400,
        ),
        (400, "AccessDeniedException", "AccessDenied", 403),
        (403, "UnrecognizedClientException", "AccessDenied", 403),
    ];
    for (http_status, kind, code, status) in cases {
        let s = StandIn::start(vec![], Answer::Fail(http_status, kind)).await;
        let kms = s.kms(3, Duration::from_secs(5));
        let Some(err) = kms.decrypt("k", b"blob", &ctx()).await.err() else {
            panic!("{kind} succeeded")
        };
        assert_eq!(
            (err.s3_code(), err.status().as_u16()),
            (code, status),
            "{kind}"
        );
        assert_eq!(s.seen().len(), 1, "{kind} must not be retried");
    }
}

#[tokio::test]
async fn slow_answers_time_out_and_retries_are_bounded() {
    let s = StandIn::start(vec![], Answer::Slow(Duration::from_secs(30))).await;
    let kms = s.kms(2, Duration::from_millis(150));
    let started = Instant::now();
    let err = kms.generate_data_key("k", &ctx()).await.err();
    let elapsed = started.elapsed();
    assert!(matches!(err, Some(KmsError::Timeout)), "{err:?}");
    assert_eq!(err.map(|e| e.s3_code()), Some("ServiceUnavailable"));
    // 3 attempts of 150 ms plus at most 5 + 10 ms of backoff.
    assert!(
        elapsed >= Duration::from_millis(450) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
    assert_eq!(s.seen().len(), 3);
}

#[tokio::test]
async fn one_slow_answer_is_retried() {
    let s = StandIn::start(vec![Answer::Slow(Duration::from_secs(30))], Answer::Ok).await;
    let kms = s.kms(2, Duration::from_millis(150));
    assert!(kms.generate_data_key("k", &ctx()).await.is_ok());
    assert_eq!(s.seen().len(), 2);
}

#[tokio::test]
async fn unreachable_endpoint_is_unavailable_after_bounded_retries() {
    // Bind and drop a listener so the port is (almost certainly) closed.
    let addr = {
        let Ok(l) = std::net::TcpListener::bind("127.0.0.1:0") else {
            panic!("bind")
        };
        l.local_addr().ok()
    };
    let Some(addr) = addr else { panic!("addr") };
    let creds = AwsCredentials {
        access_key_id: "AKID".into(),
        secret_access_key: Zeroizing::new("secret".into()),
        session_token: None,
    };
    let mut config = AwsKmsConfig::new("us-east-1", creds);
    config.endpoint = Some(format!("http://{addr}"));
    config.max_retries = 2;
    config.backoff_base = Duration::from_millis(1);
    let Ok(kms) = AwsKms::new(config) else {
        panic!("new")
    };
    let err = kms.describe_key("k").await.err();
    assert!(matches!(err, Some(KmsError::Unavailable(_))), "{err:?}");
    // The message carries the cause, not just hyper's "client error (Connect)".
    assert!(
        err.is_some_and(|e| e.to_string().to_lowercase().contains("refused")),
        "cause missing"
    );
    assert_eq!(kms.attempts(), 3);
}

#[test]
fn bad_endpoints_are_refused_naming_the_key() {
    let creds = AwsCredentials {
        access_key_id: "AKID".into(),
        secret_access_key: Zeroizing::new("secret".into()),
        session_token: None,
    };
    let mut config = AwsKmsConfig::new("us-east-1", creds);
    config.endpoint = Some("ftp://kms.example".into());
    let err = AwsKms::new(config).err().map(|e| e.to_string());
    assert!(err.is_some_and(|e| e.starts_with("kms.endpoint")));
}

#[tokio::test]
async fn session_tokens_are_sent_and_signed() {
    let s = StandIn::start(vec![], Answer::Ok).await;
    let kms = s.kms_with_token(0, Duration::from_secs(5), Some("session-token-value"));
    assert!(kms.describe_key("k").await.is_ok());
    let seen = s.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].security_token, "session-token-value");
    assert!(seen[0].authorization.contains("x-amz-security-token"));
    // Without a token, no header.
    let s = StandIn::start(vec![], Answer::Ok).await;
    assert!(
        s.kms(0, Duration::from_secs(5))
            .describe_key("k")
            .await
            .is_ok()
    );
    assert_eq!(s.seen()[0].security_token, "");
}
