"""Validation: kube-apiserver's field paths and messages for invalid manifests, and seeds that must pass.

Every manifest is defaulted first (as the API server does), then validated; a case names the field path and a
fragment of the message kube-apiserver answers with.
"""

from __future__ import annotations

import copy
import ipaddress
from typing import Any

import pytest
import yaml

from svcnet.api import defaults, validation
from svcnet.api.errors import Cause

NET = validation.NetworkConfig()
LOOPBACK = validation.NetworkConfig(service_cidrs=(ipaddress.ip_network("127.96.0.0/12"),))


def _check(kind: str, obj: dict | str, old: dict | str | None = None,
           net: validation.NetworkConfig = NET) -> list[Cause]:
    obj = yaml.safe_load(obj) if isinstance(obj, str) else obj
    old = yaml.safe_load(old) if isinstance(old, str) else old
    defaulted_old = defaults.apply_defaults(kind, old) if old is not None else None
    return validation.validate(kind, defaults.apply_defaults(kind, obj), defaulted_old, net)


def _render(causes: list[Cause]) -> str:
    return "\n".join(f"{c.field}: {c.message}" for c in causes)


# ---- valid seeds -----------------------------------------------------------------------------------------------

SEEDS = [
    pytest.param("Service", """
apiVersion: v1
kind: Service
metadata: {name: service-clusterip, namespace: dev}
spec:
  selector: {app: nginx-pod}
  clusterIP: 10.97.97.97
  type: ClusterIP
  ports:
  - port: 80
    targetPort: 80
""", id="clusterip-10.97.97.97"),
    pytest.param("Service", """
apiVersion: v1
kind: Service
metadata: {name: service-headliness, namespace: dev}
spec:
  selector: {app: nginx-pod}
  clusterIP: None
  type: ClusterIP
  ports: [{port: 80, targetPort: 80}]
""", id="headless"),
    pytest.param("Service", """
apiVersion: v1
kind: Service
metadata: {name: service-nodeport, namespace: dev}
spec:
  selector: {app: nginx-pod}
  type: NodePort
  ports: [{port: 80, nodePort: 30002, targetPort: 80}]
""", id="nodeport-30002"),
    pytest.param("Service", """
apiVersion: v1
kind: Service
metadata: {name: service-externalname, namespace: dev}
spec:
  type: ExternalName
  externalName: www.baidu.com
""", id="externalname"),
    pytest.param("Service", """
apiVersion: v1
kind: Service
metadata: {name: service-loadbalancer, namespace: dev}
spec:
  selector: {app: nginx-pod}
  type: LoadBalancer
  ports: [{name: http, port: 80, targetPort: http}, {name: https, port: 443, targetPort: 8443}]
""", id="loadbalancer"),
    pytest.param("Service", """
metadata: {name: affinity, namespace: dev}
spec:
  selector: {app: web}
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 86400}}
  externalIPs: [192.0.2.10]
  ports: [{port: 53, protocol: UDP, name: dns}, {port: 53, protocol: TCP, name: dns-tcp}]
""", id="affinity-and-external-ip-udp-tcp-same-port"),
    pytest.param("Deployment", """
apiVersion: apps/v1
kind: Deployment
metadata: {name: pc-deployment, namespace: dev}
spec:
  replicas: 3
  selector:
    matchLabels: {app: nginx-pod}
  template:
    metadata:
      labels: {app: nginx-pod}
    spec:
      containers:
      - name: nginx
        image: nginx:1.17.1
        ports:
        - containerPort: 80
        readinessProbe:
          httpGet: {path: /, port: 80}
          initialDelaySeconds: 5
""", id="deployment-3-replicas-readiness"),
    pytest.param("Pod", """
metadata: {name: web-0, namespace: dev, labels: {app.kubernetes.io/name: web}}
spec:
  containers:
  - name: web
    image: nginx
    ports: [{name: http, containerPort: 80}]
    env: [{name: MY_POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}]
    livenessProbe: {tcpSocket: {port: http}}
    volumeMounts: [{name: data, mountPath: /data}]
  volumes: [{name: data}]
""", id="pod"),
    pytest.param("ReplicationController", """
metadata: {name: rc, namespace: dev}
spec:
  template:
    metadata: {labels: {app: x}}
    spec: {containers: [{name: c, image: busybox}]}
""", id="rc-selector-defaulted"),
    pytest.param("EndpointSlice", """
metadata: {name: web-abc, namespace: dev, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints: [{addresses: [10.244.0.5], conditions: {ready: true}, nodeName: node-1}]
ports: [{name: http, port: 8080}]
""", id="endpointslice"),
    pytest.param("Endpoints", """
metadata: {name: web, namespace: dev}
subsets: [{addresses: [{ip: 10.244.0.5}], ports: [{port: 8080}]}]
""", id="endpoints"),
    pytest.param("Ingress", """
metadata: {name: web, namespace: dev}
spec:
  ingressClassName: nginx
  tls: [{hosts: ["*.example.com"], secretName: tls}]
  rules:
  - host: "*.example.com"
    http:
      paths:
      - {path: /api, pathType: Prefix, backend: {service: {name: api, port: {number: 80}}}}
      - {path: /, pathType: ImplementationSpecific, backend: {service: {name: web, port: {name: http}}}}
""", id="ingress"),
    pytest.param("IngressClass", "metadata: {name: nginx}\nspec: {controller: k8s.io/ingress-nginx}",
                 id="ingressclass"),
    pytest.param("ConfigMap", "metadata: {name: cfg, namespace: dev}\ndata: {app.properties: 'a=b', KEY_1: x}",
                 id="configmap"),
    pytest.param("Secret", "metadata: {name: s, namespace: dev}\nstringData: {password: hunter2}", id="secret"),
    pytest.param("Namespace", "metadata: {name: dev}", id="namespace"),
    pytest.param("Lease", "metadata: {name: l, namespace: kube-node-lease}\nspec: {leaseDurationSeconds: 40}",
                 id="lease"),
    pytest.param("Node", "metadata: {name: node-1.example.com}\nspec: {podCIDR: 10.244.1.0/24, podCIDRs: "
                 "[10.244.1.0/24]}", id="node"),
    pytest.param("Event", "metadata: {name: web.17a, namespace: dev}\ninvolvedObject: {kind: Pod, name: web, "
                 "namespace: dev}\nreason: Started", id="event"),
]


