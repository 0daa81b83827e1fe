//! AwsKms over HTTPS: a KMS stand-in behind TLS with a certificate from a private CA
//! (made with the openssl CLI) is reached only when that CA is in `ca_bundle`.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use sealgate::kms::aws::{AwsCredentials, AwsKms, AwsKmsConfig};
use sealgate::kms::{Kms, KmsError};
use zeroize::Zeroizing;

fn openssl(dir: &Path, args: &[&str]) -> bool {
    Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// CA and a leaf for 127.0.0.1 signed by it; false when openssl is missing.
fn make_certs(dir: &Path) -> bool {
    let ext = "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n";
    std::fs::write(dir.join("leaf.ext"), ext).is_ok()
        && openssl(
            dir,
            &[
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-noout",
                "-out",
                "ca.key",
            ],
        )
        && openssl(
            dir,
            &[
                "req",
                "-x509",
                "-new",
                "-key",
                "ca.key",
                "-days",
                "2",
                "-subj",
                "/CN=sealgate test CA",
                "-out",
                "ca.pem",
            ],
        )
        && openssl(
            dir,
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
                "leaf.key",
            ],
        )
        && openssl(
            dir,
            &[
                "req",
                "-new",
                "-key",
                "leaf.key",
                "-subj",
                "/CN=127.0.0.1",
                "-out",
                "leaf.csr",
            ],
        )
        && openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                "leaf.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "leaf.ext",
                "-out",
                "leaf.pem",
            ],
        )
}

async fn start_tls_server(dir: &Path) -> std::net::SocketAddr {
    let Ok(cert_pem) = std::fs::read(dir.join("leaf.pem")) else {
        panic!("leaf.pem")
    };
    let Ok(key_pem) = std::fs::read(dir.join("leaf.key")) else {
        panic!("leaf.key")
    };
    let certs: Vec<_> = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .filter_map(Result::ok)
        .collect();
    let Ok(Some(key)) = rustls_pemfile::private_key(&mut key_pem.as_slice()) else {
        panic!("private key")
    };
    let Ok(config) = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
    else {
        panic!("server config")
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let Ok(listener) = tokio::net::TcpListener::bind("127.0.0.1:0").await else {
        panic!("bind")
    };
    let Ok(addr) = listener.local_addr() else {
        panic!("addr")
    };
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = service_fn(|_req| async {
                    let body = serde_json::json!({"KeyMetadata": {
                        "KeyId": "tls-key", "Arn": "arn:aws:kms:us-east-1:1:key/tls-key",
                        "Enabled": true, "KeyState": "Enabled"}});
                    Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from(
                        body.to_string(),
                    ))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    addr
}

fn kms(addr: std::net::SocketAddr, ca_bundle: Option<&Path>) -> AwsKms {
    let creds = AwsCredentials {
        access_key_id: "AKID".into(),
        secret_access_key: Zeroizing::new("secret".into()),
        session_token: None,
    };
    let mut config = AwsKmsConfig::new("us-east-1", creds);
    config.endpoint = Some(format!("https://{addr}"));
    config.max_retries = 0;
    config.timeout = Duration::from_secs(5);
    config.ca_bundle = ca_bundle.map(Path::to_path_buf);
    match AwsKms::new(config) {
        Ok(k) => k,
        Err(e) => panic!("AwsKms::new: {e}"),
    }
}

#[tokio::test]
async fn https_endpoint_is_trusted_only_with_its_ca() {
    let Ok(dir) = tempfile::tempdir() else {
        panic!("tempdir")
    };
    if !make_certs(dir.path()) {
        eprintln!("NOTICE: openssl CLI unavailable, skipping the HTTPS KMS test");
        return;
    }
    let addr = start_tls_server(dir.path()).await;

    let trusted = kms(addr, Some(&dir.path().join("ca.pem")));
    let info = trusted.describe_key("tls-key").await;
    assert_eq!(
        info.map(|i| i.key_id).ok().as_deref(),
        Some("arn:aws:kms:us-east-1:1:key/tls-key")
    );

    let untrusted = kms(addr, None);
    let err = untrusted.describe_key("tls-key").await.err();
    assert!(matches!(err, Some(KmsError::Unavailable(_))), "{err:?}");
}

#[test]
fn an_unreadable_ca_bundle_names_the_key() {
    let creds = AwsCredentials {
        access_key_id: "AKID".into(),
        secret_access_key: Zeroizing::new("secret".into()),
        session_token: None,
    };
    let mut config = AwsKmsConfig::new("us-east-1", creds);
    config.ca_bundle = Some("/nonexistent/ca.pem".into());
    let err = AwsKms::new(config).err().map(|e| e.to_string());
    assert!(err.is_some_and(|e| e.starts_with("kms.ca_bundle")));
}
