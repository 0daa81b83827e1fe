//! The deployment files in `deploy/`.
//!
//! - `scripts/validate-deploy.sh` must pass: Kubernetes schemas (strict), the systemd
//!   unit (`systemd-analyze verify` and an exposure limit), compose.yaml, cross-references
//!   between manifests, every sealgate configuration in them through
//!   `sealgate check-config` (this test's own binary), hadolint and shellcheck. The script installs its pinned
//!   tools on first use; set `SEALGATE_SKIP_DEPLOY_VALIDATION=1` to skip it (a notice
//!   is printed) on machines that cannot install them.
//! - The same script must fail on broken copies, so its checks are known to bite.
//! - `deploy/Dockerfile` is checked by a small parser only: no Docker engine runs where
//!   the tests run, so the image is never built here. The checks are structural (pinned
//!   stages, non-root user, health check, ports, listen addresses), not a build.
//!   What the build reads is checked on a copy of the build context: exactly the files
//!   the dockerignore lets in and the builder COPYs, where the manifest must load with
//!   every path dependency, and every script the builder runs, and every file such a
//!   script sources, must be present.
//! - The image's runtime contract runs on this test's binary: with the Dockerfile's ENV,
//!   its HEALTHCHECK command passes, SIGTERM exits cleanly, the master key is 0600.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const SEALGATE_BIN: &str = env!("CARGO_BIN_EXE_sealgate");
// The module sits in tests/deploy/ so cargo does not build it as a test target of its own.
#[path = "deploy/dockerfile.rs"]
mod dockerfile;

use dockerfile::{
    ADMIN_PORT, check_dockerfile, context_copies, dockerignore_allows, parse_dockerfile,
    scripts_run, stages,
};

fn skip_validation() -> bool {
    if std::env::var("SEALGATE_SKIP_DEPLOY_VALIDATION").as_deref() == Ok("1") {
        println!("SEALGATE_SKIP_DEPLOY_VALIDATION=1: scripts/validate-deploy.sh not run");
        return true;
    }
    false
}

/// Runs `scripts/validate-deploy.sh` of the tree at `root`.
fn run_validation(root: &Path) -> Output {
    Command::new("bash")
        .arg(root.join("scripts/validate-deploy.sh"))
        .env("SEALGATE_BIN", SEALGATE_BIN)
        .output()
        .expect("bash runs")
}

fn describe(out: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn deploy_files_pass_validation() {
    if skip_validation() {
        return;
    }
    let started = std::time::Instant::now();
    let out = run_validation(Path::new(ROOT));
    assert!(out.status.success(), "{}", describe(&out));
    println!(
        "validate-deploy.sh took {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// A copy of `deploy/` and the script in a temporary tree, with one file edited.
fn broken_copy(file: &str, from: &str, to: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    copy_tree(&Path::new(ROOT).join("deploy"), &dir.path().join("deploy"));
    std::fs::create_dir_all(dir.path().join("scripts")).expect("mkdir scripts");
    std::fs::copy(
        Path::new(ROOT).join("scripts/validate-deploy.sh"),
        dir.path().join("scripts/validate-deploy.sh"),
    )
    .expect("copy script");
    let target = dir.path().join(file);
    let text = std::fs::read_to_string(&target).expect("read file to break");
    assert!(text.contains(from), "{file} no longer contains {from:?}");
    std::fs::write(&target, text.replacen(from, to, 1)).expect("write broken file");
    dir
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("dir entry");
        let dest: PathBuf = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), &dest).expect("copy file");
        }
    }
}

#[test]
fn validation_rejects_broken_deploy_files() {
    if skip_validation() {
        return;
    }
    // (file, edit, what the failure output must mention): one per validation stage.
    let cases = [
        (
            "deploy/kubernetes/gateway/deployment.yaml",
            (
                "  revisionHistoryLimit: 5\n",
                "  revisionHistoryLimits: 5\n",
            ),
            "revisionHistoryLimits",
        ),
        (
            "deploy/systemd/sealgate.service",
            ("ProtectSystem=strict\n", "ProtectSystem=stricter\n"),
            "stricter",
        ),
        (
            "deploy/kubernetes/gateway/configmap.yaml",
            ("segment_size = 65536", "segment_size = 1000"),
            "encryption.default.segment_size",
        ),
        (
            "deploy/kubernetes/sidecar.yaml",
            (
                "value: \"http://127.0.0.1:8333\"",
                "value: \"http://127.0.0.1:8334\"",
            ),
            "AWS_ENDPOINT_URL",
        ),
        (
            "deploy/kubernetes/sidecar.yaml",
            ("enableServiceLinks: false", "enableServiceLinks: true"),
            "enableServiceLinks",
        ),
        (
            "deploy/Dockerfile",
            ("--no-install-recommends ", ""),
            "DL3015",
        ),
        (
            "deploy/compose.yaml",
            ("\"127.0.0.1:8333:8333\"", "\"8333:8333\""),
            "published beyond loopback",
        ),
    ];
    std::thread::scope(|s| {
        let runs: Vec<_> = cases
            .iter()
            .map(|(file, (from, to), expected)| {
                s.spawn(move || {
                    let tree = broken_copy(file, from, to);
                    let out = run_validation(tree.path());
                    (file, expected, out)
                })
            })
            .collect();
        for run in runs {
            let (file, expected, out) = run.join().expect("validation thread");
            let text = describe(&out);
            assert!(!out.status.success(), "broken {file} passed:\n{text}");
            assert!(
                text.contains(expected),
                "broken {file}: output lacks {expected:?}:\n{text}"
            );
        }
    });
}