@pytest.mark.parametrize(("kind", "manifest"), SEEDS)
def test_valid_seeds_pass(kind: str, manifest: str) -> None:
    assert _render(_check(kind, manifest)) == ""


# ---- invalid manifests -----------------------------------------------------------------------------------------


def svc(**spec: Any) -> dict:
    base: dict[str, Any] = {"selector": {"app": "web"}, "ports": [{"port": 80}]}
    base.update(spec)
    return {"metadata": {"name": "web", "namespace": "dev"}, "spec": base}


def pod(**container: Any) -> dict:
    base: dict[str, Any] = {"name": "web", "image": "nginx"}
    base.update(container)
    return {"metadata": {"name": "web", "namespace": "dev"}, "spec": {"containers": [base]}}


def deploy(**spec: Any) -> dict:
    base: dict[str, Any] = {"selector": {"matchLabels": {"app": "web"}}, "template": {
        "metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}
    base.update(spec)
    return {"metadata": {"name": "web", "namespace": "dev"}, "spec": base}


def ingress_path(**path: Any) -> dict:
    base: dict[str, Any] = {"path": "/", "pathType": "Prefix",
                            "backend": {"service": {"name": "web", "port": {"number": 80}}}}
    base.update(path)
    return {"metadata": {"name": "ing", "namespace": "dev"},
            "spec": {"rules": [{"host": "a.example.com", "http": {"paths": [base]}}]}}


DNS1035 = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
           "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
           "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")
PORT_RANGE = "must be between 1 and 65535, inclusive"
SUBDOMAIN = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters"
LABEL = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'"

INVALID = [
    # --- metadata
    pytest.param("Service", {"metadata": {"name": "Foo"}, "spec": svc()["spec"]}, "metadata.name",
                 f'Invalid value: "Foo": {DNS1035}', id="svc-name-uppercase"),
    pytest.param("Service", {"metadata": {"name": "1web"}, "spec": svc()["spec"]}, "metadata.name",
                 "a DNS-1035 label", id="svc-name-starts-with-digit"),
    pytest.param("ConfigMap", {"metadata": {}}, "metadata.name", "Required value: name or generateName is required",
                 id="name-required"),
    pytest.param("ConfigMap", {"metadata": {"name": "My_Config"}}, "metadata.name",
                 f'Invalid value: "My_Config": {SUBDOMAIN}', id="configmap-name-subdomain"),
    pytest.param("Namespace", {"metadata": {"name": "a.b"}}, "metadata.name",
                 'Invalid value: "a.b": must not contain dots', id="namespace-dns-label"),
    pytest.param("Pod", {**pod(), "metadata": {"name": "p", "labels": {"app": "a b"}}}, "metadata.labels",
                 'Invalid value: "a b": a valid label must be an empty string or consist of alphanumeric characters',
                 id="label-value"),
    pytest.param("Pod", {**pod(), "metadata": {"name": "p", "labels": {"-app": "x"}}}, "metadata.labels",
                 'Invalid value: "-app": name part must consist of alphanumeric characters', id="label-key"),
    pytest.param("Pod", {**pod(), "metadata": {"name": "p", "labels": {"a": "x" * 64}}}, "metadata.labels",
                 "must be no more than 63 characters", id="label-value-too-long"),
    pytest.param("ConfigMap", {"metadata": {"name": "c", "annotations": {"a": "x" * 262144}}},
                 "metadata.annotations", "Too long: may not be more than 262144 bytes", id="annotations-too-big"),
    pytest.param("Node", {"metadata": {"name": "n", "namespace": "dev"}}, "metadata.namespace",
                 "Forbidden: not allowed on this type", id="namespace-on-cluster-scoped"),
    # --- Service
    pytest.param("Service", svc(ports=[{"port": 0}]), "spec.ports[0].port", f"Invalid value: 0: {PORT_RANGE}",
                 id="svc-port-zero"),
    pytest.param("Service", svc(ports=[{"port": 0}]), "spec.ports[0].targetPort", f"Invalid value: 0: {PORT_RANGE}",
                 id="svc-port-zero-defaults-target-port-zero"),
    pytest.param("Service", svc(ports=[{"port": 70000}]), "spec.ports[0].port", f"Invalid value: 70000: {PORT_RANGE}",
                 id="svc-port-too-big"),
    pytest.param("Service", svc(ports=[]), "spec.ports", "Required value", id="svc-ports-required"),
    pytest.param("Service", svc(ports=[{"port": 80, "protocol": "HTTP"}]), "spec.ports[0].protocol",
                 'Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"', id="svc-protocol"),
    pytest.param("Service", svc(ports=[{"port": 80}, {"port": 81, "name": "b"}]), "spec.ports[0].name",
                 "Required value", id="svc-port-name-required-when-many"),
    pytest.param("Service", svc(ports=[{"port": 80, "name": "a"}, {"port": 81, "name": "a"}]), "spec.ports[1].name",
                 'Duplicate value: "a"', id="svc-port-name-duplicate"),
    pytest.param("Service", svc(ports=[{"port": 80, "name": "Web"}]), "spec.ports[0].name",
                 f'Invalid value: "Web": {LABEL}', id="svc-port-name-dns-label"),
    pytest.param("Service", svc(ports=[{"port": 80, "name": "a"}, {"port": 80, "name": "b"}]), "spec.ports[1]",
                 'Duplicate value: {"Name":"","Protocol":"TCP","AppProtocol":null,"Port":80', id="svc-port-duplicate"),
    pytest.param("Service", svc(ports=[{"port": 80, "targetPort": 0x10000}]), "spec.ports[0].targetPort",
                 f"Invalid value: 65536: {PORT_RANGE}", id="svc-target-port-range"),
    pytest.param("Service", svc(ports=[{"port": 80, "targetPort": "http_port"}]), "spec.ports[0].targetPort",
                 'Invalid value: "http_port": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)',
                 id="svc-target-port-name"),
    pytest.param("Service", svc(ports=[{"port": 80, "targetPort": "verylongportname"}]), "spec.ports[0].targetPort",
                 "must be no more than 15 characters", id="svc-target-port-name-long"),
    pytest.param("Service", svc(ports=[{"port": 80, "nodePort": 30080}]), "spec.ports[0].nodePort",
                 "Forbidden: may not be used when `type` is 'ClusterIP'", id="svc-nodeport-on-clusterip"),
    pytest.param("Service", svc(type="NodePort", ports=[{"port": 80, "nodePort": 80}]), "spec.ports[0].nodePort",
                 "Invalid value: 80: provided port is not in the valid range. The range of valid ports is "
                 "30000-32767", id="svc-nodeport-out-of-range"),
    pytest.param("Service", svc(type="NodePort", ports=[{"port": 80, "nodePort": 30001, "name": "a"},
                                                        {"port": 81, "nodePort": 30001, "name": "b"}]),
                 "spec.ports[1].nodePort", "Duplicate value: 30001", id="svc-nodeport-duplicate"),
    pytest.param("Service", svc(type="Internal"), "spec.type",
                 'Unsupported value: "Internal": supported values: "ClusterIP", "ExternalName", "LoadBalancer", '
                 '"NodePort"', id="svc-type"),
    pytest.param("Service", svc(type="NodePort", clusterIP="None"), "spec.clusterIPs[0]",
                 "may not be set to 'None' for NodePort services", id="svc-headless-nodeport"),
    pytest.param("Service", svc(type="LoadBalancer", clusterIP="None"), "spec.clusterIPs[0]",
                 "may not be set to 'None' for LoadBalancer services", id="svc-headless-lb"),
    pytest.param("Service", svc(clusterIP="10.97.97.300"), "spec.clusterIPs[0]",
                 'Invalid value: "10.97.97.300": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)',
                 id="svc-cluster-ip-invalid"),
    pytest.param("Service", svc(clusterIP="192.168.1.1"), "spec.clusterIPs",
                 'Invalid value: ["192.168.1.1"]: failed to allocate IP 192.168.1.1: provided IP is not in the valid '
                 "range. The range of valid IPs is 10.96.0.0/12", id="svc-cluster-ip-out-of-range"),
    pytest.param("Service", svc(clusterIP="192.168.1.1"), "spec.clusterIPs", "--service-cluster-ip-range",
                 id="svc-cluster-ip-range-says-how-to-change"),
    pytest.param("Service", {"metadata": {"name": "ext"}, "spec": {"type": "ExternalName"}}, "spec.externalName",
                 "Required value", id="svc-externalname-required"),
    pytest.param("Service", {"metadata": {"name": "ext"}, "spec": {"type": "ExternalName",
                                                                    "externalName": "Foo_Bar.com"}},
                 "spec.externalName", f'Invalid value: "Foo_Bar.com": {SUBDOMAIN}', id="svc-externalname-syntax"),
    pytest.param("Service", {"metadata": {"name": "ext"}, "spec": {"type": "ExternalName", "externalName": "a.b",
                                                                    "clusterIP": "10.96.0.5"}},
                 "spec.clusterIPs", "Forbidden: may not be set for ExternalName services",
                 id="svc-externalname-cluster-ip"),
    pytest.param("Service", svc(sessionAffinity="Sticky"), "spec.sessionAffinity",
                 'Unsupported value: "Sticky": supported values: "ClientIP", "None"', id="svc-affinity"),
    pytest.param("Service", svc(sessionAffinity="ClientIP",
                                sessionAffinityConfig={"clientIP": {"timeoutSeconds": 86401}}),
                 "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                 "Invalid value: 86401: must be greater than 0 and less than 86400", id="svc-affinity-timeout"),
    pytest.param("Service", svc(selector={"app": "a b"}), "spec.selector", 'Invalid value: "a b"',
                 id="svc-selector-value"),
    pytest.param("Service", svc(externalTrafficPolicy="Local"), "spec.externalTrafficPolicy",
                 'Invalid value: "Local": may only be set for externally-accessible services', id="svc-etp-clusterip"),
    pytest.param("Service", svc(type="NodePort", externalTrafficPolicy="Global"), "spec.externalTrafficPolicy",
                 'Unsupported value: "Global": supported values: "Cluster", "Local"', id="svc-etp-value"),
    pytest.param("Service", svc(externalIPs=["1.2.3"]), "spec.externalIPs[0]",
                 'Invalid value: "1.2.3": must be a valid IP address', id="svc-external-ip"),
    pytest.param("Service", svc(externalIPs=["127.0.0.1"]), "spec.externalIPs[0]",
                 "may not be in the loopback range (127.0.0.0/8, ::1/128)", id="svc-external-ip-loopback"),
    pytest.param("Service", svc(type="LoadBalancer", ports=[{"port": 10250}]), "spec.ports[0]",
                 "may not expose port 10250 externally since it is used by kubelet", id="svc-lb-kubelet-port"),
    pytest.param("Service", svc(healthCheckNodePort=30100), "spec.healthCheckNodePort",
                 "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
                 id="svc-hcnp"),
    pytest.param("Service", svc(loadBalancerSourceRanges=["10.0.0.0/8"]), "spec.loadBalancerSourceRanges",
                 "Forbidden: may only be used when `type` is 'LoadBalancer'", id="svc-source-ranges"),
    # --- Pod
    pytest.param("Pod", {"metadata": {"name": "p"}, "spec": {"containers": []}}, "spec.containers", "Required value",
                 id="pod-containers-required"),
    pytest.param("Pod", pod(image=""), "spec.containers[0].image", "Required value", id="pod-image-required"),
    pytest.param("Pod", pod(name="Web"), "spec.containers[0].name", f'Invalid value: "Web": {LABEL}',
                 id="pod-container-name"),
    pytest.param("Pod", {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a", "image": "i"},
                                                                            {"name": "a", "image": "i"}]}},
                 "spec.containers[1].name", 'Duplicate value: "a"', id="pod-container-duplicate"),
    pytest.param("Pod", pod(ports=[{"containerPort": 0}]), "spec.containers[0].ports[0].containerPort",
                 "Required value", id="pod-container-port-required"),
    pytest.param("Pod", pod(ports=[{"containerPort": 65536}]), "spec.containers[0].ports[0].containerPort",
                 f"Invalid value: 65536: {PORT_RANGE}", id="pod-container-port-range"),
    pytest.param("Pod", pod(ports=[{"containerPort": 80, "name": "a-very-long-port-name"}]),
                 "spec.containers[0].ports[0].name", "must be no more than 15 characters", id="pod-port-name-long"),
    pytest.param("Pod", pod(ports=[{"containerPort": 80, "name": "http"}, {"containerPort": 81, "name": "http"}]),
                 "spec.containers[0].ports[1].name", 'Duplicate value: "http"', id="pod-port-name-duplicate"),
    pytest.param("Pod", pod(ports=[{"containerPort": 80, "protocol": "ICMP"}]), "spec.containers[0].ports[0].protocol",
                 'Unsupported value: "ICMP"', id="pod-port-protocol"),
    pytest.param("Pod", pod(readinessProbe={"periodSeconds": 5}), "spec.containers[0].readinessProbe",
                 "Required value: must specify a handler type", id="probe-no-handler"),
    pytest.param("Pod", pod(livenessProbe={"exec": {"command": ["true"]}, "tcpSocket": {"port": 80}}),
                 "spec.containers[0].livenessProbe.tcpSocket", "Forbidden: may not specify more than 1 handler type",
                 id="probe-two-handlers"),
    pytest.param("Pod", pod(livenessProbe={"httpGet": {"port": 80}, "successThreshold": 2}),
                 "spec.containers[0].livenessProbe.successThreshold", "Invalid value: 2: must be 1",
                 id="liveness-success-threshold"),
    pytest.param("Pod", pod(readinessProbe={"httpGet": {"port": 0}}), "spec.containers[0].readinessProbe.httpGet.port",
                 f"Invalid value: 0: {PORT_RANGE}", id="probe-http-port"),
    pytest.param("Pod", pod(readinessProbe={"tcpSocket": {"port": 80}, "initialDelaySeconds": -1}),
                 "spec.containers[0].readinessProbe.initialDelaySeconds",
                 "Invalid value: -1: must be greater than or equal to 0", id="probe-negative-delay"),
    pytest.param("Pod", {**pod(), "spec": {**pod()["spec"], "restartPolicy": "Sometimes"}}, "spec.restartPolicy",
                 'Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"',
                 id="pod-restart-policy"),
    pytest.param("Pod", pod(env=[{"name": "A=B", "value": "x"}]), "spec.containers[0].env[0].name",
                 "a valid environment variable name must consist only of printable ASCII characters other than '='",
                 id="pod-env-name"),
    pytest.param("Pod", pod(volumeMounts=[{"name": "data", "mountPath": "/d"}]),
                 "spec.containers[0].volumeMounts[0].name", 'Not found: "data"', id="pod-mount-unknown-volume"),
    pytest.param("Pod", pod(imagePullPolicy="Sometimes"), "spec.containers[0].imagePullPolicy",
                 'Unsupported value: "Sometimes": supported values: "Always", "IfNotPresent", "Never"',
                 id="pod-pull-policy"),
    # --- workloads
    pytest.param("Deployment", deploy(selector={"matchLabels": {"app": "other"}}), "spec.template.metadata.labels",
                 'Invalid value: {"app":"web"}: `selector` does not match template `labels`', id="deploy-selector"),
    pytest.param("Deployment", deploy(selector=None), "spec.selector", "Required value", id="deploy-selector-missing"),
    pytest.param("Deployment", deploy(selector={}), "spec.selector",
                 "Invalid value: {}: empty selector is invalid for deployment", id="deploy-selector-empty"),
    pytest.param("Deployment", deploy(replicas=-1), "spec.replicas",
                 "Invalid value: -1: must be greater than or equal to 0", id="deploy-replicas"),
    pytest.param("Deployment", deploy(template={"metadata": {"labels": {"app": "web"}},
                                                "spec": {"containers": [{"name": "web"}]}}),
                 "spec.template.spec.containers[0].image", "Required value", id="deploy-image-required"),
    pytest.param("Deployment", deploy(template={"metadata": {"labels": {"app": "web"}}, "spec": {
        "restartPolicy": "Never", "containers": [{"name": "web", "image": "i"}]}}),
                 "spec.template.spec.restartPolicy", 'Unsupported value: "Never": supported values: "Always"',
                 id="deploy-restart-never"),
    pytest.param("Deployment", deploy(strategy={"type": "Canary"}), "spec.strategy", 'Unsupported value: '
                 '{"type":"Canary"}: supported values: "Recreate", "RollingUpdate"', id="deploy-strategy-type"),
    pytest.param("Deployment", deploy(strategy={"type": "RollingUpdate", "rollingUpdate": {
        "maxUnavailable": 0, "maxSurge": 0}}), "spec.strategy.rollingUpdate.maxUnavailable",
                 "Invalid value: 0: may not be 0 when `maxSurge` is 0", id="deploy-strategy-zero"),
    pytest.param("Deployment", deploy(strategy={"type": "RollingUpdate", "rollingUpdate": {
        "maxUnavailable": "120%"}}), "spec.strategy.rollingUpdate.maxUnavailable",
                 "Invalid value: 120%: must not be greater than 100%", id="deploy-strategy-over-100"),
    pytest.param("Deployment", deploy(selector={"matchExpressions": [{"key": "app", "operator": "Like"}]}),
                 "spec.selector.matchExpressions[0].operator", 'Invalid value: "Like": not a valid selector operator',
                 id="deploy-selector-operator"),
    pytest.param("ReplicaSet", deploy(selector={"matchLabels": {"app": "x"}}), "spec.template.metadata.labels",
                 "`selector` does not match template `labels`", id="rs-selector"),
    pytest.param("ReplicationController", {"metadata": {"name": "rc"}, "spec": {"selector": {"app": "x"}, "template": {
        "metadata": {"labels": {"app": "y"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}},
                 "spec.template.metadata.labels", "`selector` does not match template `labels`", id="rc-selector"),
    # --- endpoints, slices, ingress, config
    pytest.param("Endpoints", {"metadata": {"name": "e"}, "subsets": [{"addresses": [{"ip": "10.1.1"}],
                                                                       "ports": [{"port": 80}]}]},
                 "subsets[0].addresses[0].ip", 'Invalid value: "10.1.1": must be a valid IP address', id="ep-ip"),
    pytest.param("Endpoints", {"metadata": {"name": "e"}, "subsets": [{"ports": [{"port": 80}]}]}, "subsets[0]",
                 "Required value: must specify `addresses` or `notReadyAddresses`", id="ep-no-addresses"),
    pytest.param("Endpoints", {"metadata": {"name": "e"}, "subsets": [{"addresses": [{"ip": "10.1.1.1"}],
                                                                       "ports": [{"port": 0}]}]},
                 "subsets[0].ports[0].port", PORT_RANGE, id="ep-port"),
    pytest.param("EndpointSlice", {"metadata": {"name": "s"}, "addressType": "IPv5", "endpoints": []}, "addressType",
                 'Unsupported value: "IPv5": supported values: "FQDN", "IPv4", "IPv6"', id="slice-address-type"),
    pytest.param("EndpointSlice", {"metadata": {"name": "s"}, "addressType": "IPv4",
                                   "endpoints": [{"addresses": []}]},
                 "endpoints[0].addresses", "Required value: must contain at least 1 address", id="slice-no-address"),
    pytest.param("EndpointSlice", {"metadata": {"name": "s"}, "addressType": "IPv4",
                                   "endpoints": [{"addresses": [f"10.0.0.{i}" for i in range(1, 102)]}]},
                 "endpoints[0].addresses", "Too many: 101: must have at most 100 items", id="slice-too-many"),
    pytest.param("EndpointSlice", {"metadata": {"name": "s"}, "addressType": "IPv4",
                                   "endpoints": [{"addresses": ["fd00::1"]}]},
                 "endpoints[0].addresses[0]", 'Invalid value: "fd00::1": must be a valid IPv4 address',
                 id="slice-wrong-family"),
    pytest.param("Ingress", ingress_path(pathType=None), "spec.rules[0].http.paths[0].pathType",
                 "Required value: pathType must be specified", id="ingress-path-type-required"),
    pytest.param("Ingress", ingress_path(pathType="Regex"), "spec.rules[0].http.paths[0].pathType",
                 'Unsupported value: "Regex": supported values: "Exact", "ImplementationSpecific", "Prefix"',
                 id="ingress-path-type"),
    pytest.param("Ingress", ingress_path(path="api"), "spec.rules[0].http.paths[0].path",
                 'Invalid value: "api": must be an absolute path', id="ingress-relative-path"),
    pytest.param("Ingress", ingress_path(backend={"service": {"name": "web", "port": {"number": 80, "name": "h"}}}),
                 "spec.rules[0].http.paths[0].backend", "cannot set both port name & port number",
                 id="ingress-port-both"),
    pytest.param("Ingress", ingress_path(backend={"service": {"name": "web"}}), "spec.rules[0].http.paths[0].backend",
                 "Required value: port name or number is required", id="ingress-port-missing"),
    pytest.param("Ingress", ingress_path(backend={}), "spec.rules[0].http.paths[0].backend",
                 "resource or service backend is required", id="ingress-backend-missing"),
    pytest.param("Ingress", {**ingress_path(), "spec": {"rules": [{"host": "*.*.example.com"}]}}, "spec.rules[0].host",
                 "a wildcard DNS-1123 subdomain must start with '*.'", id="ingress-wildcard-host"),
    pytest.param("Ingress", {**ingress_path(), "spec": {"rules": [{"host": "10.0.0.1"}]}}, "spec.rules[0].host",
                 "must be a DNS name, not an IP address", id="ingress-ip-host"),
    pytest.param("Ingress", {"metadata": {"name": "i"}, "spec": {}}, "spec",
                 "either `defaultBackend` or `rules` must be specified", id="ingress-empty"),
    pytest.param("IngressClass", {"metadata": {"name": "c"}, "spec": {"controller": "nginx"}}, "spec.controller",
                 'must be a domain-prefixed path (such as "acme.io/foo")', id="ingressclass-controller"),
    pytest.param("ConfigMap", {"metadata": {"name": "c"}, "data": {"a b": "x"}}, "data[a b]",
                 "a valid config key must consist of alphanumeric characters, '-', '_' or '.'", id="configmap-key"),
    pytest.param("Secret", {"metadata": {"name": "s"}, "data": {"..x": "eA=="}}, "data[..x]",
                 "must not start with '..'", id="secret-key"),
    pytest.param("Secret", {"metadata": {"name": "s"}, "type": "kubernetes.io/tls", "data": {"tls.crt": "eA=="}},
                 "data[tls.key]", "Required value", id="secret-tls-key-required"),
    pytest.param("Lease", {"metadata": {"name": "l"}, "spec": {"leaseDurationSeconds": 0}},
                 "spec.leaseDurationSeconds", "Invalid value: 0: must be greater than 0", id="lease-duration"),
    pytest.param("Node", {"metadata": {"name": "n"}, "spec": {"podCIDRs": ["10.244.1.0"]}}, "spec.podCIDRs[0]",
                 "must be a valid CIDR value", id="node-pod-cidr"),
    pytest.param("Event", {"metadata": {"name": "e", "namespace": "dev"}, "involvedObject": {"namespace": "prod"}},
                 "involvedObject.namespace", 'Invalid value: "prod": does not match event.namespace',
                 id="event-namespace"),
]


@pytest.mark.parametrize(("kind", "manifest", "field", "fragment"), INVALID)
def test_invalid_manifests(kind: str, manifest: dict, field: str, fragment: str) -> None:
    causes = _check(kind, manifest)
    matching = [c for c in causes if c.field == field and fragment in c.message]
    assert matching, f"no cause at {field} containing {fragment!r}; got:\n{_render(causes)}"


def test_there_are_at_least_forty_invalid_cases() -> None:
    assert len(INVALID) >= 40


def test_exact_message_for_service_port_zero() -> None:
    causes = _check("Service", svc(ports=[{"port": 0, "targetPort": 80}]))
    assert _render(causes) == "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive"
    assert causes[0].reason == "FieldValueInvalid"


def test_exact_message_for_service_name() -> None:
    causes = _check("Service", {"metadata": {"name": "Foo"}, "spec": svc()["spec"]})
    assert _render(causes) == ('metadata.name: Invalid value: "Foo": a DNS-1035 label must consist of lower case '
                               "alphanumeric characters or '-', start with an alphabetic character, and end with an "
                               "alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is "
                               "'[a-z]([-a-z0-9]*[a-z0-9])?')")


# ---- updates ---------------------------------------------------------------------------------------------------

STORED_SVC = {**svc(clusterIP="10.96.0.20"), "metadata": {"name": "web", "namespace": "dev", "uid": "u1"}}

UPDATES = [
    pytest.param("Service", STORED_SVC, {**STORED_SVC, "spec": {**STORED_SVC["spec"], "clusterIP": "10.96.0.21",
                                                                 "clusterIPs": ["10.96.0.21"]}},
                 "spec.clusterIPs[0]", 'Invalid value: ["10.96.0.21"]: may not change once set', id="svc-cluster-ip"),
    pytest.param("Service", STORED_SVC, {**STORED_SVC, "spec": {**STORED_SVC["spec"], "clusterIP": "None",
                                                                 "clusterIPs": ["10.96.0.20"]}},
                 "spec.clusterIPs[0]", 'Invalid value: ["None"]: may not change once set', id="svc-to-headless"),
    pytest.param("Service", STORED_SVC, {**STORED_SVC, "metadata": {"name": "web", "namespace": "dev", "uid": "u2"}},
                 "metadata.uid", 'Invalid value: "u2": field is immutable', id="meta-uid"),
    pytest.param("Deployment", deploy(), deploy(selector={"matchLabels": {"app": "web", "v": "2"}}, template={
        "metadata": {"labels": {"app": "web", "v": "2"}}, "spec": {"containers": [{"name": "web", "image": "i"}]}}),
                 "spec.selector", 'Invalid value: {"matchLabels":{"app":"web","v":"2"}}: field is immutable',
                 id="deploy-selector-immutable"),
    pytest.param("Pod", pod(), pod(ports=[{"containerPort": 80}]), "spec",
                 "Forbidden: pod updates may not change fields other than `spec.containers[*].image`",
                 id="pod-spec-immutable"),
    pytest.param("EndpointSlice", {"metadata": {"name": "s"}, "addressType": "IPv4"},
                 {"metadata": {"name": "s"}, "addressType": "IPv6"}, "addressType",
                 'Invalid value: "IPv6": field is immutable', id="slice-address-type-immutable"),
    pytest.param("Secret", {"metadata": {"name": "s"}, "immutable": True, "data": {"a": "eA=="}},
                 {"metadata": {"name": "s"}, "immutable": True, "data": {"a": "eQ=="}}, "data",
                 "Forbidden: field is immutable when `immutable` is set", id="secret-immutable"),
    pytest.param("IngressClass", {"metadata": {"name": "c"}, "spec": {"controller": "a.io/x"}},
                 {"metadata": {"name": "c"}, "spec": {"controller": "b.io/x"}}, "spec.controller",
                 "field is immutable", id="ingressclass-controller-immutable"),
]


@pytest.mark.parametrize(("kind", "old", "new", "field", "fragment"), UPDATES)
def test_invalid_updates(kind: str, old: dict, new: dict, field: str, fragment: str) -> None:
    causes = _check(kind, new, old)
    assert [c for c in causes if c.field == field and fragment in c.message], _render(causes)


@pytest.mark.parametrize(("kind", "old", "new"), [
    pytest.param("Service", STORED_SVC, {**STORED_SVC, "spec": {**STORED_SVC["spec"], "ports": [{"port": 8080}]}},
                 id="svc-ports-change"),
    pytest.param("Service", svc(clusterIP="10.1.2.3"), svc(clusterIP="10.1.2.3", ports=[{"port": 81}]),
                 id="svc-kept-ip-outside-new-range"),
    pytest.param("Service", svc(type="NodePort", ports=[{"port": 80, "nodePort": 30080}]),
                 svc(ports=[{"port": 80, "nodePort": 30080}], externalTrafficPolicy="Cluster"),
                 id="svc-nodeport-to-clusterip-leftovers"),
    pytest.param("Service", STORED_SVC, {**STORED_SVC, "spec": {"type": "ExternalName", "externalName": "a.b",
                                                                 "clusterIP": "10.96.0.20"}},
                 id="svc-to-externalname"),
    pytest.param("Pod", pod(image="nginx:1"), pod(image="nginx:2"), id="pod-image-change"),
    pytest.param("Pod", pod(), {**pod(), "spec": {**pod()["spec"], "nodeName": "node-1"}}, id="pod-binding"),
    pytest.param("Deployment", deploy(), deploy(replicas=5), id="deploy-scale"),
])
def test_valid_updates(kind: str, old: dict, new: dict) -> None:
    assert _render(_check(kind, new, old)) == ""


# ---- network config, purity, robustness ---------------------------------------------------------------------


def test_loopback_mode_accepts_loopback_endpoints_and_range() -> None:
    endpoints = {"metadata": {"name": "e"}, "subsets": [{"addresses": [{"ip": "127.244.0.5"}], "ports": [{"port": 80}]}]}
    assert _check("Endpoints", endpoints, net=LOOPBACK) == []
    assert [c.field for c in _check("Endpoints", endpoints)] == ["subsets[0].addresses[0].ip"]
    assert _check("Service", svc(clusterIP="127.96.0.20"), net=LOOPBACK) == []
    causes = _check("Service", svc(clusterIP="10.96.0.20"), net=LOOPBACK)
    assert "The range of valid IPs is 127.96.0.0/12" in causes[0].message


def test_node_port_range_follows_config() -> None:
    net = validation.NetworkConfig(node_port_range=(20000, 20010))
    assert _check("Service", svc(type="NodePort", ports=[{"port": 80, "nodePort": 20005}]), net=net) == []
    causes = _check("Service", svc(type="NodePort", ports=[{"port": 80, "nodePort": 30000}]), net=net)
    assert "The range of valid ports is 20000-20010" in causes[0].message


def test_validate_does_not_mutate() -> None:
    obj = defaults.apply_defaults("Deployment", deploy(selector={}))
    before = copy.deepcopy(obj)
    validation.validate("Deployment", obj, copy.deepcopy(obj), NET)
    assert obj == before


JUNK = [{}, {"spec": "x"}, {"spec": {"ports": "x", "containers": [1, None, "a"], "selector": [1]}},
        {"metadata": "x", "spec": {"template": [], "rules": [None], "strategy": 5}},
        {"spec": {"ports": [{"port": "80", "targetPort": 1.5, "nodePort": "x"}], "clusterIPs": [None, 5]}},
        {"subsets": [None, {"addresses": [None, {"ip": 5}]}], "endpoints": [{"addresses": [5]}], "data": []}]


@pytest.mark.parametrize("kind", sorted(validation._VALIDATORS))
@pytest.mark.parametrize("obj", [pytest.param(o, id=f"junk{i}") for i, o in enumerate(JUNK)])
def test_junk_shapes_never_raise(kind: str, obj: dict) -> None:
    causes = validation.validate(kind, obj, obj, NET)
    assert all(isinstance(c, Cause) for c in causes)
