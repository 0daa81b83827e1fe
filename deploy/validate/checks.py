"""Checks of deploy/ that no schema validator makes, run by scripts/validate-deploy.sh.

kubernetes-validate proves each manifest is well-formed on its own; this file proves
the files agree with each other and with sealgate:

- compose.yaml has the services, build, ports, healthchecks and volumes it claims;
- Services, the HPA, the PDB and the ServiceMonitor select the pods they are meant to,
  by labels and port names that exist;
- every ConfigMap and Secret a pod refers to exists with the referenced keys;
- containers are locked down (non-root, read-only root, no capabilities) and probe
  /healthz and /readyz on the admin port that the Prometheus annotations name;
- every sealgate configuration in these files (ConfigMap config.toml, env from
  ConfigMaps and Secrets, compose environment) passes `sealgate check-config`, and the
  files it names (master key, TLS) sit on volumes mounted into the container;
- grace periods exceed sealgate's shutdown grace, so a stop drains instead of killing.

Each failure is printed with the file it concerns; the exit status is 1 on any.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import traceback
import tomllib
from pathlib import Path

import yaml

ADMIN_PORT = 9333
S3_PORT = 8333
DEFAULT_SHUTDOWN_GRACE_SECS = 30
# Kinds kubernetes-validate has no schema for; checked here instead.
CRD_KINDS = {"ServiceMonitor"}

failures = []


def fail(where, message):
    failures.append(f"{where}: {message}")


def load_manifests(root):
    """Every Kubernetes object under deploy/kubernetes, with the file it came from."""
    objects = []
    for path in sorted((root / "deploy/kubernetes").rglob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                objects.append((path.relative_to(root), doc))
    return objects


def by_kind(objects, kind):
    return [(p, o) for p, o in objects if o.get("kind") == kind]


def labels_match(selector, labels):
    return all(labels.get(k) == v for k, v in (selector or {}).items())


def pod_specs(objects):
    """(file, workload name, pod template) for every Deployment."""
    for path, obj in by_kind(objects, "Deployment"):
        yield path, obj["metadata"]["name"], obj["spec"]["template"]


def all_containers(pod):
    return pod.get("initContainers", []) + pod.get("containers", [])


def is_sealgate(container):
    return container.get("image", "").split(":")[0].endswith("sealgate") and container.get(
        "command"
    ) is None


def check_kustomization(root):
    for kfile in (root / "deploy/kubernetes").rglob("kustomization.yaml"):
        listed = set(yaml.safe_load(kfile.read_text()).get("resources", []))
        present = {p.name for p in kfile.parent.glob("*.yaml") if p.name != kfile.name}
        if listed != present:
            fail(kfile.relative_to(root), f"resources {sorted(listed)} != files {sorted(present)}")


def check_references(objects):
    """ConfigMaps and Secrets a pod uses exist in the same files, with the keys used."""
    data = {}
    for path, obj in objects:
        if obj.get("kind") in ("ConfigMap", "Secret"):
            keys = set(obj.get("data", {}) or {}) | set(obj.get("stringData", {}) or {})
            data[(obj["kind"], obj["metadata"]["name"])] = keys
    for path, name, template in pod_specs(objects):
        pod = template["spec"]
        for vol in pod.get("volumes", []):
            for kind, field, ref in (("ConfigMap", "configMap", "name"), ("Secret", "secret", "secretName")):
                if field in vol and (kind, vol[field][ref]) not in data:
                    fail(path, f"{name}: volume {vol['name']} names missing {kind} {vol[field][ref]}")
        for c in all_containers(pod):
            for src in c.get("envFrom", []):
                for kind, field in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                    if field in src and (kind, src[field]["name"]) not in data:
                        fail(path, f"{c['name']}: envFrom names missing {kind} {src[field]['name']}")
            for env in c.get("env", []):
                vf = env.get("valueFrom", {})
                for kind, field in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
                    if field in vf:
                        ref = vf[field]
                        if ref["key"] not in data.get((kind, ref["name"]), set()):
                            fail(path, f"{c['name']}: env {env['name']} names missing {kind} key {ref['name']}/{ref['key']}")


def check_pod_hardening(objects):
    for path, name, template in pod_specs(objects):
        pod = template["spec"]
        pod_sc = pod.get("securityContext", {})
        annotations = template["metadata"].get("annotations", {})
        # Service links put SEALGATE_<SERVICE>_PORT=tcp://... into the environment of
        # every pod for a Service named sealgate-*, and sealgate refuses to start on
        # SEALGATE_* variables it does not know.
        if any(is_sealgate(c) for c in all_containers(pod)) and pod.get("enableServiceLinks") is not False:
            fail(path, f"{name}: enableServiceLinks is not false (SEALGATE_*_PORT variables break start-up)")
        if annotations.get("prometheus.io/scrape") != "true" or annotations.get("prometheus.io/port") != str(ADMIN_PORT):
            fail(path, f"{name}: pod template lacks Prometheus scrape annotations on port {ADMIN_PORT}")
        for c in all_containers(pod):
            if not c.get("image", "").split(":")[0].endswith("sealgate"):
                continue
            sc = c.get("securityContext", {})
            if not (sc.get("runAsNonRoot") or pod_sc.get("runAsNonRoot")):
                fail(path, f"{c['name']}: runAsNonRoot not set")
            if sc.get("readOnlyRootFilesystem") is not True:
                fail(path, f"{c['name']}: readOnlyRootFilesystem not true")
            if sc.get("allowPrivilegeEscalation") is not False:
                fail(path, f"{c['name']}: allowPrivilegeEscalation not false")
            if sc.get("capabilities", {}).get("drop") != ["ALL"]:
                fail(path, f"{c['name']}: capabilities are not dropped (drop: [ALL])")
            if "requests" not in c.get("resources", {}):
                fail(path, f"{c['name']}: no resource requests")
            if not is_sealgate(c):
                continue
            ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
            if ports.get("admin") != ADMIN_PORT:
                fail(path, f"{c['name']}: no port named admin on {ADMIN_PORT}")
            for probe, want in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"), ("startupProbe", "/healthz")):
                got = c.get(probe, {}).get("httpGet", {})
                if got.get("path") != want or got.get("port") not in ("admin", ADMIN_PORT):
                    fail(path, f"{c['name']}: {probe} should GET {want} on the admin port")


def check_gateway_wiring(objects):
    deployments = {o["metadata"]["name"]: (p, o) for p, o in by_kind(objects, "Deployment")}
    for path, svc in by_kind(objects, "Service"):
        pods = [
            (n, o) for n, (_, o) in deployments.items()
            if labels_match(svc["spec"]["selector"], o["spec"]["template"]["metadata"]["labels"])
        ]
        if len(pods) != 1:
            fail(path, f"Service {svc['metadata']['name']} selects {len(pods)} Deployments")
            continue
        names = {p["name"] for c in pods[0][1]["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])}
        for port in svc["spec"]["ports"]:
            if port["targetPort"] not in names:
                fail(path, f"Service port {port['name']} targets unknown container port {port['targetPort']}")
        for mpath, sm in by_kind(objects, "ServiceMonitor"):
            if labels_match(sm["spec"]["selector"]["matchLabels"], svc["metadata"]["labels"]):
                svc_ports = {p["name"] for p in svc["spec"]["ports"]}
                for ep in sm["spec"]["endpoints"]:
                    if ep["port"] not in svc_ports or ep.get("path", "/metrics") != "/metrics":
                        fail(mpath, f"endpoint {ep} does not name the Service's admin port and /metrics")
    for kind in CRD_KINDS:
        for mpath, sm in by_kind(objects, kind):
            if sm.get("apiVersion") != "monitoring.coreos.com/v1":
                fail(mpath, f"{kind} apiVersion {sm.get('apiVersion')}")
            matched = [s for _, s in by_kind(objects, "Service") if labels_match(sm["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])]
            if not matched:
                fail(mpath, f"{kind} selects no Service")
    for path, hpa in by_kind(objects, "HorizontalPodAutoscaler"):
        ref = hpa["spec"]["scaleTargetRef"]
        if ref["kind"] != "Deployment" or ref["name"] not in deployments:
            fail(path, f"HPA targets unknown {ref['kind']} {ref['name']}")
            continue
        dep = deployments[ref["name"]][1]
        if hpa["spec"]["minReplicas"] > dep["spec"]["replicas"]:
            fail(path, "HPA minReplicas above the Deployment's replicas")
        if not any(m.get("resource", {}).get("name") == "cpu" for m in hpa["spec"]["metrics"]):
            fail(path, "HPA does not scale on CPU")
    for path, pdb in by_kind(objects, "PodDisruptionBudget"):
        sel = pdb["spec"]["selector"]["matchLabels"]
        if not any(labels_match(sel, o["spec"]["template"]["metadata"]["labels"]) for _, o in deployments.values()):
            fail(path, "PodDisruptionBudget selects no Deployment")


def image_env(root):
    """The SEALGATE_* variables deploy/Dockerfile sets: part of every container's
    configuration, below the container's own environment and above its config file."""
    text = (root / "deploy/Dockerfile").read_text()
    return dict(re.findall(r"^\s*(?:ENV\s+)?(SEALGATE_[A-Z0-9_]+)=(\S+)", text, re.M))


