//! Real S3 client programs (aws CLI, boto3, s3cmd, s5cmd, rclone) pointed at a
//! [`Target`]. Each builds the exact command line a user would type for HTTP or
//! HTTPS, with its configuration written to the test's temp dir (never the user's
//! home), region `us-east-1`, path-style addressing, and multipart thresholds of
//! 5 MiB so that a 5 MiB + 1 B file is uploaded in two parts by every client.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::backend::Target;
use super::process::{CommandOutput, run_command};

/// The S3 clients of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    AwsCli,
    Boto3,
    S3cmd,
    S5cmd,
    Rclone,
}

impl Client {
    pub const ALL: [Client; 5] = [
        Client::AwsCli,
        Client::Boto3,
        Client::S3cmd,
        Client::S5cmd,
        Client::Rclone,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Client::AwsCli => "aws",
            Client::Boto3 => "boto3",
            Client::S3cmd => "s3cmd",
            Client::S5cmd => "s5cmd",
            Client::Rclone => "rclone",
        }
    }

    pub fn make_bucket(self, env: &ClientEnv, bucket: &str) {
        let url = format!("s3://{bucket}");
        match self {
            Client::AwsCli => env.run(self, &["s3", "mb", &url]),
            Client::Boto3 => env.run(self, &["mb", bucket]),
            Client::S3cmd => env.run(self, &["mb", &url]),
            Client::S5cmd => env.run(self, &["mb", &url]),
            Client::Rclone => env.run(self, &["mkdir", &format!("sg:{bucket}")]),
        };
    }

    pub fn remove_bucket(self, env: &ClientEnv, bucket: &str) {
        let url = format!("s3://{bucket}");
        match self {
            Client::AwsCli => env.run(self, &["s3", "rb", &url]),
            Client::Boto3 => env.run(self, &["rb", bucket]),
            Client::S3cmd => env.run(self, &["rb", &url]),
            Client::S5cmd => env.run(self, &["rb", &url]),
            Client::Rclone => env.run(self, &["rmdir", &format!("sg:{bucket}")]),
        };
    }

    /// Uploads `file` as `bucket/key` (multipart above 5 MiB).
    pub fn put(self, env: &ClientEnv, file: &Path, bucket: &str, key: &str) {
        let f = path_str(file);
        let url = format!("s3://{bucket}/{key}");
        match self {
            Client::AwsCli => env.run(self, &["s3", "cp", "--no-progress", f, &url]),
            Client::Boto3 => env.run(self, &["put", f, bucket, key]),
            Client::S3cmd => env.run(self, &["put", f, &url]),
            Client::S5cmd => env.run(self, &["cp", "--part-size", "5", f, &url]),
            Client::Rclone => env.run(self, &["copyto", f, &format!("sg:{bucket}/{key}")]),
        };
    }

    /// Downloads `bucket/key` into `file` (overwriting it).
    pub fn get(self, env: &ClientEnv, bucket: &str, key: &str, file: &Path) {
        let f = path_str(file);
        let url = format!("s3://{bucket}/{key}");
        match self {
            Client::AwsCli => env.run(self, &["s3", "cp", "--no-progress", &url, f]),
            Client::Boto3 => env.run(self, &["get", bucket, key, f]),
            Client::S3cmd => env.run(self, &["get", "--force", &url, f]),
            // s5cmd downloads in parallel ranged GETs of --part-size MiB.
            Client::S5cmd => env.run(self, &["cp", "--part-size", "5", &url, f]),
            Client::Rclone => env.run(self, &["copyto", &format!("sg:{bucket}/{key}"), f]),
        };
    }

    /// Every object of `bucket` as (key, size), as this client reports it.
    pub fn list(self, env: &ClientEnv, bucket: &str) -> Vec<(String, u64)> {
        let url = format!("s3://{bucket}");
        let out = match self {
            Client::AwsCli => env.run(self, &["s3", "ls", "--recursive", &format!("{url}/")]),
            Client::Boto3 => env.run(self, &["ls", bucket]),
            Client::S3cmd => env.run(self, &["ls", "--recursive", &url]),
            Client::S5cmd => {
                // s5cmd calls an empty listing an error; it is an answer here.
                let out = env.try_run(self, &["ls", &format!("{url}/*")]);
                if !out.success && out.stderr.contains("no object found") {
                    return Vec::new();
                }
                env.run(self, &["ls", &format!("{url}/*")])
            }
            Client::Rclone => env.run(self, &["lsl", &format!("sg:{bucket}")]),
        };
        let prefix = format!("{url}/");
        let mut objects: Vec<(String, u64)> = out
            .lines()
            .filter_map(|line| {
                let t: Vec<&str> = line.split_whitespace().collect();
                // Position of the size and the key in each client's listing line.
                let (size, key) = match self {
                    // 2026-11-23 16:30:01    5242881 key
                    Client::AwsCli => (t.get(2)?, t.get(3)?),
                    // 5242881 key
                    Client::Boto3 => (t.first()?, t.get(1)?),
                    // 2026-11-23 16:30    5242881  s3://bucket/key
                    Client::S3cmd => (t.get(2)?, t.get(3)?),
                    // 2026/11/23 16:30:01    5242881 key
                    Client::S5cmd => (t.get(2)?, t.get(3)?),
                    // 5242881 2026-11-23 16:30:01.000000000 key
                    Client::Rclone => (t.first()?, t.get(3)?),
                };
                let key = key.strip_prefix(prefix.as_str()).unwrap_or(key);
                Some((key.to_string(), size.parse().ok()?))
            })
            .collect();
        objects.sort();
        objects
    }

    pub fn delete(self, env: &ClientEnv, bucket: &str, key: &str) {
        let url = format!("s3://{bucket}/{key}");
        match self {
            Client::AwsCli => env.run(self, &["s3", "rm", &url]),
            Client::Boto3 => env.run(self, &["rm", bucket, key]),
            Client::S3cmd => env.run(self, &["del", &url]),
            Client::S5cmd => env.run(self, &["rm", &url]),
            Client::Rclone => env.run(self, &["deletefile", &format!("sg:{bucket}/{key}")]),
        };
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

/// Where the Python interpreter and the pip-installed client binaries live.
struct Tools {
    python: PathBuf,
    scripts: PathBuf,
}

fn tools() -> &'static Tools {
    static TOOLS: OnceLock<Tools> = OnceLock::new();
    TOOLS.get_or_init(|| {
        // Resolved once through PATH, then used by absolute path: the children run
        // with a cleared environment, and pyenv-style shims need more than PATH.
        let out = Command::new("python3")
            .args([
                "-c",
                "import sys, sysconfig; print(sys.executable); print(sysconfig.get_path('scripts'))",
            ])
            .output()
            .expect("python3 is needed by the client tests (run ./scripts/install-test-deps.sh)");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut lines = text.lines();
        let python = PathBuf::from(lines.next().expect("python3 printed its path"));
        let scripts = PathBuf::from(lines.next().expect("python3 printed its scripts dir"));
        Tools { python, scripts }
    })
}

