"""Defaulting: what kube-apiserver fills in, per kind, and that defaulting is pure and idempotent."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from svcnet.api import defaults


def _at(obj: Any, path: str) -> Any:
    """Follow a dotted path with [i] indexes; a missing step yields the sentinel MISSING."""
    current = obj
    for part in path.replace("[", ".[").split("."):
        if part.startswith("["):
            index = int(part[1:-1])
            current = current[index] if isinstance(current, list) and index < len(current) else MISSING
        else:
            current = current.get(part, MISSING) if isinstance(current, dict) else MISSING
    return current


MISSING = object()

SVC = {"metadata": {"name": "s"}, "spec": {"selector": {"app": "x"}, "ports": [{"port": 80}]}}
POD = {"metadata": {"name": "p"}, "spec": {"containers": [
    {"name": "c", "image": "nginx", "ports": [{"containerPort": 80}],
     "readinessProbe": {"httpGet": {"port": 80}}, "resources": {"limits": {"cpu": "1"}}}]}}
DEPLOY = {"metadata": {"name": "d"}, "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": {
    "metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": "nginx:1.17.1"}]}}}}


def _with(base: dict, **spec: Any) -> dict:
    obj = copy.deepcopy(base)
    obj["spec"].update(spec)
    return obj


CASES = [
    # Service
    pytest.param("Service", SVC, "spec.type", "ClusterIP", id="svc-type"),
    pytest.param("Service", SVC, "spec.sessionAffinity", "None", id="svc-affinity"),
    pytest.param("Service", SVC, "spec.ports[0].protocol", "TCP", id="svc-port-protocol"),
    pytest.param("Service", SVC, "spec.ports[0].targetPort", 80, id="svc-target-port-follows-port"),
    pytest.param("Service", _with(SVC, ports=[{"port": 80, "targetPort": "http"}]), "spec.ports[0].targetPort",
                 "http", id="svc-named-target-port-kept"),
    pytest.param("Service", SVC, "spec.internalTrafficPolicy", "Cluster", id="svc-itp"),
    pytest.param("Service", SVC, "spec.externalTrafficPolicy", MISSING, id="svc-clusterip-no-etp"),
    pytest.param("Service", SVC, "spec.ipFamilyPolicy", "SingleStack", id="svc-family-policy"),
    pytest.param("Service", SVC, "spec.ipFamilies", ["IPv4"], id="svc-families"),
    pytest.param("Service", _with(SVC, clusterIP="fd00::10"), "spec.ipFamilies", ["IPv6"], id="svc-families-v6"),
    pytest.param("Service", _with(SVC, clusterIP="10.97.97.97"), "spec.clusterIPs", ["10.97.97.97"],
                 id="svc-cluster-ips-follow-cluster-ip"),
    pytest.param("Service", _with(SVC, clusterIP="None"), "spec.clusterIPs", ["None"], id="svc-headless"),
    pytest.param("Service", _with(SVC, type="NodePort"), "spec.externalTrafficPolicy", "Cluster", id="svc-np-etp"),
    pytest.param("Service", _with(SVC, externalIPs=["1.2.3.4"]), "spec.externalTrafficPolicy", "Cluster",
                 id="svc-external-ips-etp"),
    pytest.param("Service", _with(SVC, type="LoadBalancer"), "spec.allocateLoadBalancerNodePorts", True,
                 id="svc-lb-allocate"),
    pytest.param("Service", _with(SVC, type="NodePort"), "spec.allocateLoadBalancerNodePorts", MISSING,
                 id="svc-np-no-allocate"),
    pytest.param("Service", _with(SVC, sessionAffinity="ClientIP"),
                 "spec.sessionAffinityConfig.clientIP.timeoutSeconds", 10800, id="svc-client-ip-timeout"),
    pytest.param("Service", _with(SVC, sessionAffinityConfig={"clientIP": {"timeoutSeconds": 5}}),
                 "spec.sessionAffinityConfig", MISSING, id="svc-affinity-config-dropped-when-none"),
    pytest.param("Service", {"metadata": {"name": "e"}, "spec": {"type": "ExternalName", "externalName": "a.b"}},
                 "spec.internalTrafficPolicy", MISSING, id="svc-externalname-no-itp"),
    pytest.param("Service", {"metadata": {"name": "e"}, "spec": {"type": "ExternalName", "externalName": "a.b"}},
                 "spec.ipFamilies", MISSING, id="svc-externalname-no-families"),
    # Pod
    pytest.param("Pod", POD, "spec.restartPolicy", "Always", id="pod-restart"),
    pytest.param("Pod", POD, "spec.dnsPolicy", "ClusterFirst", id="pod-dns"),
    pytest.param("Pod", POD, "spec.terminationGracePeriodSeconds", 30, id="pod-grace"),
    pytest.param("Pod", POD, "spec.schedulerName", "default-scheduler", id="pod-scheduler"),
    pytest.param("Pod", POD, "spec.securityContext", {}, id="pod-security-context"),
    pytest.param("Pod", POD, "spec.enableServiceLinks", True, id="pod-service-links"),
    pytest.param("Pod", POD, "spec.containers[0].imagePullPolicy", "Always", id="pod-untagged-always"),
    pytest.param("Pod", POD, "spec.containers[0].terminationMessagePath", "/dev/termination-log", id="pod-tmp"),
    pytest.param("Pod", POD, "spec.containers[0].terminationMessagePolicy", "File", id="pod-tm-policy"),
    pytest.param("Pod", POD, "spec.containers[0].ports[0].protocol", "TCP", id="pod-port-protocol"),
    pytest.param("Pod", POD, "spec.containers[0].readinessProbe.timeoutSeconds", 1, id="probe-timeout"),
    pytest.param("Pod", POD, "spec.containers[0].readinessProbe.periodSeconds", 10, id="probe-period"),
    pytest.param("Pod", POD, "spec.containers[0].readinessProbe.successThreshold", 1, id="probe-success"),
    pytest.param("Pod", POD, "spec.containers[0].readinessProbe.failureThreshold", 3, id="probe-failure"),
    pytest.param("Pod", POD, "spec.containers[0].readinessProbe.httpGet.path", "/", id="probe-http-path"),
    pytest.param("Pod", POD, "spec.containers[0].readinessProbe.httpGet.scheme", "HTTP", id="probe-http-scheme"),
    pytest.param("Pod", POD, "spec.containers[0].resources.requests", {"cpu": "1"}, id="pod-requests-from-limits"),
    pytest.param("Pod", _with(POD, hostNetwork=True), "spec.containers[0].ports[0].hostPort", 80,
                 id="pod-host-network-host-port"),
    pytest.param("Pod", _with(POD, volumes=[{"name": "v"}]), "spec.volumes[0].emptyDir", {}, id="volume-emptydir"),
    pytest.param("Pod", _with(POD, volumes=[{"name": "v", "secret": {"secretName": "s"}}]),
                 "spec.volumes[0].secret.defaultMode", 420, id="volume-secret-mode"),
    # Workloads
    pytest.param("Deployment", DEPLOY, "spec.replicas", 1, id="deploy-replicas"),
    pytest.param("Deployment", DEPLOY, "spec.strategy", {"type": "RollingUpdate", "rollingUpdate": {
        "maxUnavailable": "25%", "maxSurge": "25%"}}, id="deploy-strategy"),
    pytest.param("Deployment", _with(DEPLOY, strategy={"type": "Recreate"}), "spec.strategy", {"type": "Recreate"},
                 id="deploy-recreate-untouched"),
    pytest.param("Deployment", DEPLOY, "spec.revisionHistoryLimit", 10, id="deploy-history"),
    pytest.param("Deployment", DEPLOY, "spec.progressDeadlineSeconds", 600, id="deploy-deadline"),
    pytest.param("Deployment", DEPLOY, "spec.template.spec.restartPolicy", "Always", id="deploy-template-restart"),
    pytest.param("Deployment", DEPLOY, "spec.template.spec.containers[0].imagePullPolicy", "IfNotPresent",
                 id="deploy-template-tagged"),
    pytest.param("Deployment", DEPLOY, "spec.template.spec.enableServiceLinks", MISSING,
                 id="deploy-template-no-service-links"),
    pytest.param("Deployment", _with(DEPLOY, replicas=0), "spec.replicas", 0, id="deploy-zero-kept"),
    pytest.param("ReplicaSet", DEPLOY, "spec.replicas", 1, id="rs-replicas"),
    pytest.param("ReplicationController", {"metadata": {"name": "rc"}, "spec": {"template": {
        "metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}},
        "spec.selector", {"app": "x"}, id="rc-selector-from-template"),
    pytest.param("ReplicationController", {"metadata": {"name": "rc"}, "spec": {"template": {
        "metadata": {"labels": {"app": "x"}}, "spec": {"containers": []}}}}, "metadata.labels", {"app": "x"},
        id="rc-labels-from-template"),
    # The rest
    pytest.param("Endpoints", {"metadata": {"name": "e"}, "subsets": [{"ports": [{"port": 80}]}]},
                 "subsets[0].ports[0].protocol", "TCP", id="endpoints-protocol"),
    pytest.param("EndpointSlice", {"metadata": {"name": "e"}, "ports": [{"port": 80}]}, "ports[0].protocol", "TCP",
                 id="slice-protocol"),
    pytest.param("EndpointSlice", {"metadata": {"name": "e"}, "ports": [{"port": 80}]}, "ports[0].name", "",
                 id="slice-port-name"),
    pytest.param("Secret", {"metadata": {"name": "s"}}, "type", "Opaque", id="secret-type"),
    pytest.param("Namespace", {"metadata": {"name": "dev"}}, "status.phase", "Active", id="ns-phase"),
    pytest.param("Namespace", {"metadata": {"name": "dev"}}, "metadata.labels", {"kubernetes.io/metadata.name": "dev"},
                 id="ns-name-label"),
    pytest.param("Ingress", {"metadata": {"name": "i"}, "spec": {"rules": [{"http": {"paths": [{"path": "/"}]}}]}},
                 "spec.rules[0].http.paths[0].pathType", MISSING, id="ingress-path-type-not-defaulted"),
]


@pytest.mark.parametrize(("kind", "obj", "path", "expected"), CASES)
def test_apply_defaults(kind: str, obj: dict, path: str, expected: Any) -> None:
    before = copy.deepcopy(obj)
    result = defaults.apply_defaults(kind, obj)
    assert _at(result, path) == expected if expected is not MISSING else _at(result, path) is MISSING
    assert obj == before, "input must not be mutated"
    assert defaults.apply_defaults(kind, result) == result, "defaulting must be idempotent"


@pytest.mark.parametrize(("image", "policy"), [
    pytest.param("nginx", "Always", id="no-tag"),
    pytest.param("nginx:latest", "Always", id="latest"),
    pytest.param("nginx:1.17.1", "IfNotPresent", id="tag"),
    pytest.param("localhost:5000/nginx", "Always", id="registry-port-no-tag"),
    pytest.param("localhost:5000/nginx:v1", "IfNotPresent", id="registry-port-tag"),
    pytest.param("nginx@sha256:" + "a" * 64, "IfNotPresent", id="digest"),
])
def test_image_pull_policy(image: str, policy: str) -> None:
    assert defaults.image_pull_policy(image) == policy


def test_explicit_values_are_kept() -> None:
    svc = _with(SVC, type="NodePort", externalTrafficPolicy="Local", sessionAffinity="ClientIP",
                sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}})
    result = defaults.apply_defaults("Service", svc)
    assert result["spec"]["externalTrafficPolicy"] == "Local"
    assert result["spec"]["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 60}}


@pytest.mark.parametrize("obj", [
    pytest.param({}, id="empty"),
    pytest.param({"spec": "nonsense"}, id="spec-not-object"),
    pytest.param({"spec": {"ports": "x", "containers": [1, None]}}, id="lists-of-junk"),
])
@pytest.mark.parametrize("kind", ["Service", "Pod", "Deployment", "ReplicationController", "Endpoints"])
def test_malformed_objects_do_not_raise(kind: str, obj: dict) -> None:
    defaults.apply_defaults(kind, obj)


def test_unknown_kind_is_copied() -> None:
    obj = {"metadata": {"name": "x"}, "data": {"a": "1"}}
    result = defaults.apply_defaults("ConfigMap", obj)
    assert result == obj and result is not obj