IMAGE_ENV = {}


def resolve_env(container, objects):
    """The environment a container gets from the image, literal values, ConfigMaps and
    Secrets."""
    data = {}
    for _, obj in objects:
        if obj.get("kind") in ("ConfigMap", "Secret"):
            data[(obj["kind"], obj["metadata"]["name"])] = {
                **(obj.get("data") or {}),
                **(obj.get("stringData") or {}),
            }
    env = dict(IMAGE_ENV)
    for src in container.get("envFrom", []):
        if "configMapRef" in src:
            env.update(data.get(("ConfigMap", src["configMapRef"]["name"]), {}))
        if "secretRef" in src:
            env.update(data.get(("Secret", src["secretRef"]["name"]), {}))
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
        vf = item.get("valueFrom", {})
        for kind, field in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
            if field in vf:
                env[item["name"]] = data.get((kind, vf[field]["name"]), {}).get(vf[field]["key"], "")
    return {k: str(v) for k, v in env.items()}


def mounted_file(container, pod, path):
    """The volume (and key) that provides `path` inside the container, or None."""
    for m in container.get("volumeMounts", []):
        mp = m["mountPath"].rstrip("/")
        if path == mp or path.startswith(mp + "/"):
            return m
    return None


def run_check_config(sealgate, where, env, config_text=None):
    """Runs `sealgate check-config` with exactly `env` (plus PATH); returns the merged
    view of the configuration this check can see (file values overridden by env)."""
    with tempfile.TemporaryDirectory() as tmp:
        # The files and hosts these configs name exist only where they are deployed.
        args = [sealgate, "check-config", "--config-only"]
        if config_text is not None:
            cfg = Path(tmp) / "config.toml"
            cfg.write_text(config_text)
            args += ["--config", str(cfg)]
        clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        clean.update({k: v for k, v in env.items() if k.startswith("SEALGATE_")})
        res = subprocess.run(args, env=clean, capture_output=True, text=True, cwd=tmp, timeout=60)
        if res.returncode != 0:
            fail(where, f"sealgate check-config: {res.stderr.strip() or res.stdout.strip()}")
    view = tomllib.loads(config_text) if config_text else {}
    for k, v in env.items():
        if k.startswith("SEALGATE_") and k != "SEALGATE_CONFIG":
            section, _, key = k[len("SEALGATE_"):].lower().partition("__")
            if key and "__" not in key:
                view.setdefault(section, {})[key] = v
    return view


