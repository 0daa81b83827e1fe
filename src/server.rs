//! Listeners, connection handling and the lifecycle of a running proxy.
//!
//! [`start`] binds every listener and returns a [`Running`] handle; tests call it
//! in-process with port 0 and read the bound addresses back. Shutdown stops accepting,
//! lets in-flight requests finish within the grace period, then closes what is left.

pub mod admin;
pub mod limits;
pub mod listener;
pub mod shards;
pub mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::auth::CredentialStore;
use crate::cache::{BucketKeyCache, CacheConfig, CacheMetrics};
use crate::config::Config;
use crate::embedded::EmbeddedBackend;
use crate::metrics::Metrics;
use crate::service::AppState;
use crate::upstream::Backend;

/// What a started proxy tells its caller.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// The S3 listener (HTTPS when TLS is configured).
    pub s3: SocketAddr,
    /// The extra plain-HTTP S3 listener, when configured beside HTTPS.
    pub s3_http: Option<SocketAddr>,
    /// The admin listener.
    pub admin: SocketAddr,
    /// True when `s3` speaks HTTPS.
    pub tls: bool,
    /// Credentials clients may sign with (the first configured pair, or the backend's).
    pub client_access_key: String,
    pub client_secret_key: String,
    /// Data directory of the embedded backend, when it serves.
    pub embedded_data_dir: Option<PathBuf>,
    /// The backend requests go to.
    pub backend_endpoint: String,
}

/// A running proxy.
pub struct Running {
    pub endpoints: Endpoints,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    embedded: Option<EmbeddedBackend>,
    shards: Option<Arc<shards::Shards>>,
    pub metrics: Arc<Metrics>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(String),
    #[error("{what} {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Embedded(#[from] crate::embedded::EmbeddedError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("cannot start the serving threads: {0}")]
    Shards(std::io::Error),
}

/// Everything a request needs, built from the config, and the embedded backend when it
/// serves (kept alive by the caller). `serve` and the bulk commands (`rewrap`,
/// `migrate`) share it, so they reach the backend and the KMS exactly alike.
pub struct Built {
    pub state: Arc<AppState>,
    pub embedded: Option<EmbeddedBackend>,
    /// Credentials clients may sign with (the first configured pair, or the backend's).
    pub client_access_key: String,
    pub client_secret_key: String,
    pub backend_endpoint: String,
}

/// Starts the embedded backend if configured and builds the shared [`AppState`].
pub async fn build_state(config: Config) -> Result<Built, StartError> {
    install_crypto_provider();
    let config = Arc::new(config);
    let embedded = match config.backend.endpoint {
        None => Some(EmbeddedBackend::start(&config.embedded.data_dir).await?),
        Some(_) => None,
    };
    let (endpoint, access_key, secret_key) = match (&embedded, &config.backend) {
        (Some(e), _) => (
            e.endpoint.clone(),
            e.access_key.clone(),
            e.secret_key.clone(),
        ),
        (None, b) => (
            b.endpoint.clone().unwrap_or_default(),
            b.access_key.clone().unwrap_or_default(),
            b.secret_key.clone().unwrap_or_default(),
        ),
    };
    let backend = Backend::new(&config.backend, &endpoint, &access_key, &secret_key)
        .map_err(StartError::Config)?;
    let client_pairs: Vec<(String, String)> = if config.credentials.is_empty() {
        vec![(access_key.clone(), secret_key.clone())]
    } else {
        config
            .credentials
            .iter()
            .map(|c| (c.access_key.clone(), c.secret_key.clone()))
            .collect()
    };
    let (client_access_key, client_secret_key) = client_pairs[0].clone();
    let metrics = Arc::new(Metrics::new());
    let keys = build_key_cache(&config, &metrics)?;
    let metadata_cache_bytes =
        u64::try_from(config.limits.metadata_cache_bytes).unwrap_or(u64::MAX);
    let backend_identities = backend.identities(&config.credentials);
    let state = Arc::new(AppState {
        config: config.clone(),
        backend,
        credentials: CredentialStore::new(client_pairs),
        backend_identities,
        metrics,
        keys,
        size_cache: Arc::new(crate::s3::facts::new_size_cache(metadata_cache_bytes)),
        layouts: Arc::new(crate::s3::facts::new_layout_cache(metadata_cache_bytes)),
        audit: crate::audit::AuditLog::from_config(&config.audit)
            .map_err(|e| StartError::Config(e.to_string()))?,
        uploads: crate::s3::uploads::UploadRegistry::from_config(&config.uploads),
    });
    Ok(Built {
        state,
        embedded,
        client_access_key,
        client_secret_key,
        backend_endpoint: endpoint,
    })
}

