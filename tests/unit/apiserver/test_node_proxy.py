"""The pure half of the node proxy: which container, which node agent address, which URL — tables."""

from __future__ import annotations

from typing import Any

import pytest
from multidict import MultiDict

from svcnet.api import errors
from svcnet.apiserver import node_proxy


def pod(*containers: str, init: tuple[str, ...] = ()) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": c} for c in containers]}
    if init:
        spec["initContainers"] = [{"name": c} for c in init]
    return {"metadata": {"name": "p"}, "spec": spec}


@pytest.mark.parametrize(("obj", "requested", "expected"), [
    pytest.param(pod("a"), "", "a", id="only-one"),
    pytest.param(pod("a", "b"), "b", "b", id="named"),
    pytest.param(pod("a", init=("setup",)), "setup", "setup", id="init-container"),
])
def test_resolve_container(obj: dict[str, Any], requested: str, expected: str) -> None:
    assert node_proxy.resolve_container(obj, requested) == expected


@pytest.mark.parametrize(("obj", "requested", "message"), [
    pytest.param(pod("a"), "x", "container x is not valid for pod p", id="unknown"),
    pytest.param(pod("a", "b"), "", "a container name must be specified for pod p, choose one of: [a b]",
                 id="ambiguous"),
    pytest.param(pod("a", "b", init=("i",)), "",
                 "a container name must be specified for pod p, choose one of: [a b] or one of the init "
                 "containers: [i]", id="ambiguous-with-init"),
])
def test_resolve_container_rejects(obj: dict[str, Any], requested: str, message: str) -> None:
    with pytest.raises(errors.APIError) as caught:
        node_proxy.resolve_container(obj, requested)
    assert (caught.value.code, caught.value.message) == (400, message)


def node(addresses: list[dict[str, str]], port: int | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"addresses": addresses}
    if port is not None:
        status["daemonEndpoints"] = {"kubeletEndpoint": {"Port": port}}
    return {"metadata": {"name": "n1"}, "status": status}


@pytest.mark.parametrize(("obj", "expected"), [
    pytest.param(node([{"type": "Hostname", "address": "n1"}, {"type": "InternalIP", "address": "10.0.0.5"}],
                      10255), ("10.0.0.5", 10255), id="internal-ip"),
    pytest.param(node([{"type": "InternalIP", "address": "10.0.0.5"}]), ("10.0.0.5", 10250), id="default-port"),
])
def test_node_address(obj: dict[str, Any], expected: tuple[str, int]) -> None:
    assert node_proxy.node_address(obj) == expected


def test_node_without_internal_ip_is_unavailable() -> None:
    with pytest.raises(errors.APIError) as caught:
        node_proxy.node_address(node([{"type": "Hostname", "address": "n1"}]))
    assert caught.value.code == 503
    assert caught.value.message == "node \"n1\" has no InternalIP address; known addresses: ['Hostname:n1']"


@pytest.mark.parametrize(("sub", "query", "url"), [
    pytest.param("log", [("container", "c"), ("follow", "true"), ("tailLines", "2"), ("pretty", "1")],
                 "http://10.0.0.5:10250/containerLogs/ns/p/c?follow=true&tailLines=2", id="logs"),
    pytest.param("exec", [("command", "sh"), ("command", "-c"), ("command", "echo a&b"), ("stdout", "true"),
                          ("container", "c")],
                 "http://10.0.0.5:10250/exec/ns/p/c?command=sh&command=-c&command=echo+a%26b&stdout=true",
                 id="exec-argv"),
    pytest.param("attach", [("stdin", "true"), ("tty", "true")],
                 "http://10.0.0.5:10250/attach/ns/p/c?stdin=true&tty=true", id="attach"),
])
def test_kubelet_url(sub: str, query: list[tuple[str, str]], url: str) -> None:
    assert str(node_proxy.kubelet_url("10.0.0.5", 10250, sub, "ns", "p", "c", MultiDict(query))) == url