def port_of(addr):
    return int(str(addr).rsplit(":", 1)[1])


def check_sealgate_configs(objects, sealgate):
    for path, name, template in pod_specs(objects):
        pod = template["spec"]
        cm_data = {
            o["metadata"]["name"]: o.get("data", {}) for _, o in by_kind(objects, "ConfigMap")
        }
        for c in all_containers(pod):
            if not is_sealgate(c):
                continue
            where = f"{path} ({name}/{c['name']})"
            env = resolve_env(c, objects)
            config_text = None
            args = c.get("args", [])
            if "--config" in args:
                cfg_path = args[args.index("--config") + 1]
                m = mounted_file(c, pod, cfg_path)
                vol = next((v for v in pod.get("volumes", []) if m and v["name"] == m["name"]), None)
                if not vol or "configMap" not in vol:
                    fail(where, f"--config {cfg_path} is not on a mounted ConfigMap")
                    continue
                key = m.get("subPath") or Path(cfg_path).name
                config_text = cm_data.get(vol["configMap"]["name"], {}).get(key)
                if config_text is None:
                    fail(where, f"ConfigMap {vol['configMap']['name']} has no key {key}")
                    continue
            view = run_check_config(sealgate, where, env, config_text)
            server = view.get("server", {})
            ports = {p["containerPort"] for p in c.get("ports", [])}
            for key, default in (("listen", "127.0.0.1:8333"), ("admin_listen", "127.0.0.1:9333")):
                addr = str(server.get(key, default))
                exposed = key == "admin_listen" or "s3" in {p["name"] for p in c.get("ports", [])}
                if exposed and not addr.startswith("0.0.0.0:"):
                    fail(where, f"server.{key} = {addr} is unreachable from outside the container")
                if exposed and port_of(addr) not in ports:
                    fail(where, f"server.{key} port {port_of(addr)} is not a containerPort")
            files = [view.get("kms", {}).get("master_key_file"), server.get("tls_cert"), server.get("tls_key")]
            for f in filter(None, files):
                if mounted_file(c, pod, str(f)) is None:
                    fail(where, f"{f} is on no mounted volume")
            grace = int(server.get("shutdown_grace_secs", DEFAULT_SHUTDOWN_GRACE_SECS))
            pre_stop = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
            pause = int(pre_stop[1]) if pre_stop[:1] == ["sleep"] else 0
            if pod.get("terminationGracePeriodSeconds", 30) <= grace + pause:
                fail(where, f"terminationGracePeriodSeconds is not above preStop {pause}s + shutdown_grace_secs {grace}s")