/// Binds every listener and starts serving.
pub async fn start(config: Config) -> Result<Running, StartError> {
    let Built {
        state,
        embedded,
        client_access_key,
        client_secret_key,
        backend_endpoint: endpoint,
    } = build_state(config).await?;
    let config = state.config.clone();
    let metrics = state.metrics.clone();

    let tls = match (&config.server.tls_cert, &config.server.tls_key) {
        (Some(cert), Some(key)) => Some(tls::acceptor(cert, key)?),
        _ => None,
    };
    let (stop, stopped) = watch::channel(false);
    let mut tasks = Vec::new();
    let s3_listener = bind("server.listen", config.server.listen).await?;
    let s3_addr = local_addr("server.listen", &s3_listener)?;
    let limits = Arc::new(tokio::sync::Semaphore::new(config.limits.max_connections));
    let shards = match config.server.thread_per_core {
        true => Some(Arc::new(
            shards::Shards::start(serving_threads(&config)).map_err(StartError::Shards)?,
        )),
        false => None,
    };
    tasks.push(tokio::spawn(listener::serve_s3(
        s3_listener,
        tls.clone(),
        state.clone(),
        limits.clone(),
        shards.clone(),
        stopped.clone(),
    )));
    let s3_http = match config.server.http_listen {
        Some(addr) => {
            let l = bind("server.http_listen", addr).await?;
            let a = local_addr("server.http_listen", &l)?;
            tasks.push(tokio::spawn(listener::serve_s3(
                l,
                None,
                state.clone(),
                limits.clone(),
                shards.clone(),
                stopped.clone(),
            )));
            Some(a)
        }
        None => None,
    };
    let admin_listener = bind("server.admin_listen", config.server.admin_listen).await?;
    let admin_addr = local_addr("server.admin_listen", &admin_listener)?;
    tasks.push(tokio::spawn(admin::serve(
        admin_listener,
        state.clone(),
        stopped.clone(),
    )));

    let endpoints = Endpoints {
        s3: s3_addr,
        s3_http,
        admin: admin_addr,
        tls: tls.is_some(),
        client_access_key,
        client_secret_key,
        embedded_data_dir: embedded.as_ref().map(|e| e.data_dir.clone()),
        backend_endpoint: endpoint,
    };
    Ok(Running {
        endpoints,
        stop,
        tasks,
        embedded,
        shards,
        metrics,
    })
}

impl Running {
    /// Threads serving client connections: the shards, or the shared runtime's workers.
    pub fn serving_threads(&self) -> usize {
        match &self.shards {
            Some(shards) => shards.len(),
            None => tokio::runtime::Handle::current().metrics().num_workers(),
        }
    }

    /// Whether each client connection is served on one thread of its own shard.
    pub fn thread_per_core(&self) -> bool {
        self.shards.is_some()
    }

    /// Stops accepting, drains in-flight requests within the configured grace period.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        if let Some(shards) = self.shards {
            let _ = tokio::task::spawn_blocking(move || shards.stop()).await;
        }
        if let Some(e) = self.embedded {
            e.stop().await;
        }
    }
}

/// Threads serving requests: `server.worker_threads`, or one per CPU the process may use.
pub fn serving_threads(config: &Config) -> usize {
    config.server.worker_threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    })
}

async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { what, addr, source })
}

fn local_addr(what: &'static str, l: &TcpListener) -> Result<SocketAddr, StartError> {
    l.local_addr().map_err(|source| StartError::Bind {
        what,
        addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        source,
    })
}

/// The KMS named by the config behind the bucket-key cache, its metrics registered
/// beside the request metrics. The local KMS keeps its master key in the embedded data
/// directory unless a path is configured.
fn build_key_cache(config: &Config, metrics: &Metrics) -> Result<Arc<BucketKeyCache>, StartError> {
    let mut kms_config = config.kms.clone();
    if kms_config.master_key_file.is_none() {
        kms_config.master_key_file = Some(config.embedded.data_dir.join("master.key"));
        if let Some(dir) = &kms_config
            .master_key_file
            .as_ref()
            .and_then(|p| p.parent().map(|d| d.to_path_buf()))
        {
            std::fs::create_dir_all(dir).map_err(|e| {
                StartError::Config(format!("embedded.data_dir: {}: {e}", dir.display()))
            })?;
        }
    }
    let env = crate::kms::aws::AwsEnv {
        access_key_id: std::env::var("AWS_ACCESS_KEY_ID").ok(),
        secret_access_key: std::env::var("AWS_SECRET_ACCESS_KEY")
            .ok()
            .map(zeroize::Zeroizing::new),
        session_token: std::env::var("AWS_SESSION_TOKEN")
            .ok()
            .map(zeroize::Zeroizing::new),
    };
    let kms = crate::kms::from_config(&kms_config, &env)
        .map_err(|e| StartError::Config(e.to_string()))?;
    let cache_metrics = CacheMetrics::register(&metrics.registry)
        .map_err(|e| StartError::Config(format!("metrics: {e}")))?;
    Ok(Arc::new(BucketKeyCache::new(
        kms,
        CacheConfig::from_kms_config(&kms_config),
        cache_metrics,
    )))
}

/// rustls needs one process-wide provider; aws-lc-rs is the one every TLS path uses.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// The grace period after which draining connections are closed.
pub fn grace(config: &Config) -> Duration {
    Duration::from_secs(config.server.shutdown_grace_secs)
}
