"""The seed walk-through with the real kubectl: create the dev namespace, the pc-deployment and every Service type,
then get (wide/yaml/json/name/labels), watch, describe and delete them as on a real cluster.

The tests in this module run in order against one server and share the `dev` namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from svcnet.client import Client, load_kubeconfig
from svcnet.controllers.namespace_controller import NamespaceController
from tests.e2e.conftest import Server, killpg, table, wait_for, write

NAMESPACE = """\
apiVersion: v1
kind: Namespace
metadata:
  name: dev
"""
DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: pc-deployment
  namespace: dev
spec:
  replicas: 3
  selector:
    matchLabels:
      app: nginx-pod
  template:
    metadata:
      labels:
        app: nginx-pod
    spec:
      containers:
      - name: nginx
        image: nginx:1.17.1
        ports:
        - containerPort: 80
"""
SVC_CLUSTERIP = """\
apiVersion: v1
kind: Service
metadata:
  name: service-clusterip
  namespace: dev
spec:
  selector:
    app: nginx-pod
  clusterIP: 10.97.97.97
  type: ClusterIP
  ports:
  - port: 80
    targetPort: 80
"""
SVC_HEADLESS = """\
apiVersion: v1
kind: Service
metadata:
  name: service-headliness
  namespace: dev
spec:
  selector:
    app: nginx-pod
  clusterIP: None
  type: ClusterIP
  ports:
  - port: 80
    targetPort: 80
"""
SVC_NODEPORT = """\
apiVersion: v1
kind: Service
metadata:
  name: service-nodeport
  namespace: dev
spec:
  selector:
    app: nginx-pod
  type: NodePort
  ports:
  - port: 80
    nodePort: 30002
    targetPort: 80
"""
SVC_EXTERNALNAME = """\
apiVersion: v1
kind: Service
metadata:
  name: service-externalname
  namespace: dev
spec:
  type: ExternalName
  externalName: www.baidu.com
"""
SVC_LOADBALANCER = """\
apiVersion: v1
kind: Service
metadata:
  name: service-loadbalancer
  namespace: dev
  labels:
    tier: edge
spec:
  selector:
    app: nginx-pod
  type: LoadBalancer
  ports:
  - port: 80
    targetPort: 80
"""
INGRESS = """\
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: ingress-http
  namespace: dev
spec:
  rules:
  - host: nginx.itheima.com
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: service-clusterip
            port:
              number: 80
"""
ALL = [NAMESPACE, DEPLOYMENT, SVC_CLUSTERIP, SVC_HEADLESS, SVC_NODEPORT, SVC_EXTERNALNAME, SVC_LOADBALANCER,
       INGRESS]


