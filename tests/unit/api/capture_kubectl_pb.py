"""One-off capture of the request bodies the real kubectl sends for its typed generators (dev-time only).

Run `python -m tests.unit.api.capture_kubectl_pb` from the repository root: it starts a throwaway fake API server on
127.0.0.1 (aggregated discovery, `/version` minor 32, 201 for every POST), runs each command in `COMMANDS` twice —
once for real (the POST body is kept as `golden/<name>.pb` when it is protobuf, `.body.json` when it is JSON) and
once with `--dry-run=client -o json` (kept as `golden/<name>.json`, the object kubectl meant) — and prints which
content type each command used. The golden files are committed; tests never run kubectl.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

GOLDEN = Path(__file__).resolve().parent / "golden"
DISCOVERY_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"

# (group, version, resource, kind, singular, short names)
RESOURCES = [
    ("", "v1", "pods", "Pod", "pod", ["po"]),
    ("", "v1", "services", "Service", "service", ["svc"]),
    ("", "v1", "configmaps", "ConfigMap", "configmap", ["cm"]),
    ("", "v1", "secrets", "Secret", "secret", []),
    ("", "v1", "namespaces", "Namespace", "namespace", ["ns"]),
    ("", "v1", "serviceaccounts", "ServiceAccount", "serviceaccount", ["sa"]),
    ("", "v1", "nodes", "Node", "node", ["no"]),
    ("apps", "v1", "deployments", "Deployment", "deployment", ["deploy"]),
    ("batch", "v1", "jobs", "Job", "job", []),
    ("batch", "v1", "cronjobs", "CronJob", "cronjob", ["cj"]),
    ("networking.k8s.io", "v1", "ingresses", "Ingress", "ingress", ["ing"]),
]

WEB_DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
    "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
             "template": {"metadata": {"labels": {"app": "web"}},
                          "spec": {"containers": [{"name": "nginx", "image": "nginx",
                                                   "ports": [{"containerPort": 80}]}]}}},
}

# Served for `kubectl debug --copy-to`, which copies it through kubectl's Go types and POSTs the copy as protobuf.
# It is written the way Go marshals it (no zero values of omitempty fields), so the copy must decode back to it.
RICH_POD: dict[str, Any] = json.loads((GOLDEN / "debug_copy.source.json").read_text())
NODE = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1"}},
        "spec": {}, "status": {}}

# golden name -> kubectl arguments (without kubeconfig/cache flags)
COMMANDS: dict[str, list[str]] = {
    "deployment": ["create", "deployment", "web", "--image=nginx", "--replicas=3", "--port=80"],
    "deployment_zero": ["create", "deployment", "zero", "--image=nginx", "--replicas=0"],
    "deployment_multi": ["create", "deployment", "multi", "--image=nginx:1.17", "--image=busybox", "-n", "dev"],
    "deployment_command": ["create", "deployment", "cmd", "--image=busybox", "--", "sleep", "3600"],
    "service_clusterip": ["create", "service", "clusterip", "my-svc", "--tcp=5678:8080"],
    "service_headless": ["create", "service", "clusterip", "headless", "--clusterip=None", "--tcp=80:8080"],
    "service_nodeport": ["create", "service", "nodeport", "np", "--tcp=80:8080", "--node-port=30123"],
    "service_loadbalancer": ["create", "service", "loadbalancer", "lb", "--tcp=80:http", "--tcp=443"],
    "service_externalname": ["create", "service", "externalname", "ext", "--external-name=example.com"],
    "configmap": ["create", "configmap", "cm", "--from-literal=a=b", "--from-literal=c=d"],
    "configmap_binary": ["create", "configmap", "bin", "--from-file=blob=@BINFILE@", "--from-literal=t=x"],
    "secret_generic": ["create", "secret", "generic", "s", "--from-literal=k=v", "--from-literal=empty="],
    "secret_typed": ["create", "secret", "generic", "typed", "--type=example.com/t", "--from-literal=k=v"],
    "secret_docker": ["create", "secret", "docker-registry", "reg", "--docker-server=r.example.com",
                      "--docker-username=u", "--docker-password=p"],
    "namespace": ["create", "namespace", "dev"],
    "serviceaccount": ["create", "serviceaccount", "sa"],
    "ingress": ["create", "ingress", "ing", "--rule=foo.com/bar=svc1:8080"],
    "job": ["create", "job", "j", "--image=busybox", "--", "echo", "hi"],
    "cronjob": ["create", "cronjob", "cj", "--image=busybox", "--schedule=*/1 * * * *"],
    "run": ["run", "tmp", "--image=busybox", "--restart=Never", "--", "sleep", "1"],
    "run_full": ["run", "full", "--image=nginx", "--port=80", "--env=A=1", "--env=B=", "--labels=app=full,tier=fe",
                 "--annotations=note=hi", "--image-pull-policy=IfNotPresent", "--restart=OnFailure"],
    "expose": ["expose", "deployment", "web", "--port=80", "--target-port=8080"],
    "debug_copy": ["debug", "rich", "--copy-to=rich-copy", "--image=busybox", "--container=dbg", "--keep-liveness",
                   "--keep-readiness", "--keep-startup", "--keep-labels", "--keep-annotations", "--same-node"],
    "debug_node": ["debug", "node/n1", "--image=busybox"],
}


class _Handler(BaseHTTPRequestHandler):
    records: list[dict[str, Any]] = []

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature fixed by the base class
        pass

    def _send(self, status: int, obj: Any, content_type: str = "application/json") -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        path = self.path.split("?", 1)[0]
        if path == "/version":
            self._send(200, {"major": "1", "minor": "32", "gitVersion": "v1.32.0"})
        elif path in ("/api", "/apis"):
            self._send(200, _discovery(core=path == "/api"), DISCOVERY_TYPE)
        elif path.endswith("/deployments/web"):
            self._send(200, WEB_DEPLOYMENT)
        elif path.endswith("/pods/rich"):
            self._send(200, RICH_POD)
        elif path.endswith("/nodes/n1"):
            self._send(200, NODE)
        else:
            self._send(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
                             "code": 404, "message": "not found"})

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.records.append({"path": self.path, "type": self.headers.get("Content-Type", ""), "body": body})
        kind = next((r[3] for r in RESOURCES if f"/{r[2]}" in self.path.split("?")[0]), "Unknown")
        group = next((r[0] for r in RESOURCES if r[3] == kind), "")
        self._send(201, {"apiVersion": f"{group}/v1" if group else "v1", "kind": kind,
                         "metadata": {"name": "captured", "namespace": "default"}})


def _discovery(core: bool) -> dict[str, Any]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for group, version, resource, kind, singular, short in RESOURCES:
        if (group == "") != core:
            continue
        scope = "Cluster" if resource == "namespaces" else "Namespaced"
        groups.setdefault(group, []).append({
            "resource": resource, "responseKind": {"group": group, "version": version, "kind": kind},
            "scope": scope, "singularResource": singular, "shortNames": short,
            "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]})
    items = [{"metadata": {"name": name} if name else {},
              "versions": [{"version": "v1", "freshness": "Current", "resources": resources}]}
             for name, resources in groups.items()]
    return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items}


def _kubeconfig(directory: Path, port: int) -> Path:
    path = directory / "kubeconfig"
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u", "namespace": "default"}}]}))
    return path


def _run(directory: Path, kubeconfig: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
    cmd = ["kubectl", f"--kubeconfig={kubeconfig}", f"--cache-dir={directory / 'cache'}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)


def _capture(name: str, args: list[str], directory: Path, kubeconfig: Path) -> str:
    _Handler.records.clear()
    done = _run(directory, kubeconfig, args)
    posts = list(_Handler.records)
    split = args.index("--") if "--" in args else len(args)
    dry = _run(directory, kubeconfig, [*args[:split], "--dry-run=client", "-o", "json", *args[split:]])
    if dry.returncode == 0:
        (GOLDEN / f"{name}.json").write_text(json.dumps(json.loads(dry.stdout), indent=2, sort_keys=True) + "\n")
    if not posts:
        return f"{name}: no POST (rc={done.returncode}: {done.stderr.strip()[:200]})"
    post = posts[-1]
    suffix = ".pb" if "protobuf" in post["type"] else ".body.json"
    (GOLDEN / f"{name}{suffix}").write_bytes(post["body"])
    return f"{name}: POST {post['path']} Content-Type {post['type']} (rc={done.returncode})"


def main() -> None:
    GOLDEN.mkdir(exist_ok=True)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            directory = Path(tmp)
            binfile = directory / "blob.bin"
            binfile.write_bytes(bytes(range(256)))
            kubeconfig = _kubeconfig(directory, server.server_address[1])
            for name, args in COMMANDS.items():
                args = [a.replace("@BINFILE@", str(binfile)) for a in args]
                print(_capture(name, args, directory, kubeconfig))
    finally:
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    main()
