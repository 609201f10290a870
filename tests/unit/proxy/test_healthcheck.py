"""healthCheckNodePort answers: local ready endpoints counted per service."""

from __future__ import annotations

import json

from svcnet.proxy import healthcheck, model

NAME = model.ServicePortName("ns", "web", "", "TCP")


def snapshot(*endpoints: model.EndpointInfo, local: bool = True) -> model.Snapshot:
    info = model.ServicePortInfo(NAME, ("10.96.0.1",), 80, "TCP", node_port=30080, external_local=local,
                                 health_check_node_port=32000)
    return model.Snapshot({NAME: info}, {NAME: tuple(endpoints)})


def test_counts_only_this_nodes_ready_endpoints() -> None:
    eps = (model.EndpointInfo("a", 80, "n1"), model.EndpointInfo("b", 80, "n2"),
           model.EndpointInfo("c", 80, "n1", ready=False))
    assert healthcheck.local_counts(snapshot(*eps), "n1") == {32000: healthcheck.ServiceHealth("ns", "web", 1)}
    assert healthcheck.local_counts(snapshot(*eps, local=False), "n1") == {}


def test_body_is_kube_proxys() -> None:
    status, payload = healthcheck.body(healthcheck.ServiceHealth("ns", "web", 0))
    assert status == 503
    assert json.loads(payload) == {"service": {"namespace": "ns", "name": "web"}, "localEndpoints": 0,
                                   "serviceProxyHealthy": True}
    assert healthcheck.body(healthcheck.ServiceHealth("ns", "web", 2))[0] == 200