/// A binary from the Python scripts folder (where pip put the clients), else PATH.
fn program(name: &str) -> PathBuf {
    let candidate = tools().scripts.join(name);
    if candidate.is_file() {
        candidate
    } else {
        PathBuf::from(name)
    }
}

/// The configuration every client needs to reach one [`Target`], kept in a temp dir
/// that also serves as `HOME` for the client processes.
pub struct ClientEnv {
    pub target: Target,
    dir: tempfile::TempDir,
}

impl ClientEnv {
    pub fn new(target: Target) -> ClientEnv {
        let dir = tempfile::Builder::new()
            .prefix("sealgate-clients-")
            .tempdir()
            .expect("temp dir for client configs");
        let env = ClientEnv { target, dir };
        env.write_configs();
        env
    }

    /// Scratch space for test files; removed with the env.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn write_configs(&self) {
        let d = self.dir.path();
        std::fs::write(
            d.join("aws-config"),
            "[default]\nregion = us-east-1\ns3 =\n    addressing_style = path\n    \
             signature_version = s3v4\n    multipart_threshold = 5MB\n    \
             multipart_chunksize = 5MB\n",
        )
        .expect("write aws config");
        let t = &self.target;
        let s3cmd = format!(
            "[default]\naccess_key = {ak}\nsecret_key = {sk}\nhost_base = {hp}\n\
             host_bucket = {hp}\nbucket_location = us-east-1\nuse_https = {https}\n\
             check_ssl_certificate = True\nsignature_v2 = False\n\
             enable_multipart = True\nmultipart_chunk_size_mb = 5\nprogress_meter = False\n",
            ak = t.access_key,
            sk = t.secret_key,
            hp = t.host_port(),
            https = if t.is_https() { "True" } else { "False" },
        );
        std::fs::write(d.join("s3cmd.cfg"), s3cmd).expect("write s3cmd config");
        // rclone reads the remote from RCLONE_CONFIG_SG_* variables; the file only
        // keeps it away from the user's own config.
        std::fs::write(d.join("rclone.conf"), "").expect("write rclone config");
        std::fs::write(d.join("boto3_client.py"), include_str!("boto3_client.py"))
            .expect("write boto3 script");
        std::fs::write(d.join("s3check.py"), include_str!("s3check.py"))
            .expect("write the step checks the test scripts import");
    }

    /// A command with a cleared environment: only what this target needs, `HOME` in
    /// the temp dir, so no user config or credential can leak in.
    pub fn command(&self, program: &Path) -> Command {
        let t = &self.target;
        let d = self.dir.path();
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", d)
            .env("LANG", "C.UTF-8")
            .env("TMPDIR", d)
            .env("AWS_ACCESS_KEY_ID", &t.access_key)
            .env("AWS_SECRET_ACCESS_KEY", &t.secret_key)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", d.join("aws-config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", d.join("no-aws-credentials"))
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .current_dir(d);
        for (k, v) in &t.client_env {
            cmd.env(k, v);
        }
        cmd
    }

    /// The full argument list for `client` running `args` against this target.
    fn client_command(&self, client: Client, args: &[&str]) -> (Command, String) {
        let t = &self.target;
        let d = self.dir.path();
        let ca = t.ca_cert.as_deref().map(path_str);
        let mut full: Vec<String> = Vec::new();
        let mut cmd = match client {
            Client::AwsCli => {
                full.extend(["--endpoint-url".into(), t.endpoint.clone()]);
                if let Some(ca) = ca {
                    full.extend(["--ca-bundle".into(), ca.into()]);
                }
                self.command(&program("aws"))
            }
            Client::Boto3 => {
                full.push(path_str(&d.join("boto3_client.py")).into());
                let mut cmd = self.command(&tools().python);
                cmd.env("SG_ENDPOINT", &t.endpoint)
                    .env("SG_ACCESS_KEY", &t.access_key)
                    .env("SG_SECRET_KEY", &t.secret_key);
                if let Some(ca) = ca {
                    cmd.env("SG_CA_BUNDLE", ca);
                }
                cmd
            }
            Client::S3cmd => {
                full.extend(["-c".into(), path_str(&d.join("s3cmd.cfg")).into()]);
                if let Some(ca) = ca {
                    full.push(format!("--ca-certs={ca}"));
                }
                self.command(&program("s3cmd"))
            }
            Client::S5cmd => {
                full.extend(["--endpoint-url".into(), t.endpoint.clone()]);
                let mut cmd = self.command(&program("s5cmd"));
                // s5cmd has no CA flag; its AWS SDK reads AWS_CA_BUNDLE, which keeps
                // certificate verification on.
                if let Some(ca) = ca {
                    cmd.env("AWS_CA_BUNDLE", ca);
                }
                cmd
            }
            Client::Rclone => {
                full.extend([
                    "--config".into(),
                    path_str(&d.join("rclone.conf")).into(),
                    "--s3-upload-cutoff".into(),
                    "5Mi".into(),
                    "--s3-chunk-size".into(),
                    "5Mi".into(),
                    // Multi-threaded (ranged) downloads from 5 MiB on, not 256 MiB.
                    "--multi-thread-cutoff".into(),
                    "5Mi".into(),
                    "--retries".into(),
                    "1".into(),
                    "--low-level-retries".into(),
                    "1".into(),
                ]);
                if let Some(ca) = ca {
                    full.extend(["--ca-cert".into(), ca.into()]);
                }
                let mut cmd = self.command(&program("rclone"));
                cmd.env("RCLONE_CONFIG_SG_TYPE", "s3")
                    .env("RCLONE_CONFIG_SG_PROVIDER", "Other")
                    .env("RCLONE_CONFIG_SG_ACCESS_KEY_ID", &t.access_key)
                    .env("RCLONE_CONFIG_SG_SECRET_ACCESS_KEY", &t.secret_key)
                    .env("RCLONE_CONFIG_SG_ENDPOINT", &t.endpoint)
                    .env("RCLONE_CONFIG_SG_REGION", "us-east-1")
                    .env("RCLONE_CONFIG_SG_FORCE_PATH_STYLE", "true");
                if t.sse_kms {
                    // As on AWS with SSE-KMS, the ETag is not the MD5 of the plaintext;
                    // rclone checks ETags as MD5 unless its remote says aws:kms (what an
                    // rclone user of an SSE-KMS bucket configures).
                    cmd.env("RCLONE_CONFIG_SG_SERVER_SIDE_ENCRYPTION", "aws:kms");
                }
                cmd
            }
        };
        full.extend(args.iter().map(|a| a.to_string()));
        cmd.args(&full);
        let describe = format!("{} {}", client.name(), full.join(" "));
        (cmd, describe)
    }

    /// Runs `client` with `args`; panics with the full output unless it succeeds.
    pub fn run(&self, client: Client, args: &[&str]) -> String {
        let out = self.try_run(client, args);
        let (_, describe) = self.client_command(client, args);
        assert!(
            out.success,
            "`{describe}` failed against {}\nstdout:\n{}\nstderr:\n{}",
            self.target.endpoint, out.stdout, out.stderr
        );
        out.stdout
    }

    /// Runs `client` with `args` and returns whatever happened.
    pub fn try_run(&self, client: Client, args: &[&str]) -> CommandOutput {
        let (mut cmd, describe) = self.client_command(client, args);
        run_command(&mut cmd, &describe)
    }

    /// Runs a test's own boto3 script (`source`, written to the temp dir as `name`)
    /// with `args`, with the boto3 helper importable beside it; panics with the full
    /// output unless it exits 0, and returns its stdout.
    pub fn run_python(&self, name: &str, source: &str, args: &[&str]) -> String {
        let t = &self.target;
        let script = self.dir.path().join(name);
        std::fs::write(&script, source).expect("write test script");
        let mut cmd = self.command(&tools().python);
        cmd.env("SG_ENDPOINT", &t.endpoint)
            .env("SG_ACCESS_KEY", &t.access_key)
            .env("SG_SECRET_KEY", &t.secret_key)
            .arg(&script)
            .args(args);
        if let Some(ca) = t.ca_cert.as_deref() {
            cmd.env("SG_CA_BUNDLE", ca);
        }
        let describe = format!("python3 {name} {}", args.join(" "));
        let out = run_command(&mut cmd, &describe);
        assert!(
            out.success,
            "`{describe}` failed against {}\nstdout:\n{}\nstderr:\n{}",
            t.endpoint, out.stdout, out.stderr
        );
        out.stdout
    }

    /// `aws s3api head-object`: (ContentLength, ETag without quotes).
    pub fn head(&self, bucket: &str, key: &str) -> (u64, String) {
        let out = self.run(
            Client::AwsCli,
            &[
                "s3api",
                "head-object",
                "--bucket",
                bucket,
                "--key",
                key,
                "--output",
                "json",
            ],
        );
        let v: serde_json::Value = serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("head-object printed no JSON ({e}): {out}"));
        let len = v["ContentLength"]
            .as_u64()
            .unwrap_or_else(|| panic!("no ContentLength in {out}"));
        let etag = v["ETag"].as_str().unwrap_or_default().trim_matches('"');
        (len, etag.to_string())
    }

    /// Fetches a (presigned) URL with curl into `file`; returns the HTTP status.
    pub fn curl_get(&self, url: &str, file: &Path) -> u16 {
        self.curl(&["-o", path_str(file), url])
    }

    /// PUTs `file` to a (presigned) URL with curl; returns the HTTP status.
    pub fn curl_put(&self, url: &str, file: &Path) -> u16 {
        // An explicit empty Content-Type: what a presigned PUT without one was signed for.
        self.curl(&["-T", path_str(file), "-H", "Content-Type:", url])
    }

    fn curl(&self, args: &[&str]) -> u16 {
        let mut full = vec!["-sS", "--max-time", "300", "-w", "%{http_code}"];
        if let Some(ca) = self.target.ca_cert.as_deref() {
            full.extend(["--cacert", path_str(ca)]);
        }
        full.extend(args);
        let mut cmd = self.command(Path::new("curl"));
        cmd.args(&full);
        let out = run_command(&mut cmd, &format!("curl {}", full.join(" ")));
        assert!(out.success, "curl {full:?} failed: {}", out.stderr);
        out.stdout.trim().parse().unwrap_or(0)
    }
}