def check_sidecar(objects):
    for path, name, template in pod_specs(objects):
        pod = template["spec"]
        sidecars = [c for c in pod.get("initContainers", []) if is_sealgate(c)]
        if not sidecars:
            continue
        if any(c.get("restartPolicy") != "Always" for c in sidecars):
            fail(path, f"{name}: sealgate init container is not a native sidecar (restartPolicy: Always)")
        env = resolve_env(sidecars[0], objects)
        listen = env.get("SEALGATE_SERVER__LISTEN", "127.0.0.1:8333")
        want = f"http://{listen}"
        for c in pod["containers"]:
            got = {e["name"]: e.get("value") for e in c.get("env", [])}.get("AWS_ENDPOINT_URL")
            if got != want:
                fail(path, f"{c['name']}: AWS_ENDPOINT_URL is {got}, sealgate listens on {want}")


def interpolate(value):
    """Compose's ${VAR:-default} with the defaults (the environment is not consulted)."""
    return re.sub(r"\$\{[A-Za-z0-9_]+:-([^}]*)\}", r"\1", str(value))


def check_compose(root, sealgate):
    path = root / "deploy/compose.yaml"
    where = path.relative_to(root)
    doc = yaml.safe_load(path.read_text())
    services = doc.get("services", {})
    missing = [want for want in ("sealgate", "minio") if want not in services]
    for want in missing:
        fail(where, f"no service {want}")
    if missing:
        return
    sg = services["sealgate"]
    build = sg.get("build", {})
    dockerfile = (path.parent / build.get("context", ".") / build.get("dockerfile", "Dockerfile")).resolve()
    if dockerfile != (root / "deploy/Dockerfile").resolve():
        fail(where, f"sealgate is not built from deploy/Dockerfile ({dockerfile})")
    if sg.get("depends_on", {}).get("minio", {}).get("condition") != "service_healthy":
        fail(where, "sealgate does not wait for a healthy minio")
    named = set((doc.get("volumes") or {}).keys())
    for sname, svc in services.items():
        if "healthcheck" not in svc or not svc["healthcheck"].get("test"):
            fail(where, f"{sname}: no healthcheck")
        for p in svc.get("ports", []):
            if not str(p).startswith("127.0.0.1:"):
                fail(where, f"{sname}: port {p} is published beyond loopback")
        for v in svc.get("volumes", []):
            src = str(v).split(":", 1)[0]
            if not src.startswith((".", "/")) and src not in named:
                fail(where, f"{sname}: volume {src} is not declared")
    # "HOST_IP:HOST_PORT:CONTAINER_PORT": the container side must be sealgate's ports.
    published = {int(str(p).rsplit(":", 1)[-1]) for p in sg.get("ports", [])}
    if published != {S3_PORT, ADMIN_PORT}:
        fail(where, f"sealgate publishes {sorted(published)}, expected {S3_PORT} and {ADMIN_PORT}")
    grace = re.fullmatch(r"(\d+)s", str(sg.get("stop_grace_period", "10s")))
    if not grace or int(grace.group(1)) <= DEFAULT_SHUTDOWN_GRACE_SECS:
        fail(where, "sealgate stop_grace_period is not above shutdown_grace_secs (30 s)")
    env = dict(IMAGE_ENV)
    env.update({k: interpolate(v) for k, v in (sg.get("environment") or {}).items()})
    for key, port in (("SEALGATE_SERVER__LISTEN", S3_PORT), ("SEALGATE_SERVER__ADMIN_LISTEN", ADMIN_PORT)):
        if env.get(key) != f"0.0.0.0:{port}":
            fail(where, f"sealgate's {key} is {env.get(key)}, not reachable as 0.0.0.0:{port}")
    run_check_config(sealgate, f"{where} (sealgate)", env)
    if env.get("SEALGATE_BACKEND__ACCESS_KEY") != interpolate(services["minio"]["environment"]["MINIO_ROOT_USER"]):
        fail(where, "sealgate's backend access key is not minio's root user")


