"""Writing with the real kubectl: apply (client-side and server-side), edit, patch, label, annotate, scale, wait."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path
from typing import Any

from tests.e2e.conftest import Server, killpg, write


def service(ns: str, name: str, ports: list[dict[str, Any]], **extra: Any) -> str:
    doc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns, **extra},
           "spec": {"selector": {"app": name}, "ports": ports}}
    return json.dumps(doc, indent=1)


def get(server: Server, *args: str) -> dict[str, Any]:
    return json.loads(server.kubectl("get", *args, "-o", "json").stdout)


def directive_keys(obj: Any, path: str = "") -> list[str]:
    """Every key starting with `$` (an SMP directive that leaked into the stored object)."""
    found: list[str] = []
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key.startswith("$"):
                found.append(f"{path}.{key}")
            found += directive_keys(value, f"{path}.{key}")
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            found += directive_keys(value, f"{path}[{i}]")
    return found


LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def test_apply_twice_then_changed_port(server: Server, ns: str, tmp_path: Path) -> None:
    path = write(tmp_path, "svc.json", service(ns, "web", [{"name": "http", "port": 80, "targetPort": 8080}]))
    assert server.kubectl("apply", "-f", str(path)).stdout.strip() == "service/web created"
    assert server.kubectl("apply", "-f", str(path)).stdout.strip() == "service/web unchanged"
    first = get(server, "svc", "web", "-n", ns)
    assert json.loads(first["metadata"]["annotations"][LAST_APPLIED])["spec"]["ports"][0]["port"] == 80

    write(tmp_path, "svc.json", service(ns, "web", [{"name": "http", "port": 81, "targetPort": 8080}]))
    assert server.kubectl("apply", "-f", str(path)).stdout.strip() == "service/web configured"
    svc = get(server, "svc", "web", "-n", ns)
    assert svc["spec"]["ports"] == [{"name": "http", "port": 81, "protocol": "TCP", "targetPort": 8080}]
    assert directive_keys(svc) == []
    assert svc["spec"]["clusterIP"] == first["spec"]["clusterIP"]  # the allocation survives the patch
    assert json.loads(svc["metadata"]["annotations"][LAST_APPLIED])["spec"]["ports"][0]["port"] == 81
    assert server.kubectl("apply", "-f", str(path)).stdout.strip() == "service/web unchanged"

    # two ports, then drop the first: the list is merged by its key (port), not replaced or appended
    write(tmp_path, "svc.json", service(ns, "web", [{"name": "http", "port": 81, "targetPort": 8080},
                                                    {"name": "metrics", "port": 9100, "targetPort": 9100}]))
    server.kubectl("apply", "-f", str(path))
    write(tmp_path, "svc.json", service(ns, "web", [{"name": "metrics", "port": 9100, "targetPort": 9100}]))
    server.kubectl("apply", "-f", str(path))
    svc = get(server, "svc", "web", "-n", ns)
    assert svc["spec"]["ports"] == [{"name": "metrics", "port": 9100, "protocol": "TCP", "targetPort": 9100}]
    assert directive_keys(svc) == []


def test_apply_keeps_fields_set_by_others(server: Server, ns: str, tmp_path: Path) -> None:
    path = write(tmp_path, "svc.json", service(ns, "mixed", [{"name": "http", "port": 80}]))
    server.kubectl("apply", "-f", str(path))
    server.kubectl("label", "svc", "mixed", "-n", ns, "owner=someone-else")
    write(tmp_path, "svc.json", service(ns, "mixed", [{"name": "http", "port": 80}], labels={"app": "mixed"}))
    assert server.kubectl("apply", "-f", str(path)).stdout.strip() == "service/mixed configured"
    svc = get(server, "svc", "mixed", "-n", ns)
    assert svc["metadata"]["labels"] == {"app": "mixed", "owner": "someone-else"}
    assert svc["spec"]["ports"] == [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 80}]


def test_apply_deployment_image_change_merges_containers(server: Server, ns: str, tmp_path: Path) -> None:
    def deployment(image: str) -> str:
        return json.dumps({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "pc-deployment", "namespace": ns},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "nginx-pod"}},
                     "template": {"metadata": {"labels": {"app": "nginx-pod"}},
                                  "spec": {"containers": [{"name": "nginx", "image": image,
                                                           "ports": [{"containerPort": 80}]}]}}}})

    path = write(tmp_path, "deploy.json", deployment("nginx:1.17.1"))
    server.kubectl("apply", "-f", str(path))
    write(tmp_path, "deploy.json", deployment("nginx:1.17.2"))
    assert server.kubectl("apply", "-f", str(path)).stdout.strip() == "deployment.apps/pc-deployment configured"
    dep = get(server, "deploy", "pc-deployment", "-n", ns)
    containers = dep["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in containers] == [("nginx", "nginx:1.17.2")]
    assert dep["metadata"]["generation"] == 2
    assert directive_keys(dep) == []


def test_server_side_apply_conflicts_and_force(server: Server, ns: str, tmp_path: Path) -> None:
    path = write(tmp_path, "svc.json", service(ns, "ssa", [{"name": "http", "port": 80, "targetPort": 8080}]))
    result = server.kubectl("apply", "--server-side", "-f", str(path))
    assert result.stdout.strip() == "service/ssa serverside-applied"
    svc = get(server, "svc", "ssa", "-n", ns, "--show-managed-fields")
    managers = {m["manager"]: m for m in svc["metadata"]["managedFields"]}
    assert managers["kubectl"]["operation"] == "Apply"
    assert managers["kubectl"]["fieldsType"] == "FieldsV1"
    assert "f:spec" in managers["kubectl"]["fieldsV1"]
    # re-applying the same configuration is accepted and changes nothing
    assert server.kubectl("apply", "--server-side", "-f", str(path)).rc == 0
    assert get(server, "svc", "ssa", "-n", ns)["metadata"]["resourceVersion"] == svc["metadata"]["resourceVersion"]

    other = write(tmp_path, "other.json", service(ns, "ssa", [{"name": "http", "port": 80, "targetPort": 9090}]))
    result = server.kubectl("apply", "--server-side", "--field-manager=other", "-f", str(other), check=False)
    assert result.rc == 1, str(result)
    assert "conflict" in result.stderr.lower() and '"kubectl"' in result.stderr, result.stderr
    assert get(server, "svc", "ssa", "-n", ns)["spec"]["ports"][0]["targetPort"] == 8080

    result = server.kubectl("apply", "--server-side", "--field-manager=other", "--force-conflicts", "-f", str(other))
    assert result.stdout.strip() == "service/ssa serverside-applied"
    svc = get(server, "svc", "ssa", "-n", ns, "--show-managed-fields")
    assert svc["spec"]["ports"][0]["targetPort"] == 9090
    managers = {m["manager"]: m for m in svc["metadata"]["managedFields"]}
    assert managers["other"]["operation"] == "Apply"
    assert "targetPort" in json.dumps(managers["other"]["fieldsV1"])
    assert "f:targetPort" not in json.dumps(managers.get("kubectl", {}).get("fieldsV1", {}))


def test_edit_with_a_sed_editor(server: Server, ns: str, tmp_path: Path) -> None:
    server.kubectl("apply", "-f", str(write(tmp_path, "svc.json",
                                             service(ns, "edited", [{"name": "http", "port": 80}]))))
    editor = write(tmp_path, "editor.sh", "#!/bin/sh\nsed -i -e 's/targetPort: 80$/targetPort: 9090/' "
                                          "-e 's/^  name: edited$/  name: edited\\n  labels:\\n    edited: \"yes\"/' "
                                          "\"$1\"\n")
    editor.chmod(editor.stat().st_mode | stat.S_IXUSR)
    result = server.kubectl("edit", "svc", "edited", "-n", ns, env={"KUBE_EDITOR": str(editor)})
    assert result.stdout.strip() == "service/edited edited", str(result)
    svc = get(server, "svc", "edited", "-n", ns)
    assert svc["spec"]["ports"] == [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 9090}]
    assert svc["metadata"]["labels"] == {"edited": "yes"}
    assert directive_keys(svc) == []
    # an editor that changes nothing: "Edit cancelled, no changes made."
    noop = write(tmp_path, "noop.sh", "#!/bin/sh\nexit 0\n")
    noop.chmod(noop.stat().st_mode | stat.S_IXUSR)
    result = server.kubectl("edit", "svc", "edited", "-n", ns, env={"KUBE_EDITOR": str(noop)})
    assert "Edit cancelled, no changes made." in result.stdout + result.stderr


def test_patch_json_merge_strategic(server: Server, ns: str, tmp_path: Path) -> None:
    server.kubectl("apply", "-f", str(write(tmp_path, "svc.json",
                                             service(ns, "patched", [{"name": "http", "port": 80}]))))
    out = server.kubectl("patch", "svc", "patched", "-n", ns, "--type=json",
                         "-p", '[{"op":"replace","path":"/spec/ports/0/port","value":8081}]').stdout
    assert out.strip() == "service/patched patched"
    assert get(server, "svc", "patched", "-n", ns)["spec"]["ports"][0]["port"] == 8081

    server.kubectl("patch", "svc", "patched", "-n", ns, "--type=merge", "-p", '{"metadata":{"labels":{"tier":"web"}}}')
    assert get(server, "svc", "patched", "-n", ns)["metadata"]["labels"] == {"tier": "web"}

    server.kubectl("patch", "svc", "patched", "-n", ns, "--type=strategic",
                   "-p", '{"spec":{"ports":[{"name":"extra","port":9000,"targetPort":9000}]}}')
    ports = get(server, "svc", "patched", "-n", ns)["spec"]["ports"]
    assert sorted((p["name"], p["port"]) for p in ports) == [("extra", 9000), ("http", 8081)]

    server.kubectl("patch", "svc", "patched", "-n", ns, "--type=strategic",
                   "-p", '{"spec":{"ports":[{"port":8081,"$patch":"delete"}]}}')
    svc = get(server, "svc", "patched", "-n", ns)
    assert svc["spec"]["ports"] == [{"name": "extra", "port": 9000, "protocol": "TCP", "targetPort": 9000}]
    assert directive_keys(svc) == []

    out = server.kubectl("patch", "svc", "patched", "-n", ns, "--type=merge",
                         "-p", '{"metadata":{"labels":{"tier":"web"}}}').stdout
    assert out.strip() == "service/patched patched (no change)"

    result = server.kubectl("patch", "svc", "patched", "-n", ns, "--type=json",
                            "-p", '[{"op":"test","path":"/spec/type","value":"NodePort"}]', check=False)
    assert result.rc == 1 and ("Error from server" in result.stderr or "invalid" in result.stderr), str(result)
    assert "Internal error" not in result.stderr
    result = server.kubectl("patch", "svc", "patched", "-n", ns, "--type=merge",
                            "-p", '{"spec":{"ports":[{"port":0}]}}', check=False)
    assert result.rc == 1
    assert 'The Service "patched" is invalid' in result.stderr and "spec.ports[0].port" in result.stderr


def test_label_and_annotate(server: Server, ns: str, tmp_path: Path) -> None:
    server.kubectl("apply", "-f", str(write(tmp_path, "svc.json",
                                             service(ns, "labelled", [{"name": "http", "port": 80}]))))
    assert server.kubectl("label", "svc", "labelled", "-n", ns, "env=prod").stdout.strip() == \
        "service/labelled labeled"
    result = server.kubectl("label", "svc", "labelled", "-n", ns, "env=dev", check=False)
    assert result.rc == 1 and "already has a value (prod)" in result.stderr, str(result)
    server.kubectl("label", "svc", "labelled", "-n", ns, "env=dev", "--overwrite")
    assert get(server, "svc", "labelled", "-n", ns)["metadata"]["labels"] == {"env": "dev"}
    names = server.kubectl("get", "svc", "-n", ns, "-l", "env=dev", "-o", "name").stdout.split()
    assert names == ["service/labelled"]
    assert server.kubectl("label", "svc", "labelled", "-n", ns, "env-").stdout.strip() == \
        "service/labelled unlabeled"
    assert "labels" not in get(server, "svc", "labelled", "-n", ns)["metadata"] or \
        get(server, "svc", "labelled", "-n", ns)["metadata"]["labels"] == {}

    assert server.kubectl("annotate", "svc", "labelled", "-n", ns, "note=hello world").stdout.strip() == \
        "service/labelled annotated"
    annotations = get(server, "svc", "labelled", "-n", ns)["metadata"]["annotations"]
    assert annotations["note"] == "hello world"
    server.kubectl("annotate", "svc", "labelled", "-n", ns, "note-")
    assert "note" not in get(server, "svc", "labelled", "-n", ns)["metadata"].get("annotations", {})
    result = server.kubectl("label", "svc", "labelled", "-n", ns, "bad key=x", check=False)
    assert result.rc == 1


def test_scale_deployment(server: Server, ns: str, tmp_path: Path) -> None:
    from tests.e2e.test_kubectl_seed import DEPLOYMENT

    server.kubectl("create", "-f", "-", "-n", ns, input=DEPLOYMENT.replace("namespace: dev", f"namespace: {ns}"))
    assert server.kubectl("scale", "deploy/pc-deployment", "--replicas=5", "-n", ns).stdout.strip() == \
        "deployment.apps/pc-deployment scaled"
    dep = get(server, "deploy", "pc-deployment", "-n", ns)
    assert dep["spec"]["replicas"] == 5
    assert dep["metadata"]["generation"] == 2
    result = server.kubectl("scale", "deploy/pc-deployment", "--current-replicas=3", "--replicas=1", "-n", ns,
                            check=False)
    assert result.rc == 1 and "expected replicas to be 3, was 5" in result.stderr.lower(), str(result)
    assert get(server, "deploy", "pc-deployment", "-n", ns)["spec"]["replicas"] == 5
    scale = server.http("GET", f"/apis/apps/v1/namespaces/{ns}/deployments/pc-deployment/scale").json()
    assert scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1"
    assert scale["spec"] == {"replicas": 5} and scale["status"]["selector"] == "app=nginx-pod"


POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  containers:
  - name: nginx
    image: nginx:1.17.1
"""