@pytest.fixture(scope="module")
def manifests(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("seed")
    for i, text in enumerate(ALL):
        write(folder, f"{i:02d}-{yaml.safe_load(text)['metadata']['name']}.yaml", text)
    return folder


def _rows_by_name(text: str) -> tuple[list[str], dict[str, list[str]]]:
    header, rows = table(text)
    return header, {row[0]: row for row in rows}


def test_create_seed_manifests(server: Server, manifests: Path) -> None:
    result = server.kubectl("create", "-f", str(manifests / "00-dev.yaml"))
    assert result.stdout.strip() == "namespace/dev created"
    files = sorted(p for p in manifests.iterdir() if not p.name.startswith("00-"))
    result = server.kubectl("create", *[a for p in files for a in ("-f", str(p))])
    assert result.stdout.splitlines() == [
        "deployment.apps/pc-deployment created",
        "service/service-clusterip created",
        "service/service-headliness created",
        "service/service-nodeport created",
        "service/service-externalname created",
        "service/service-loadbalancer created",
        "ingress.networking.k8s.io/ingress-http created",
    ], str(result)


def test_get_svc_wide_has_real_columns(server: Server) -> None:
    result = server.kubectl("get", "svc", "-n", "dev", "-o", "wide")
    header, rows = _rows_by_name(result.stdout)
    assert header == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE", "SELECTOR"]
    assert set(rows) == {"service-clusterip", "service-headliness", "service-nodeport", "service-externalname",
                         "service-loadbalancer"}
    cip = rows["service-clusterip"]
    assert cip[:5] == ["service-clusterip", "ClusterIP", "10.97.97.97", "<none>", "80/TCP"]
    assert cip[6] == "app=nginx-pod"
    assert rows["service-headliness"][:5] == ["service-headliness", "ClusterIP", "None", "<none>", "80/TCP"]
    node = rows["service-nodeport"]
    assert node[1] == "NodePort" and node[4] == "80:30002/TCP" and node[6] == "app=nginx-pod"
    assert node[2].startswith("10.") and node[2] != "10.97.97.97"
    ext = rows["service-externalname"]
    assert ext[1:5] == ["ExternalName", "<none>", "www.baidu.com", "<none>"] and ext[6] == "<none>"
    lb = rows["service-loadbalancer"]
    assert lb[1] == "LoadBalancer" and lb[3] == "<pending>"
    port, _, proto = lb[4].partition("/")
    assert proto == "TCP" and port.startswith("80:") and 30000 <= int(port[3:]) <= 32767


def test_get_svc_default_columns_and_age(server: Server) -> None:
    header, rows = _rows_by_name(server.kubectl("get", "svc", "-n", "dev").stdout)
    assert header == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    age = rows["service-clusterip"][5]
    assert age[-1] in "smhd" and age[:-1].isdigit(), age


def test_get_deployment_wide(server: Server) -> None:
    header, rows = _rows_by_name(server.kubectl("get", "deploy", "-n", "dev", "-o", "wide").stdout)
    assert header == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]
    row = rows["pc-deployment"]
    assert row[1] == "0/3" and row[5:] == ["nginx", "nginx:1.17.1", "app=nginx-pod"]


def test_get_ingress(server: Server) -> None:
    header, rows = _rows_by_name(server.kubectl("get", "ingress", "-n", "dev").stdout)
    assert header == ["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"]
    assert rows["ingress-http"][1:5] == ["<none>", "nginx.itheima.com", "", "80"] or \
        rows["ingress-http"][1:4] == ["<none>", "nginx.itheima.com", "80"]


def test_get_show_labels(server: Server) -> None:
    header, rows = _rows_by_name(server.kubectl("get", "svc", "-n", "dev", "--show-labels").stdout)
    assert header[-1] == "LABELS"
    assert rows["service-loadbalancer"][-1] == "tier=edge"
    assert rows["service-clusterip"][-1] == "<none>"
    header, rows = _rows_by_name(server.kubectl("get", "svc", "-n", "dev", "-o", "wide", "--show-labels").stdout)
    assert header[-2:] == ["SELECTOR", "LABELS"]
    assert rows["service-loadbalancer"][-2:] == ["app=nginx-pod", "tier=edge"]