def check_systemd(root):
    path = root / "deploy/systemd/sealgate.service"
    unit = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";")):
            k, _, v = line.partition("=")
            unit.setdefault(k.strip(), []).append(v.strip())
    where = path.relative_to(root)
    expected = {
        "ExecStart": "/usr/local/bin/sealgate --config /etc/sealgate/config.toml",
        "Restart": "on-failure",
        "KillSignal": "SIGTERM",
        "StateDirectory": "sealgate",
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "CapabilityBoundingSet": "",
        "MemoryDenyWriteExecute": "yes",
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    }
    for k, v in expected.items():
        if unit.get(k, [None])[0] != v:
            fail(where, f"{k}={unit.get(k)} (expected {v!r})")
    stop = re.fullmatch(r"(\d+)s", unit.get("TimeoutStopSec", [""])[0])
    if not stop or int(stop.group(1)) <= DEFAULT_SHUTDOWN_GRACE_SECS:
        fail(where, "TimeoutStopSec is not above shutdown_grace_secs (30 s)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", type=Path, required=True)
    ap.add_argument("--sealgate", required=True)
    a = ap.parse_args()
    a.sealgate = os.path.abspath(a.sealgate)
    objects = load_manifests(a.root)
    IMAGE_ENV.update(image_env(a.root))
    if not IMAGE_ENV:
        fail("deploy/Dockerfile", "sets no SEALGATE_* variables")
    checks = [
        lambda: check_kustomization(a.root),
        lambda: check_references(objects),
        lambda: check_pod_hardening(objects),
        lambda: check_gateway_wiring(objects),
        lambda: check_sidecar(objects),
        lambda: check_sealgate_configs(objects, a.sealgate),
        lambda: check_compose(a.root, a.sealgate),
        lambda: check_systemd(a.root),
    ]
    for check in checks:
        # A file too broken for a check's assumptions (a missing field, a malformed
        # port) is a failure to report, and the remaining checks still run.
        try:
            check()
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as e:
            fail("checks.py", f"malformed input: {type(e).__name__}: {e}\n{traceback.format_exc()}")
    for f in failures:
        print(f"FAIL {f}", file=sys.stderr)
    print(f"checks.py: {len(objects)} Kubernetes objects, compose.yaml, systemd unit: {len(failures)} failures")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