def test_wait_for_ready_condition(server: Server, ns: str) -> None:
    server.kubectl("create", "-n", ns, "-f", "-", input=POD.format(name="x"))
    waiter, reader = server.kubectl_popen("wait", "--for=condition=Ready", "pod/x", "-n", ns, "--timeout=30s")
    try:
        # The waiter has to be watching (or about to) when the condition flips; either way it must succeed.
        status = {"status": {"phase": "Running", "conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"}]}}
        server.kubectl("patch", "pod", "x", "-n", ns, "--subresource=status", "--type=merge",
                       "-p", json.dumps(status))
        line = reader.wait_line(lambda line: "condition met" in line, 30, "kubectl wait to report success")
        assert line.strip() == "pod/x condition met"
        assert waiter.wait(10) == 0
    finally:
        killpg(waiter)
    pod = get(server, "pod", "x", "-n", ns)
    assert pod["status"]["phase"] == "Running"
    assert pod["spec"]["containers"][0]["image"] == "nginx:1.17.1"
    # the condition holds already: wait returns at once
    assert server.kubectl("wait", "--for=condition=Ready", "pod/x", "-n", ns, "--timeout=5s").rc == 0


def test_wait_times_out_when_not_ready(server: Server, ns: str) -> None:
    server.kubectl("create", "-n", ns, "-f", "-", input=POD.format(name="not-ready"))
    started = time.monotonic()
    result = server.kubectl("wait", "--for=condition=Ready", "pod/not-ready", "-n", ns, "--timeout=1s", check=False)
    assert result.rc == 1 and "timed out waiting for the condition" in result.stderr, str(result)
    assert time.monotonic() - started < 20


def test_status_subresource_ignores_spec_and_main_ignores_status(server: Server, ns: str) -> None:
    server.kubectl("create", "-n", ns, "-f", "-", input=POD.format(name="z"))
    server.kubectl("patch", "pod", "z", "-n", ns, "--type=merge", "-p", '{"status":{"phase":"Failed"}}')
    assert get(server, "pod", "z", "-n", ns)["status"]["phase"] == "Pending"
    server.kubectl("patch", "pod", "z", "-n", ns, "--subresource=status", "--type=merge",
                   "-p", '{"status":{"phase":"Running"},"spec":{"activeDeadlineSeconds":5}}')
    pod = get(server, "pod", "z", "-n", ns)
    assert pod["status"]["phase"] == "Running"
    assert "activeDeadlineSeconds" not in pod["spec"]
