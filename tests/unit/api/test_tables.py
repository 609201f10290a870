"""Golden cells of the Table printers: one sample object per case, the row kube-apiserver would print for it."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from svcnet.api import resources, tables

NOW = datetime.datetime(2024, 1, 1, 12, 0, 0, tzinfo=datetime.UTC)


def ago(seconds: int) -> str:
    return (NOW - datetime.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def meta(name: str, created: int = 300, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": "dev", "uid": f"uid-{name}", "creationTimestamp": ago(created), **extra}


def cells(kind: str, obj: dict[str, Any]) -> list[Any]:
    return tables.to_table(kind, [obj], NOW)["rows"][0]["cells"]


# ---- HumanDuration -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("seconds", "text"), [
    pytest.param(-0.5, "0s", id="just-in-the-future"),
    pytest.param(-3, "<invalid>", id="future"),
    pytest.param(0, "0s", id="now"),
    pytest.param(5, "5s", id="seconds"),
    pytest.param(119, "119s", id="under-two-minutes"),
    pytest.param(120, "2m", id="two-minutes"),
    pytest.param(182, "3m2s", id="minutes-seconds"),
    pytest.param(600, "10m", id="ten-minutes"),
    pytest.param(3 * 3600 - 1, "179m", id="under-three-hours"),
    pytest.param(3 * 3600 + 5 * 60, "3h5m", id="hours-minutes"),
    pytest.param(8 * 3600 + 59, "8h", id="eight-hours"),
    pytest.param(47 * 3600, "47h", id="under-two-days"),
    pytest.param(51 * 3600, "2d3h", id="days-hours"),
    pytest.param(8 * 86400, "8d", id="days"),
    pytest.param(800 * 86400, "2y70d", id="years-days"),
    pytest.param(3000 * 86400, "8y", id="years"),
])
def test_human_duration(seconds: float, text: str) -> None:
    assert tables.human_duration(seconds) == text


def test_age_without_creation_timestamp_is_unknown() -> None:
    assert cells("Service", {"metadata": {"name": "x"}, "spec": {"type": "ClusterIP"}})[5] == "<unknown>"


# ---- pods ------------------------------------------------------------------------------------------------------

def pod(statuses: list[dict[str, Any]] | None = None, phase: str = "Running", **extra: Any) -> dict[str, Any]:
    spec = {"containers": [{"name": "app", "image": "nginx"}], "nodeName": "node-1", **extra.pop("spec", {})}
    status = {"phase": phase, "podIP": "10.244.1.5", "podIPs": [{"ip": "10.244.1.5"}],
              "containerStatuses": statuses or [], **extra.pop("status", {})}
    return {"metadata": meta("web-1", **extra.pop("metadata", {})), "spec": spec, "status": status}


RUNNING = {"name": "app", "ready": True, "restartCount": 0, "state": {"running": {"startedAt": ago(200)}}}
CRASHING = {"name": "app", "ready": False, "restartCount": 3,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(150)}}}


@pytest.mark.parametrize(("obj", "expected"), [
    pytest.param(pod([RUNNING]),
                 ["web-1", "1/1", "Running", "0", "5m", "10.244.1.5", "node-1", "<none>", "<none>"], id="running"),
    pytest.param(pod([CRASHING]),
                 ["web-1", "0/1", "CrashLoopBackOff", "3 (2m30s ago)", "5m", "10.244.1.5", "node-1", "<none>",
                  "<none>"], id="crash-loop"),
    pytest.param(pod(phase="Pending", status={"podIPs": [], "podIP": None}, spec={"nodeName": None}),
                 ["web-1", "0/1", "Pending", "0", "5m", "<none>", "<none>", "<none>", "<none>"], id="pending"),
    pytest.param(pod([RUNNING], metadata={"deletionTimestamp": ago(1)}),
                 ["web-1", "1/1", "Terminating", "0", "5m", "10.244.1.5", "node-1", "<none>", "<none>"],
                 id="terminating"),
    pytest.param(pod([{"name": "app", "ready": False, "restartCount": 0,
                       "state": {"waiting": {"reason": "ContainerCreating"}}}]),
                 ["web-1", "0/1", "ContainerCreating", "0", "5m", "10.244.1.5", "node-1", "<none>", "<none>"],
                 id="waiting-reason"),
    pytest.param(pod([{"name": "app", "ready": False, "restartCount": 0,
                       "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}], phase="Succeeded"),
                 ["web-1", "0/1", "Completed", "0", "5m", "10.244.1.5", "node-1", "<none>", "<none>"],
                 id="completed"),
    pytest.param(pod([{"name": "app", "ready": False, "restartCount": 0,
                       "state": {"terminated": {"exitCode": 137, "signal": 9}}}], phase="Failed"),
                 ["web-1", "0/1", "Signal:9", "0", "5m", "10.244.1.5", "node-1", "<none>", "<none>"],
                 id="signal"),
    pytest.param(pod(phase="Pending", spec={"initContainers": [{"name": "init"}]},
                     status={"initContainerStatuses": [{"name": "init", "restartCount": 0,
                                                        "state": {"waiting": {"reason": "PodInitializing"}}}]}),
                 ["web-1", "0/1", "Init:0/1", "0", "5m", "10.244.1.5", "node-1", "<none>", "<none>"],
                 id="init-pending"),
    pytest.param(pod(phase="Pending", spec={"initContainers": [{"name": "init"}]},
                     status={"initContainerStatuses": [{"name": "init", "restartCount": 2, "state": {
                         "terminated": {"exitCode": 1, "reason": "Error"}}}]}),
                 ["web-1", "0/1", "Init:Error", "2", "5m", "10.244.1.5", "node-1", "<none>", "<none>"],
                 id="init-failed"),
    pytest.param(pod([RUNNING], spec={"initContainers": [{"name": "proxy", "restartPolicy": "Always"}]},
                     status={"initContainerStatuses": [{"name": "proxy", "started": True, "ready": True,
                                                        "restartCount": 1, "state": {"running": {}}}]}),
                 ["web-1", "2/2", "Running", "1", "5m", "10.244.1.5", "node-1", "<none>", "<none>"],
                 id="sidecar"),
    pytest.param(pod([RUNNING], spec={"readinessGates": [{"conditionType": "a"}, {"conditionType": "b"}]},
                     status={"conditions": [{"type": "a", "status": "True"}, {"type": "b", "status": "False"}],
                             "nominatedNodeName": "node-2"}),
                 ["web-1", "1/1", "Running", "0", "5m", "10.244.1.5", "node-1", "node-2", "1/2"],
                 id="readiness-gates"),
    pytest.param(pod(phase="Pending", status={"conditions": [
                     {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}),
                 ["web-1", "0/1", "SchedulingGated", "0", "5m", "10.244.1.5", "node-1", "<none>", "<none>"],
                 id="scheduling-gated"),
])
def test_pod_cells(obj: dict[str, Any], expected: list[Any]) -> None:
    assert cells("Pod", obj) == expected


def test_finished_pods_carry_the_completed_row_condition() -> None:
    table = tables.to_table("Pod", [pod(phase="Succeeded"), pod([RUNNING])], NOW)
    assert table["rows"][0]["conditions"] == [{"type": "Completed", "status": "True", "reason": "Succeeded",
                                               "message": "The pod has completed successfully."}]
    assert "conditions" not in table["rows"][1]


# ---- services, endpoints, slices, ingresses ----------------------------------------------------------------------

def svc(spec: dict[str, Any], status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"metadata": meta("web"), "spec": spec, "status": status or {}}


PORTS = [{"port": 80, "protocol": "TCP", "targetPort": 8080}, {"port": 443, "protocol": "TCP"}]


@pytest.mark.parametrize(("obj", "expected"), [
    pytest.param(svc({"type": "ClusterIP", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"], "ports": PORTS,
                      "selector": {"app": "web", "tier": "fe"}}),
                 ["web", "ClusterIP", "10.96.0.10", "<none>", "80/TCP,443/TCP", "5m", "app=web,tier=fe"],
                 id="cluster-ip"),
    pytest.param(svc({"type": "ClusterIP", "clusterIP": "None", "clusterIPs": ["None"], "ports": PORTS[:1]}),
                 ["web", "ClusterIP", "None", "<none>", "80/TCP", "5m", "<none>"], id="headless"),
    pytest.param(svc({"type": "NodePort", "clusterIP": "10.96.0.11", "externalIPs": ["192.0.2.1"],
                      "ports": [{"port": 80, "nodePort": 30002, "protocol": "TCP"}]}),
                 ["web", "NodePort", "10.96.0.11", "192.0.2.1", "80:30002/TCP", "5m", "<none>"], id="node-port"),
    pytest.param(svc({"type": "LoadBalancer", "clusterIP": "10.96.0.12",
                      "ports": [{"port": 53, "nodePort": 30053, "protocol": "UDP"}]}),
                 ["web", "LoadBalancer", "10.96.0.12", "<pending>", "53:30053/UDP", "5m", "<none>"],
                 id="load-balancer-pending"),
    pytest.param(svc({"type": "LoadBalancer", "clusterIP": "10.96.0.12", "externalIPs": ["192.0.2.9"]},
                     {"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}, {"hostname": "lb.example.com"}]}}),
                 ["web", "LoadBalancer", "10.96.0.12", "203.0.113.7,lb.example.com,192.0.2.9", "<none>", "5m",
                  "<none>"], id="load-balancer-ingress"),
    pytest.param(svc({"type": "ExternalName", "externalName": "db.example.com"}),
                 ["web", "ExternalName", "<none>", "db.example.com", "<none>", "5m", "<none>"], id="external-name"),
])
def test_service_cells(obj: dict[str, Any], expected: list[Any]) -> None:
    assert cells("Service", obj) == expected


def endpoints(*subsets: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": meta("web"), "subsets": list(subsets)}


def addresses(*ips: str) -> list[dict[str, str]]:
    return [{"ip": ip} for ip in ips]


@pytest.mark.parametrize(("obj", "text"), [
    pytest.param(endpoints(), "<none>", id="no-subsets"),
    pytest.param(endpoints({"addresses": addresses("10.244.1.2", "10.244.1.3"), "ports": [{"port": 80}]}),
                 "10.244.1.2:80,10.244.1.3:80", id="two"),
    pytest.param(endpoints({"addresses": addresses("10.244.1.2", "10.244.1.3", "10.244.1.4", "10.244.1.5"),
                            "ports": [{"port": 80}]}),
                 "10.244.1.2:80,10.244.1.3:80,10.244.1.4:80 + 1 more...", id="more"),
    pytest.param(endpoints({"addresses": addresses("10.244.1.2", "10.244.1.3"),
                            "ports": [{"port": 80}, {"port": 443}]}),
                 "10.244.1.2:80,10.244.1.3:80,10.244.1.2:443 + 1 more...", id="ports-outer"),
    pytest.param(endpoints({"addresses": addresses("10.244.1.2")}), "10.244.1.2", id="headless-no-ports"),
    pytest.param(endpoints({"addresses": addresses("fd00::1"), "ports": [{"port": 80}]}), "[fd00::1]:80",
                 id="ipv6"),
    pytest.param(endpoints({"notReadyAddresses": addresses("10.244.1.2"), "ports": [{"port": 80}]}), "",
                 id="only-not-ready"),
])
def test_endpoints_cell(obj: dict[str, Any], text: str) -> None:
    assert cells("Endpoints", obj) == ["web", text, "5m"]


@pytest.mark.parametrize(("ports", "endpoint_ips", "expected"), [
    pytest.param([{"port": 80, "name": "http"}], [["10.244.1.2"], ["10.244.1.3"]], ["80", "10.244.1.2,10.244.1.3"],
                 id="basic"),
    pytest.param([], [], ["<unset>", "<unset>"], id="empty"),
    pytest.param([{"name": "http"}, {}], [["10.0.0.1", "10.0.0.2"], ["10.0.0.3"], ["10.0.0.4"]],
                 ["http,*", "10.0.0.1,10.0.0.2,10.0.0.3 + 1 more..."], id="named-and-unset-ports"),
])
def test_endpoint_slice_cells(ports: list[dict[str, Any]], endpoint_ips: list[list[str]],
                              expected: list[str]) -> None:
    obj = {"metadata": meta("web-abc12"), "addressType": "IPv4", "ports": ports,
           "endpoints": [{"addresses": ips} for ips in endpoint_ips]}
    assert cells("EndpointSlice", obj) == ["web-abc12", "IPv4", *expected, "5m"]


def ingress(rules: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {"metadata": meta("web"), "spec": {"rules": rules, **spec},
            "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.9"}]}}}


@pytest.mark.parametrize(("obj", "expected"), [
    pytest.param(ingress([{"host": "a.example.com"}, {"host": "b.example.com"}], ingressClassName="nginx",
                         tls=[{"hosts": ["a.example.com"]}]),
                 ["web", "nginx", "a.example.com,b.example.com", "203.0.113.9", "80, 443", "5m"], id="hosts-tls"),
    pytest.param(ingress([{"http": {}}]), ["web", "<none>", "*", "203.0.113.9", "80", "5m"], id="any-host"),
    pytest.param(ingress([{"host": f"h{i}.example.com"} for i in range(5)]),
                 ["web", "<none>", "h0.example.com,h1.example.com,h2.example.com + 2 more...", "203.0.113.9", "80",
                  "5m"], id="more-hosts"),
])
def test_ingress_cells(obj: dict[str, Any], expected: list[Any]) -> None:
    assert cells("Ingress", obj) == expected


# ---- workloads ---------------------------------------------------------------------------------------------------

TEMPLATE = {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "nginx", "image": "nginx:1.25"}, {"name": "log", "image": "busybox"}]}}
SELECTOR = {"matchLabels": {"app": "web"}, "matchExpressions": [
    {"key": "tier", "operator": "In", "values": ["fe", "be"]}, {"key": "canary", "operator": "DoesNotExist"}]}


def test_deployment_cells() -> None:
    obj = {"metadata": meta("web"), "spec": {"replicas": 3, "selector": SELECTOR, "template": TEMPLATE},
           "status": {"replicas": 3, "readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}}
    assert cells("Deployment", obj) == ["web", "2/3", 3, 2, "5m", "nginx,log", "nginx:1.25,busybox",
                                        "app=web,!canary,tier in (be,fe)"]


def test_deployment_without_status() -> None:
    obj = {"metadata": meta("web"), "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                                             "template": TEMPLATE}}
    assert cells("Deployment", obj)[:5] == ["web", "0/2", 0, 0, "5m"]


def test_replicaset_and_rc_cells() -> None:
    rs = {"metadata": meta("web-5d8f"), "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                                                 "template": TEMPLATE},
          "status": {"replicas": 3, "readyReplicas": 1}}
    rc = {"metadata": meta("legacy"), "spec": {"replicas": 1, "selector": {"app": "legacy"}, "template": TEMPLATE},
          "status": {"replicas": 1}}
    assert cells("ReplicaSet", rs) == ["web-5d8f", 3, 3, 1, "5m", "nginx,log", "nginx:1.25,busybox", "app=web"]
    assert cells("ReplicationController", rc) == ["legacy", 1, 1, 0, "5m", "nginx,log", "nginx:1.25,busybox",
                                                  "app=legacy"]


def test_controller_revision_names_its_controller() -> None:
    owners = [{"apiVersion": "v1", "kind": "Pod", "name": "p"},
              {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent", "controller": True}]
    obj = {"metadata": meta("agent-7f9", ownerReferences=owners), "revision": 2, "data": {}}
    assert cells("ControllerRevision", obj) == ["agent-7f9", "daemonset.apps/agent", 2, "5m"]
    orphan = {"metadata": meta("loose"), "revision": 1}
    assert cells("ControllerRevision", orphan) == ["loose", "<none>", 1, "5m"]


# ---- cluster objects ---------------------------------------------------------------------------------------------

def node(conditions: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    labels = {"node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "infra",
              "kubernetes.io/hostname": "node-1"}
    return {"metadata": meta("node-1", 86400 * 3, labels=labels), "spec": spec, "status": {
        "conditions": conditions,
        "addresses": [{"type": "InternalIP", "address": "192.168.0.10"}, {"type": "Hostname", "address": "node-1"},
                      {"type": "InternalIP", "address": "192.168.0.11"}],
        "nodeInfo": {"kubeletVersion": "v1.32.0", "osImage": "Ubuntu 22.04", "kernelVersion": "6.5.0",
                     "containerRuntimeVersion": "containerd://1.7.0"}}}


@pytest.mark.parametrize(("obj", "status"), [
    pytest.param(node([{"type": "Ready", "status": "True"}]), "Ready", id="ready"),
    pytest.param(node([{"type": "Ready", "status": "Unknown"}]), "NotReady", id="unknown-is-not-ready"),
    pytest.param(node([]), "Unknown", id="no-condition"),
    pytest.param(node([{"type": "Ready", "status": "True"}], unschedulable=True), "Ready,SchedulingDisabled",
                 id="cordoned"),
])
def test_node_cells(obj: dict[str, Any], status: str) -> None:
    assert cells("Node", obj) == ["node-1", status, "control-plane,infra", "3d", "v1.32.0", "192.168.0.10", "<none>",
                                  "Ubuntu 22.04", "6.5.0", "containerd://1.7.0"]


def test_event_cells() -> None:
    ev = {"metadata": meta("web.17a2b", 600), "type": "Normal", "reason": "Scheduled", "count": 3,
          "message": " Successfully assigned dev/web-1 to node-1\n", "firstTimestamp": ago(600),
          "lastTimestamp": ago(30), "source": {"component": "default-scheduler"},
          "involvedObject": {"kind": "Pod", "name": "web-1", "fieldPath": "spec.containers{app}"}}
    assert cells("Event", ev) == ["30s", "Normal", "Scheduled", "pod/web-1", "spec.containers{app}",
                                  "default-scheduler", "Successfully assigned dev/web-1 to node-1", "10m", 3,
                                  "web.17a2b"]


def test_event_from_events_api() -> None:
    ev = {"metadata": meta("x.1"), "type": "Warning", "reason": "Failed", "eventTime": "2024-01-01T11:59:00.123456Z",
          "reportingComponent": "kubelet", "reportingInstance": "node-1", "involvedObject": {"kind": "Node"},
          "series": {"count": 4, "lastObservedTime": "2024-01-01T11:59:50.000000Z"}}
    assert cells("Event", ev) == ["10s", "Warning", "Failed", "node", "", "kubelet, node-1", "", "60s", 4, "x.1"]


@pytest.mark.parametrize(("kind", "obj", "expected"), [
    pytest.param("Namespace", {"metadata": meta("dev"), "status": {"phase": "Active"}}, ["dev", "Active", "5m"],
                 id="namespace"),
    pytest.param("ConfigMap", {"metadata": meta("cfg"), "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}},
                 ["cfg", 3, "5m"], id="configmap"),
    pytest.param("Secret", {"metadata": meta("tok"), "type": "Opaque", "data": {"t": "eA=="}},
                 ["tok", "Opaque", 1, "5m"], id="secret"),
    pytest.param("ServiceAccount", {"metadata": meta("default")}, ["default", 0, "5m"], id="serviceaccount"),
    pytest.param("IngressClass", {"metadata": meta("nginx"), "spec": {
        "controller": "k8s.io/ingress-nginx",
        "parameters": {"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "params"}}},
        ["nginx", "k8s.io/ingress-nginx", "IngressParameters.k8s.example.com/params", "5m"], id="ingressclass"),
    pytest.param("IngressClass", {"metadata": meta("plain"), "spec": {"controller": "example.com/lb"}},
                 ["plain", "example.com/lb", "<none>", "5m"], id="ingressclass-no-parameters"),
    pytest.param("Lease", {"metadata": meta("kube-scheduler"), "spec": {"holderIdentity": "node-1_abc"}},
                 ["kube-scheduler", "node-1_abc", "5m"], id="lease"),
    pytest.param("Widget", {"metadata": meta("w")}, ["w", "5m"], id="generic"),
])
def test_simple_cells(kind: str, obj: dict[str, Any], expected: list[Any]) -> None:
    assert cells(kind, obj) == expected


# ---- columns and row objects -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "columns", "wide"), [
    pytest.param("Pod", ["Name", "Ready", "Status", "Restarts", "Age"],
                 ["IP", "Node", "Nominated Node", "Readiness Gates"], id="pod"),
    pytest.param("Service", ["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age"], ["Selector"],
                 id="service"),
    pytest.param("Deployment", ["Name", "Ready", "Up-to-date", "Available", "Age"],
                 ["Containers", "Images", "Selector"], id="deployment"),
    pytest.param("Node", ["Name", "Status", "Roles", "Age", "Version"],
                 ["Internal-IP", "External-IP", "OS-Image", "Kernel-Version", "Container-Runtime"], id="node"),
    pytest.param("Event", ["Last Seen", "Type", "Reason", "Object", "Message"],
                 ["Subobject", "Source", "First Seen", "Count", "Name"], id="event"),
    pytest.param("Widget", ["Name", "Age"], [], id="generic"),
])
def test_columns_and_wide_columns(kind: str, columns: list[str], wide: list[str]) -> None:
    definitions = tables.column_definitions(kind)
    assert [c["name"] for c in definitions if c["priority"] == 0] == columns
    assert [c["name"] for c in definitions if c["priority"] == 1] == wide


def test_column_definitions_carry_kubernetes_field_docs() -> None:
    name, *_, selector = tables.table_column_definitions("Service")
    assert name == {"name": "Name", "type": "string", "format": "name", "priority": 0,
                    "description": name["description"]}
    assert name["description"].startswith("Name must be unique within a namespace.")
    assert selector["description"].startswith("Route service traffic to pods with label keys and values")
    tables.column_definitions("Service")[0]["name"] = "mutated"
    assert tables.column_definitions("Service")[0]["name"] == "Name"


SAMPLES: dict[str, dict[str, Any]] = {
    "Pod": pod([RUNNING]), "Service": svc({"type": "ClusterIP"}), "Endpoints": endpoints(),
    "Node": node([]), "Event": {"metadata": meta("e")},
}


@pytest.mark.parametrize("kind", sorted({r.kind for r in resources.RESOURCES} | {"Widget"}))
def test_every_row_has_one_cell_per_column(kind: str) -> None:
    obj = SAMPLES.get(kind, {"metadata": meta("x"), "spec": {}, "status": {}})
    table = tables.to_table(kind, [obj, obj], NOW)
    assert (table["kind"], table["apiVersion"], table["metadata"]) == ("Table", "meta.k8s.io/v1", {})
    assert all(len(row["cells"]) == len(table["columnDefinitions"]) for row in table["rows"])


@pytest.mark.parametrize(("include", "expected"), [
    pytest.param("None", None, id="none"),
    pytest.param("Metadata", {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                              "metadata": meta("dev")}, id="metadata"),
    pytest.param("Object", {"kind": "Namespace", "apiVersion": "v1", "metadata": meta("dev")}, id="object"),
])
def test_include_object(include: str, expected: dict[str, Any] | None) -> None:
    obj = {"kind": "Namespace", "apiVersion": "v1", "metadata": meta("dev")}
    row = tables.to_table("Namespace", [obj], NOW, include)["rows"][0]
    assert row.get("object") == expected


def test_empty_list_still_has_columns() -> None:
    table = tables.to_table("Service", [], NOW)
    assert table["rows"] == [] and len(table["columnDefinitions"]) == 7