fn dockerfile() -> String {
    std::fs::read_to_string(Path::new(ROOT).join("deploy/Dockerfile")).expect("deploy/Dockerfile")
}

fn toolchain_channel() -> String {
    let text = std::fs::read_to_string(Path::new(ROOT).join("rust-toolchain.toml"))
        .expect("rust-toolchain.toml");
    text.lines()
        .find_map(|l| l.trim().strip_prefix("channel = "))
        .expect("channel in rust-toolchain.toml")
        .trim_matches('"')
        .to_string()
}

#[test]
fn dockerfile_passes_static_checks() {
    if let Err(e) = check_dockerfile(&dockerfile(), &toolchain_channel()) {
        panic!("deploy/Dockerfile: {e}");
    }
}

#[test]
fn dockerfile_checks_reject_broken_files() {
    let good = dockerfile();
    let toolchain = toolchain_channel();
    let cases = [
        ("USER 10001:10001", "USER root", "root"),
        ("USER 10001:10001", "USER sealgate", "numeric"),
        (
            "HEALTHCHECK --interval",
            "# HEALTHCHECK --interval",
            "no HEALTHCHECK",
        ),
        ("ca-certificates wget", "ca-certificates", "not installed"),
        ("FROM debian:bookworm-slim", "FROM debian", "no tag"),
        (
            "rust:1.95.0-slim",
            "rust:latest-slim",
            "not the rust-toolchain.toml",
        ),
        ("--locked", "", "--locked"),
        (
            "COPY --from=builder",
            "COPY --from=build",
            "no earlier stage",
        ),
        ("EXPOSE 8333 9333", "EXPOSE 8333", "9333"),
        ("=0.0.0.0:9333", "=127.0.0.1:9333", "loopback"),
        (
            "ENTRYPOINT [\"/usr/local/bin/sealgate\"]",
            "ENTRYPOINT /usr/local/bin/sealgate",
            "exec form",
        ),
    ];
    for (from, to, expected) in cases {
        assert!(
            good.contains(from),
            "Dockerfile no longer contains {from:?}"
        );
        let broken = good.replacen(from, to, 1);
        match check_dockerfile(&broken, &toolchain) {
            Ok(()) => panic!("{from:?} -> {to:?} passed"),
            Err(e) => assert!(e.contains(expected), "{from:?} -> {to:?}: {e}"),
        }
    }
}

/// The host's target triple, for `cargo metadata --filter-platform`.
fn host_triple() -> String {
    let out = Command::new("rustc")
        .arg("-vV")
        .output()
        .expect("rustc runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("rustc -vV names the host")
        .to_string()
}

#[test]
fn image_build_context_holds_what_the_builder_reads() {
    let root = Path::new(ROOT);
    let ignore = std::fs::read_to_string(root.join("deploy/Dockerfile.dockerignore"))
        .expect("deploy/Dockerfile.dockerignore");
    let allowed = dockerignore_allows(&ignore).unwrap_or_else(|e| panic!("dockerignore: {e}"));
    let parsed = stages(&parse_dockerfile(&dockerfile())).expect("stages");
    let builder = &parsed[0];
    let copies = context_copies(builder).unwrap_or_else(|e| panic!("deploy/Dockerfile: {e}"));

    let context = tempfile::tempdir().expect("temp dir");
    for src in &copies {
        assert!(
            allowed.contains(src),
            "the builder copies {src}, which deploy/Dockerfile.dockerignore keeps out of the context"
        );
        let from = root.join(src);
        if from.is_dir() {
            copy_tree(&from, &context.path().join(src));
        } else {
            std::fs::copy(&from, context.path().join(src)).expect("copy context file");
        }
    }

    // The manifest loads with every path dependency and patch, as `cargo build --locked`
    // would in the builder (a vendored crate left out of the context fails here).
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--locked",
            "--format-version",
            "1",
            "--filter-platform",
        ])
        .arg(host_triple())
        .current_dir(context.path())
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "the build context's manifest does not load:\n{}",
        describe(&out)
    );

    let scripts = scripts_run(builder);
    assert!(
        scripts.contains(&"scripts/build-pgo.sh".to_string()),
        "the builder no longer runs scripts/build-pgo.sh: {scripts:?}"
    );
    for script in &scripts {
        let text = std::fs::read_to_string(context.path().join(script))
            .unwrap_or_else(|e| panic!("the builder runs {script}, not in the context: {e}"));
        // The scripts run from the repository root (`cd "$(dirname "$0")/.."`), so a
        // sourced path is relative to it.
        for sourced in text.lines().filter_map(|l| l.trim().strip_prefix(". ")) {
            let path = sourced.split_whitespace().next().unwrap_or_default();
            assert!(
                context.path().join(path).is_file(),
                "{script} sources {path}, which is not in the build context"
            );
        }
    }
}

