//! The embedded backend: an S3 server over a local directory (s3s-fs, used as a
//! library), started in-process on a random loopback port when no backend is
//! configured, so `sealgate` alone is a working encrypted object store to try.
//!
//! It is an ordinary backend to the rest of the proxy: requests reach it re-signed over
//! loopback with its own generated credentials, which are kept (mode 0600) in the data
//! directory so restarts keep the same keys and objects.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use hyper_util::rt::TokioIo;
use rand::RngExt;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// A running embedded backend.
pub struct EmbeddedBackend {
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    pub data_dir: PathBuf,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Debug, thiserror::Error)]
#[error("embedded.data_dir: {0}")]
pub struct EmbeddedError(String);

const CREDENTIALS_FILE: &str = "credentials";
const OBJECTS_DIR: &str = "objects";

impl EmbeddedBackend {
    /// Creates the data directory if needed and starts serving on 127.0.0.1.
    pub async fn start(data_dir: &Path) -> Result<EmbeddedBackend, EmbeddedError> {
        let err = |what: &str, e: std::io::Error| {
            EmbeddedError(format!("{}: {what}: {e}", data_dir.display()))
        };
        create_private_dir(data_dir).map_err(|e| err("cannot create", e))?;
        let objects = data_dir.join(OBJECTS_DIR);
        std::fs::create_dir_all(&objects).map_err(|e| err("cannot create objects dir", e))?;
        let (access_key, secret_key) = load_or_create_credentials(&data_dir.join(CREDENTIALS_FILE))
            .map_err(|e| err("credentials", e))?;
        let fs = s3s_fs::FileSystem::new(&objects)
            .map_err(|e| EmbeddedError(format!("{}: {e:?}", objects.display())))?;
        let service = {
            let mut b = s3s::service::S3ServiceBuilder::new(fs);
            b.set_auth(s3s::auth::SimpleAuth::from_single(
                access_key.clone(),
                secret_key.clone(),
            ));
            b.build()
        };
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .map_err(|e| err("cannot listen", e))?;
        let addr = listener.local_addr().map_err(|e| err("cannot listen", e))?;
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let http = hyper::server::conn::http1::Builder::new();
            let graceful = hyper_util::server::graceful::GracefulShutdown::new();
            loop {
                let socket = tokio::select! {
                    res = listener.accept() => match res {
                        Ok((socket, _)) => socket,
                        Err(e) => { tracing::warn!(error = %e, "embedded backend: accept failed"); continue; }
                    },
                    _ = stopped.changed() => break,
                };
                let _ = socket.set_nodelay(true);
                let conn = http.serve_connection(TokioIo::new(socket), service.clone());
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
            let _ =
                tokio::time::timeout(std::time::Duration::from_secs(10), graceful.shutdown()).await;
        });
        Ok(EmbeddedBackend {
            endpoint: format!("http://{addr}"),
            access_key,
            secret_key,
            data_dir: data_dir.to_path_buf(),
            stop,
            task,
        })
    }

    /// Stops after the in-flight requests (the proxy drains first).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }

    /// Where the objects are, for the banner.
    pub fn objects_dir(&self) -> PathBuf {
        self.data_dir.join(OBJECTS_DIR)
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    set_mode(dir, 0o700)
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> std::io::Result<()> {
    Ok(())
}

/// `ACCESS_KEY SECRET_KEY` on one line, created once with random values.
fn load_or_create_credentials(path: &Path) -> std::io::Result<(String, String)> {
    if let Ok(text) = std::fs::read_to_string(path) {
        let mut it = text.split_whitespace();
        if let (Some(a), Some(s)) = (it.next(), it.next()) {
            return Ok((a.to_string(), s.to_string()));
        }
    }
    const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    const SECRET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let pick = |set: &[u8], n: usize, rng: &mut rand::rngs::ThreadRng| -> String {
        (0..n)
            .map(|_| set[rng.random_range(0..set.len())] as char)
            .collect()
    };
    let access = format!("SG{}", pick(ALNUM, 18, &mut rng));
    let secret = pick(SECRET, 40, &mut rng);
    write_private(path, format!("{access} {secret}\n").as_bytes())?;
    Ok((access, secret))
}

/// Writes a file readable only by its owner, created with that mode (no window in
/// which it is world-readable).
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}
