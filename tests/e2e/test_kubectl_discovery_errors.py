"""Discovery and docs through kubectl (api-resources, explain) and kubectl's view of the server's errors."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.conftest import Server, fixed_table, write


def test_api_resources_lists_short_names(server: Server) -> None:
    rows = fixed_table(server.kubectl("api-resources").stdout)
    assert rows, "no output"
    assert list(rows[0]) == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    by_name = {(r["NAME"], r["APIVERSION"]): r for r in rows}
    expected = {
        ("services", "v1"): ("svc", "true", "Service"),
        ("endpoints", "v1"): ("ep", "true", "Endpoints"),
        ("pods", "v1"): ("po", "true", "Pod"),
        ("namespaces", "v1"): ("ns", "false", "Namespace"),
        ("configmaps", "v1"): ("cm", "true", "ConfigMap"),
        ("deployments", "apps/v1"): ("deploy", "true", "Deployment"),
        ("replicasets", "apps/v1"): ("rs", "true", "ReplicaSet"),
        ("endpointslices", "discovery.k8s.io/v1"): ("", "true", "EndpointSlice"),
        ("ingresses", "networking.k8s.io/v1"): ("ing", "true", "Ingress"),
        ("ingressclasses", "networking.k8s.io/v1"): ("", "false", "IngressClass"),
    }
    for key, (short, namespaced, kind) in expected.items():
        assert key in by_name, f"{key} missing from api-resources"
        row = by_name[key]
        assert (row["SHORTNAMES"], row["NAMESPACED"], row["KIND"]) == (short, namespaced, kind), row


def test_api_resources_filters(server: Server) -> None:
    names = server.kubectl("api-resources", "--api-group=networking.k8s.io", "-o", "name").stdout.split()
    assert sorted(names) == ["ingressclasses.networking.k8s.io", "ingresses.networking.k8s.io"]
    namespaced = server.kubectl("api-resources", "--namespaced=false", "-o", "name").stdout.split()
    assert "namespaces" in namespaced and "services" not in namespaced
    assert "v1" in server.kubectl("api-versions").stdout.split()
    assert "discovery.k8s.io/v1" in server.kubectl("api-versions").stdout.split()


def test_short_names_work_for_get(server: Server) -> None:
    for short in ("svc", "ep", "deploy", "ing", "cm", "po", "ns", "endpointslices"):
        result = server.kubectl("get", short, "-A", check=False)
        assert result.rc == 0, str(result)
    names = server.kubectl("get", "svc", "-n", "default", "-o", "name").stdout.split()
    assert "service/kubernetes" in names
    names = server.kubectl("get", "endpointslices", "-n", "default", "-o", "name").stdout.split()
    assert "endpointslice.discovery.k8s.io/kubernetes" in names


def test_explain_service_ports(server: Server) -> None:
    out = server.kubectl("explain", "service.spec.ports").stdout
    assert "KIND:       Service" in out and "VERSION:    v1" in out
    assert "FIELD: ports <[]ServicePort>" in out
    fields = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ") and not line.startswith("   ")
              and line.split()[0].isidentifier()}
    for name in ("appProtocol", "name", "nodePort", "port", "protocol", "targetPort"):
        assert name in fields, f"{name} not listed under FIELDS:\n{out}"
    assert "<integer> -required-" in fields["port"]
    assert "<IntOrString>" in fields["targetPort"]
    out = server.kubectl("explain", "service.spec.ports.targetPort").stdout
    assert "FIELD: targetPort <IntOrString>" in out
    assert "Number or name of the port to access on the pods targeted by the service" in out


def test_explain_other_kinds(server: Server) -> None:
    assert "FIELD: replicas <integer>" in server.kubectl("explain", "deployment.spec.replicas").stdout
    out = server.kubectl("explain", "ingress.spec.rules").stdout
    assert "KIND:       Ingress" in out and "GROUP:      networking.k8s.io" in out
    result = server.kubectl("explain", "service.spec.nosuchfield", check=False)
    assert result.rc == 1 and 'field "nosuchfield" does not exist' in result.stderr, str(result)


BAD_PORT = """\
apiVersion: v1
kind: Service
metadata:
  name: bad-port
  namespace: {ns}