#[test]
fn dockerfile_parser_joins_continuations_and_drops_comments() {
    let text = "# syntax=docker/dockerfile:1\nFROM a:1 AS b\nRUN one \\\n  # inside\n  two\n\nenv X=1 \\\n    Y=2\n";
    let parsed = parse_dockerfile(text);
    let got: Vec<(usize, &str, &str)> = parsed
        .iter()
        .map(|i| (i.line, i.keyword.as_str(), i.args.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (2, "FROM", "a:1 AS b"),
            (3, "RUN", "one two"),
            (7, "ENV", "X=1 Y=2")
        ]
    );
}

// ---------------------------------------------------------------------------------
// The image's runtime contract, exercised on this test's own binary: started with the
// Dockerfile's ENV (ports moved to free loopback ones), the HEALTHCHECK command passes,
// and STOPSIGNAL SIGTERM ends the process cleanly, so `docker stop`, the kubelet and
// systemd all get a drain rather than a kill.

/// `(name, value)` of every `SEALGATE_*` variable the Dockerfile sets.
fn image_env(dockerfile: &str) -> Vec<(String, String)> {
    parse_dockerfile(dockerfile)
        .iter()
        .filter(|i| i.keyword == "ENV")
        .flat_map(|i| {
            i.args
                .split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            k.starts_with("SEALGATE_")
                .then(|| (k.to_string(), v.to_string()))
        })
        .collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free loopback port")
        .port()
}

/// The HEALTHCHECK's exec-form argv, aimed at `admin_port`.
fn healthcheck_argv(dockerfile: &str, admin_port: u16) -> Vec<String> {
    let ins = parse_dockerfile(dockerfile);
    let health = ins
        .iter()
        .rfind(|i| i.keyword == "HEALTHCHECK")
        .expect("HEALTHCHECK");
    let (_, cmd) = health.args.split_once("CMD").expect("CMD");
    let argv: Vec<String> = serde_json::from_str(cmd.trim()).expect("exec-form JSON array");
    argv.into_iter()
        .map(|a| a.replace(&format!(":{ADMIN_PORT}/"), &format!(":{admin_port}/")))
        .collect()
}

/// Runs a health-check argv with a container-like environment: no proxy variables,
/// which would send wget's loopback request elsewhere.
fn run_argv(argv: &[String]) -> bool {
    Command::new(&argv[0])
        .args(&argv[1..])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn image_healthcheck_passes_and_sigterm_exits_cleanly() {
    let text = dockerfile();
    let argv = healthcheck_argv(&text, 0);
    if Command::new(&argv[0]).arg("--version").output().is_err() {
        println!(
            "{} not installed here: image health check not exercised",
            argv[0]
        );
        return;
    }
    let data = tempfile::tempdir().expect("temp dir");
    let (s3_port, admin_port) = (free_port(), free_port());
    let mut cmd = Command::new(SEALGATE_BIN);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(image_env(&text))
        // Loopback and free ports instead of the image's 0.0.0.0:8333/9333, and a
        // temporary state directory instead of /var/lib/sealgate.
        .env("SEALGATE_SERVER__LISTEN", format!("127.0.0.1:{s3_port}"))
        .env(
            "SEALGATE_SERVER__ADMIN_LISTEN",
            format!("127.0.0.1:{admin_port}"),
        )
        .env("SEALGATE_EMBEDDED__DATA_DIR", data.path())
        .env("SEALGATE_SERVER__SHUTDOWN_GRACE_SECS", "5")
        .arg("serve")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().expect("start sealgate");
    let argv = healthcheck_argv(&text, admin_port);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut healthy = false;
    while std::time::Instant::now() < deadline {
        if run_argv(&argv) {
            healthy = true;
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("sealgate exited at start-up: {status}");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    if !healthy {
        let _ = child.kill();
        let _ = child.wait();
        panic!("HEALTHCHECK {argv:?} never passed");
    }
    // Our own child, by its id: STOPSIGNAL/KillSignal is SIGTERM.
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("sealgate did not exit within 15 s of SIGTERM");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(status.success(), "exit after SIGTERM: {status}");
    assert!(!run_argv(&argv), "HEALTHCHECK passes with sealgate stopped");
    let key = data.path().join("master.key");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&key)
            .expect("master key created in the state dir")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "master key mode");
}