def test_get_yaml_has_defaults(server: Server) -> None:
    svc = yaml.safe_load(server.kubectl("get", "svc", "service-clusterip", "-n", "dev", "-o", "yaml").stdout)
    assert svc["kind"] == "Service" and svc["apiVersion"] == "v1"
    meta = svc["metadata"]
    assert meta["name"] == "service-clusterip" and meta["namespace"] == "dev"
    assert meta["uid"] and meta["resourceVersion"] and meta["creationTimestamp"]
    spec = svc["spec"]
    assert spec["clusterIP"] == "10.97.97.97" and spec["clusterIPs"] == ["10.97.97.97"]
    assert spec["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 80}]
    assert spec["selector"] == {"app": "nginx-pod"}
    assert spec["type"] == "ClusterIP" and spec["sessionAffinity"] == "None"
    assert spec["ipFamilies"] == ["IPv4"] and spec["ipFamilyPolicy"] == "SingleStack"
    assert spec["internalTrafficPolicy"] == "Cluster"
    assert svc["status"] == {"loadBalancer": {}}


def test_get_json_nodeport_and_deployment(server: Server) -> None:
    svc = json.loads(server.kubectl("get", "svc", "service-nodeport", "-n", "dev", "-o", "json").stdout)
    assert svc["spec"]["ports"][0]["nodePort"] == 30002
    assert svc["spec"]["externalTrafficPolicy"] == "Cluster"
    dep = json.loads(server.kubectl("get", "deploy", "pc-deployment", "-n", "dev", "-o", "json").stdout)
    assert dep["kind"] == "Deployment" and dep["apiVersion"] == "apps/v1"
    assert dep["spec"]["replicas"] == 3
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "nginx:1.17.1"
    assert container["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert dep["metadata"]["generation"] == 1
    listed = json.loads(server.kubectl("get", "svc", "-n", "dev", "-o", "json").stdout)
    assert listed["kind"] == "List" and len(listed["items"]) == 5


def test_get_name(server: Server) -> None:
    names = server.kubectl("get", "svc,deploy,ing", "-n", "dev", "-o", "name").stdout.split()
    assert sorted(names) == sorted([
        "service/service-clusterip", "service/service-headliness", "service/service-nodeport",
        "service/service-externalname", "service/service-loadbalancer", "deployment.apps/pc-deployment",
        "ingress.networking.k8s.io/ingress-http"])


def test_get_all_category(server: Server) -> None:
    out = server.kubectl("get", "all", "-n", "dev").stdout
    assert "service/service-clusterip" in out and "deployment.apps/pc-deployment" in out


def test_get_missing_is_not_found(server: Server) -> None:
    result = server.kubectl("get", "svc", "nope", "-n", "dev", check=False)
    assert result.rc == 1
    assert 'Error from server (NotFound): services "nope" not found' in result.stderr


def test_get_watch_streams_new_rows(server: Server) -> None:
    proc, reader = server.kubectl_popen("get", "svc", "-w", "-n", "dev")
    try:
        reader.wait_line(lambda line: line.startswith("NAME"), 20, "the table header")
        reader.wait_line(lambda line: line.startswith("service-loadbalancer"), 20, "the existing rows")
        server.kubectl("create", "service", "clusterip", "watched-svc", "--tcp=8080:80", "-n", "dev")
        row = reader.wait_line(lambda line: line.startswith("watched-svc"), 20, "the ADDED row")
        assert row.split()[1:2] == ["ClusterIP"] and "8080/TCP" in row
        server.kubectl("patch", "svc", "watched-svc", "-n", "dev", "--type=merge", "-p",
                       '{"spec":{"ports":[{"name":"8080-80","port":8080,"targetPort":80},'
                       '{"name":"extra","port":9090,"targetPort":90}]}}')
        row = reader.wait_line(lambda line: line.startswith("watched-svc") and "9090" in line, 20,
                               "the MODIFIED row")
        assert "8080/TCP,9090/TCP" in row
        server.kubectl("label", "svc", "service-headliness", "-n", "dev", "watched=yes")
        reader.wait_line(lambda line: line.startswith("service-headliness"), 20, "the row of a labelled service")
        rows = [line for line in reader.lines if line.startswith("watched-svc")]
        assert len(rows) == 2, reader.lines  # existing rows are not repeated, each change printed once
        assert sum(1 for line in reader.lines if line.startswith("NAME")) == 1
        assert sum(1 for line in reader.lines if line.startswith("service-clusterip")) == 1
        assert proc.poll() is None, "kubectl get -w ended on its own"
    finally:
        killpg(proc)


def test_describe_svc_uses_endpointslices(server: Server) -> None:
    endpoint_slice = {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "service-clusterip-abc12", "namespace": "dev",
                     "labels": {"kubernetes.io/service-name": "service-clusterip"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [ip], "conditions": {"ready": True}}
                      for ip in ("10.244.1.39", "10.244.1.40", "10.244.2.33")],
        "ports": [{"name": "", "port": 80, "protocol": "TCP"}],
    }
    server.kubectl("create", "-f", "-", input=json.dumps(endpoint_slice))
    out = server.kubectl("describe", "svc", "service-clusterip", "-n", "dev").stdout
    fields = {}
    for line in out.splitlines():
        key, sep, value = line.partition(":")
        if sep and not line.startswith(" "):
            fields.setdefault(key.strip(), value.strip())
    assert fields["Name"] == "service-clusterip"
    assert fields["Namespace"] == "dev"
    assert fields["Selector"] == "app=nginx-pod"
    assert fields["Type"] == "ClusterIP"
    assert fields["IP"] == "10.97.97.97"
    assert fields["IPs"] == "10.97.97.97"
    assert fields["Port"].split() == ["<unset>", "80/TCP"]
    assert fields["TargetPort"] == "80/TCP"
    assert sorted(fields["Endpoints"].split(",")) == ["10.244.1.39:80", "10.244.1.40:80", "10.244.2.33:80"]
    assert fields["Session Affinity"] == "None"
    assert fields["Events"] == "<none>"
    out = server.kubectl("describe", "svc", "service-nodeport", "-n", "dev").stdout
    assert any(line.split() == ["NodePort:", "<unset>", "30002/TCP"] for line in out.splitlines()), out
    assert any(line.split() == ["Endpoints:"] or line.split() == ["Endpoints:", "<none>"]
               for line in out.splitlines()), out


def test_delete_by_name_file_label_and_all(server: Server, manifests: Path) -> None:
    result = server.kubectl("delete", "svc", "service-nodeport", "-n", "dev")
    assert result.stdout.strip() == 'service "service-nodeport" deleted'
    result = server.kubectl("delete", "-f", str(manifests / "06-service-loadbalancer.yaml"))
    assert result.stdout.strip() == 'service "service-loadbalancer" deleted'
    result = server.kubectl("delete", "svc", "-n", "dev", "-l", "watched=yes")
    assert result.stdout.strip() == 'service "service-headliness" deleted'
    names = server.kubectl("get", "svc", "-n", "dev", "-o", "name").stdout.split()
    assert sorted(names) == ["service/service-clusterip", "service/service-externalname", "service/watched-svc"]
    result = server.kubectl("delete", "svc", "--all", "-n", "dev")
    assert sorted(result.stdout.splitlines()) == ['service "service-clusterip" deleted',
                                                  'service "service-externalname" deleted',
                                                  'service "watched-svc" deleted']
    result = server.kubectl("get", "svc", "-n", "dev")
    assert result.stdout == "" and "No resources found in dev namespace." in result.stderr
    result = server.kubectl("delete", "svc", "service-nodeport", "-n", "dev", check=False)
    assert result.rc == 1
    assert 'Error from server (NotFound): services "service-nodeport" not found' in result.stderr
    # the NodePort and the ClusterIP are free again
    server.kubectl("create", "-f", str(manifests / "02-service-clusterip.yaml"),
                   "-f", str(manifests / "04-service-nodeport.yaml"))


async def _run_namespace_controller(server: Server, stop: asyncio.Event) -> None:
    async with Client(load_kubeconfig(server.kubeconfig)) as client:
        task = asyncio.create_task(NamespaceController(client).run())
        await stop.wait()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.fixture
def namespace_controller(server: Server) -> Iterator[None]:
    """The namespace controller on its own event loop in a thread: it is what completes a namespace deletion."""
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    thread = threading.Thread(target=loop.run_until_complete, args=(_run_namespace_controller(server, stop),),
                              daemon=True)
    thread.start()
    try:
        yield
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(15)
        loop.close()


@pytest.mark.usefixtures("namespace_controller")
def test_delete_namespace_removes_its_objects(server: Server) -> None:
    result = server.kubectl("delete", "namespace", "dev", timeout=90)
    assert result.stdout.strip() == 'namespace "dev" deleted'
    result = server.kubectl("get", "ns", "dev", check=False)
    assert result.rc == 1 and "NotFound" in result.stderr
    wait_for(lambda: server.http("GET", "/api/v1/namespaces/dev/services").json().get("items") == [], 10,
             "the services of dev to be gone")