spec:
  ports:
  - port: 0
"""


def test_create_invalid_manifest_prints_kube_message(server: Server, ns: str, tmp_path: Path) -> None:
    path = write(tmp_path, "bad.yaml", BAD_PORT.format(ns=ns))
    result = server.kubectl("create", "-f", str(path), check=False)
    assert result.rc == 1
    assert result.stdout == ""
    # kube defaults targetPort to the port (0) and validates both, so kubectl lists two causes
    assert 'The Service "bad-port" is invalid: ' in result.stderr, result.stderr
    assert "* spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive" in result.stderr
    # nothing was stored
    assert server.kubectl("get", "svc", "bad-port", "-n", ns, check=False).rc == 1


def test_cluster_ip_outside_range_names_the_range(server: Server, ns: str, tmp_path: Path) -> None:
    path = write(tmp_path, "out.yaml", f"""\
apiVersion: v1
kind: Service
metadata:
  name: outside
  namespace: {ns}
spec:
  clusterIP: 192.168.7.7
  ports:
  - port: 80
""")
    result = server.kubectl("create", "-f", str(path), check=False)
    assert result.rc == 1
    assert 'The Service "outside" is invalid' in result.stderr
    assert "192.168.7.7" in result.stderr and "10.96.0.0/12" in result.stderr, result.stderr
    response = server.http("POST", f"/api/v1/namespaces/{ns}/services", {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "outside"},
        "spec": {"clusterIP": "192.168.7.7", "ports": [{"port": 80}]}})
    assert response.status_code == 422
    status = response.json()
    assert status["kind"] == "Status" and status["reason"] == "Invalid" and status["code"] == 422
    assert "10.96.0.0/12" in status["message"]
    assert {c["field"] for c in status["details"]["causes"]} <= {"spec.clusterIP", "spec.clusterIPs",
                                                                 "spec.clusterIPs[0]"}


def test_duplicate_create_is_already_exists(server: Server, ns: str, tmp_path: Path) -> None:
    path = write(tmp_path, "dup.yaml", BAD_PORT.format(ns=ns).replace("port: 0", "port: 80")
                 .replace("bad-port", "dup"))
    assert server.kubectl("create", "-f", str(path)).stdout.strip() == "service/dup created"
    result = server.kubectl("create", "-f", str(path), check=False)
    assert result.rc == 1
    assert 'Error from server (AlreadyExists): error when creating "' in result.stderr, result.stderr
    assert 'services "dup" already exists' in result.stderr
    result = server.kubectl("create", "namespace", ns, check=False)
    assert result.rc == 1 and f'namespaces "{ns}" already exists' in result.stderr


def test_unknown_field_is_rejected_strictly(server: Server, ns: str, tmp_path: Path) -> None:
    path = write(tmp_path, "unknown.yaml", f"""\
apiVersion: v1
kind: Service
metadata:
  name: unknown
  namespace: {ns}
spec:
  portz: 3
  ports:
  - port: 80
""")
    result = server.kubectl("create", "-f", str(path), check=False)
    assert result.rc == 1
    assert 'unknown field "spec.portz"' in result.stderr, result.stderr
    result = server.kubectl("create", "-f", str(path), "--validate=false")
    assert result.stdout.strip() == "service/unknown created"
    stored = json.loads(server.kubectl("get", "svc", "unknown", "-n", ns, "-o", "json").stdout)
    assert "portz" not in stored["spec"], "an unknown field was stored (kube drops it)"


def test_create_in_missing_namespace(server: Server) -> None:
    result = server.kubectl("create", "configmap", "c", "-n", "no-such-namespace", check=False)
    assert result.rc == 1
    # the typed client of `kubectl create configmap` words it "error: failed to create configmap: ..."
    assert 'namespaces "no-such-namespace" not found' in result.stderr, result.stderr
