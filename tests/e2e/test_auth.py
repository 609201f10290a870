"""Authentication and authorization: no token is 401, the read-only token reads but may not write (403),
the admin token does everything; the same through kubectl with each kubeconfig."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import Server


def test_no_token_is_401(server: Server) -> None:
    for path in ("/api/v1/namespaces", "/api", "/apis", "/api/v1/namespaces/default/services",
                 "/openapi/v3"):
        response = server.http("GET", path, auth=False)
        assert response.status_code == 401, (path, response.status_code, response.text)
        status = response.json()
        assert status["kind"] == "Status" and status["reason"] == "Unauthorized" and status["code"] == 401


@pytest.mark.parametrize("header", ["Bearer wrong-token", "Basic YWRtaW46YWRtaW4=", "Bearer ", "bearer x"])
def test_bad_credentials_are_401(server: Server, header: str) -> None:
    response = server.http("GET", "/api/v1/namespaces", auth=False, headers={"Authorization": header})
    assert response.status_code == 401, response.text
    assert response.json()["reason"] == "Unauthorized"


def test_public_paths_need_no_token(server: Server) -> None:
    version = server.http("GET", "/version", auth=False)
    assert version.status_code == 200 and version.json()["minor"] == "32"
    for path in ("/healthz", "/livez", "/readyz"):
        assert server.http("GET", path, auth=False).status_code == 200, path


def test_readonly_token_reads_but_cannot_write(server: Server) -> None:
    token = server.readonly_token
    assert token and token != server.admin_token
    assert server.http("GET", "/api/v1/namespaces/default/services", token=token).status_code == 200
    assert server.http("GET", "/api/v1/namespaces/default/services/kubernetes", token=token).status_code == 200
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ro"}}
    response = server.http("POST", "/api/v1/namespaces/default/configmaps", cm, token=token)
    assert response.status_code == 403, response.text
    status = response.json()
    assert status["kind"] == "Status" and status["reason"] == "Forbidden"
    assert 'cannot create resource "configmaps"' in status["message"]
    for method, path in (("DELETE", "/api/v1/namespaces/default/services/kubernetes"),
                         ("PATCH", "/api/v1/namespaces/default/services/kubernetes"),
                         ("PUT", "/api/v1/namespaces/default/services/kubernetes")):
        response = server.http(method, path, data="{}", token=token,
                               headers={"Content-Type": "application/merge-patch+json"})
        assert response.status_code == 403, (method, response.text)
    assert server.http("GET", "/api/v1/namespaces/default/services/kubernetes").status_code == 200


def test_kubectl_with_each_kubeconfig(server: Server) -> None:
    readonly = server.kubeconfig_readonly
    out = server.kubectl("get", "svc", "-n", "default", "-o", "name", kubeconfig=readonly).stdout
    assert "service/kubernetes" in out.split()
    manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ro-cm\n  namespace: default\n"
    result = server.kubectl("create", "-f", "-", input=manifest, kubeconfig=readonly, check=False)
    assert result.rc == 1
    assert "Error from server (Forbidden)" in result.stderr, str(result)
    assert 'cannot create resource "configmaps"' in result.stderr
    result = server.kubectl("delete", "svc", "kubernetes", "-n", "default", kubeconfig=readonly, check=False)
    assert result.rc == 1 and "Forbidden" in result.stderr
    # the admin kubeconfig writes
    assert server.kubectl("create", "configmap", "admin-cm", "-n", "default").stdout.strip() == \
        "configmap/admin-cm created"
    assert server.kubectl("get", "cm", "admin-cm", "-n", "default", kubeconfig=readonly).rc == 0


def test_kubectl_with_a_wrong_token(server: Server, tmp_path: Path) -> None:
    text = server.kubeconfig.read_text().replace(server.admin_token, "not-the-token")
    bad = tmp_path / "kubeconfig-bad"
    bad.write_text(text)
    result = server.kubectl("get", "svc", kubeconfig=bad, check=False)
    assert result.rc == 1
    assert "Unauthorized" in result.stderr or "must be logged in" in result.stderr, str(result)
