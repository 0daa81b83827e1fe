//! The start-up banner: where to point a client and with which keys.

use crate::server::Endpoints;

/// The text printed when the proxy is ready.
pub fn render(e: &Endpoints) -> String {
    let scheme = if e.tls { "https" } else { "http" };
    let host = if e.s3.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        e.s3.ip().to_string()
    };
    let url = format!("{scheme}://{host}:{}", e.s3.port());
    let mut out = String::new();
    out.push_str(&format!(
        "sealgate {} is ready\n",
        env!("CARGO_PKG_VERSION")
    ));
    out.push_str(&format!("  S3 endpoint:  {url}\n"));
    if let Some(h) = e.s3_http {
        out.push_str(&format!("  S3 (http):    http://{h}\n"));
    }
    out.push_str(&format!(
        "  admin:        http://{}/metrics  /healthz  /readyz\n",
        e.admin
    ));
    // Only the embedded default's generated secret is shown: a configured secret belongs
    // to its owner and must not end up in logs that capture this banner.
    let secret = if e.embedded_data_dir.is_some() {
        e.client_secret_key.as_str()
    } else {
        "(as configured)"
    };
    out.push_str(&format!("  access key:   {}\n", e.client_access_key));
    out.push_str(&format!("  secret key:   {secret}\n"));
    match &e.embedded_data_dir {
        Some(dir) => out.push_str(&format!(
            "  backend:      embedded, data in {}\n",
            dir.display()
        )),
        None => out.push_str(&format!("  backend:      {}\n", e.backend_endpoint)),
    }
    out.push_str("\nTry it:\n");
    if e.embedded_data_dir.is_some() {
        out.push_str(&format!(
            "  export AWS_ACCESS_KEY_ID={} AWS_SECRET_ACCESS_KEY={secret} AWS_DEFAULT_REGION=us-east-1\n",
            e.client_access_key
        ));
    } else {
        out.push_str(&format!(
            "  export AWS_ACCESS_KEY_ID={} AWS_SECRET_ACCESS_KEY=... AWS_DEFAULT_REGION=us-east-1\n",
            e.client_access_key
        ));
    }
    out.push_str(&format!("  aws --endpoint-url {url} s3 mb s3://demo\n"));
    out.push_str(&format!(
        "  aws --endpoint-url {url} s3 cp README.md s3://demo/README.md\n"
    ));
    out.push_str(&format!(
        "  aws --endpoint-url {url} s3 cp s3://demo/README.md -\n"
    ));
    out
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn endpoints(embedded: bool) -> Endpoints {
        Endpoints {
            s3: "127.0.0.1:8333".parse().unwrap(),
            s3_http: None,
            admin: "127.0.0.1:9333".parse().unwrap(),
            tls: false,
            client_access_key: "AKEXAMPLE".into(),
            client_secret_key: "very-secret-value".into(),
            embedded_data_dir: embedded.then(|| PathBuf::from(".sealgate-data")),
            backend_endpoint: "http://127.0.0.1:7480".into(),
        }
    }

    #[test]
    fn only_the_generated_embedded_secret_is_printed() {
        let embedded = render(&endpoints(true));
        assert!(embedded.contains("very-secret-value"), "{embedded}");
        assert!(embedded.contains("AWS_SECRET_ACCESS_KEY=very-secret-value"));
        let gateway = render(&endpoints(false));
        assert!(!gateway.contains("very-secret-value"), "{gateway}");
        assert!(gateway.contains("AKEXAMPLE"));
    }
}
