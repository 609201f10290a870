"""`svcnet demo`: the seed walkthrough of MISSION.md, run against a running `svcnet up` with the real tools a user
types — /usr/bin/kubectl (KUBECONFIG=<data-dir>/kubeconfig), curl, dig and `svcnet proxy show`.

Which `svcnet up` it is comes from `<data-dir>/up.json` and is held in a frozen `Profile`: the addresses the steps
expect and where each network command runs. Loopback mode (`LOOPBACK`) runs everything here, against 127.x
addresses. Netns mode (`svcnet up --netns`, nodes in up.json; `netns_profile`) reaches pod IPs from node-1
(`svcnet exec node-1 -- ...`), ClusterIPs and the cluster DNS from a demo pod on node-1 (`kubectl exec`: a node's
own namespace has no route for the service range, as a pod's default route has), NodePorts on every node address
from the client namespace, and asks node-1's proxy for `proxy show`. The proxy mode comes from that proxy's
/proxyMode: round robin is only checked in userspace mode (the kernel modes choose at random: there a loop of
30 requests must reach every pod), and in the kernel modes the rules in node-1 are shown and checked too.

Theory of operation: the walkthrough is data — `STEPS`, one `Step` per MISSION item (number, title, the coroutine
that runs it, the steps it needs) and the manifests below. A step prints every command it runs as `$ command`
followed by the command's real output, then checks what the seed says should be true and prints `ok: ...` per
check; the first failed check ends the step with FAIL (and why). A step whose prerequisite failed is SKIPped.

Invariants:
- Everything shown is copyable: commands are printed as a shell would take them (after `export KUBECONFIG=...`),
  manifests as `kubectl apply -f - <<'EOF'` here-documents.
- No fixed sleeps: every wait is a condition polled against a deadline (`until`), done quietly (the command
  that shows the result is then printed once), or `kubectl rollout status` / `kubectl wait` with a --timeout.
- The demo owns namespace `dev`: it applies over whatever is there and always deletes the namespace at the end
  (and waits for it to go), even when a step failed or the run is interrupted.
- Exit status: 0 when no step failed, 1 when one did (or the cleanup did), 2 when no `svcnet up` answers.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import functools
import ipaddress
import json
import os
import re
import shlex
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["LOOPBACK", "STEPS", "Demo", "DigAnswer", "Outcome", "Place", "Profile", "Step", "netns_profile",
           "parse_dig", "ready_pods", "register", "run", "steps"]

T = TypeVar("T")
NAMESPACE = "dev"
KUBECTL = "/usr/bin/kubectl"
NODE_PORT = 30002
NODE_PORT_RANGE = range(30000, 32768)
SEARCH = "dev.svc.cluster.local svc.cluster.local cluster.local"
DEADLINE = 90.0  # seconds any one condition may take
LOOP = 6  # requests per curl loop: each of the 3 pods twice under round robin
SPREAD = 30  # requests that must reach all 3 pods when the proxy chooses at random (each missed: (2/3)^30)
NETNS_CLUSTER_IP = "10.97.97.97"
NETNS_PROXY_METRICS_PORT = 10249


class Where(Enum):
    HERE = "here"  # the demo's own namespace
    NODE = "node"  # a node's (or the client's) namespace of `svcnet up --netns`: `svcnet exec NAME -- ...`
    POD = "pod"  # a demo pod on node NAME: `kubectl exec POD -- ...`


@dataclass(frozen=True, slots=True)
class Place:
    """Where a network command runs."""
    where: Where = Where.HERE
    name: str = ""


HERE = Place()


@dataclass(frozen=True, slots=True)
class Profile:
    """What the walkthrough expects of one kind of `svcnet up`: its addresses and where network commands run."""
    name: str  # "loopback" or "netns"
    proxy_mode: str  # userspace, iptables or nftables
    cluster_ip: str  # service-clusterip's
    cluster_dns: str  # kube-dns's ClusterIP
    node_addresses: tuple[str, ...]  # where NodePorts answer
    proxy_metrics: str  # the proxy `svcnet proxy show` asks
    pod_net: Place = HERE  # where pod IPs are reached from
    service_net: Place = HERE  # where ClusterIPs and the cluster DNS are reached from
    outside: Place = HERE  # where NodePorts are reached from
    rules_at: Place = HERE  # where the kernel proxy modes' rules are listed
    lb_pool: str = "127.240.0.0/24"  # where LoadBalancer addresses come from
    ingress_address: str = "127.0.80.1"  # where the ingress controller listens (HTTP on port 80)

    @property
    def round_robin(self) -> bool:
        return self.proxy_mode == "userspace"

    @property
    def scheduler(self) -> str:
        return "rr" if self.round_robin else "random"

    @property
    def ruleset(self) -> tuple[str, ...]:
        """The command listing the proxy's kernel rules (none in userspace mode)."""
        return {"iptables": ("iptables-save", "-t", "nat"),
                "nftables": ("nft", "list", "table", "ip", "svcnet")}.get(self.proxy_mode, ())

    @property
    def cluster_url(self) -> str:
        return f"http://{self.cluster_ip}:80/"

    @property
    def unreachable(self) -> tuple[frozenset[int], str]:
        """curl exit codes for a ClusterIP with no rule left, and how that reads: loopback addresses refuse (7);
        in netns mode nothing routes the address (7 "no route to host", or 28 when no error comes back)."""
        if self.name == "loopback":
            return frozenset({7}), "refuses connections"
        return frozenset({7, 28}), "is unreachable (no route, or no answer)"


LOOPBACK = Profile("loopback", "userspace", "127.97.97.97", "127.96.0.10", ("127.0.0.1",), "127.0.0.1:10249")


def netns_proxy_metrics(state: dict[str, Any]) -> str:
    """HOST:PORT of the first node's proxy metrics, from up.json (its healthz URL has the host)."""
    healthz = state["components"][f"proxy {next(iter(state['nodes']))}"]  # http://HOST:PORT/healthz
    return f"{healthz.split('//', 1)[1].split('/', 1)[0].rsplit(':', 1)[0]}:{NETNS_PROXY_METRICS_PORT}"


def netns_profile(state: dict[str, Any], proxy_mode: str) -> Profile:
    """The profile of a `svcnet up --netns` from its up.json (`state`) and its proxies' mode."""
    from svcnet.cluster import topology

    first = next(iter(state["nodes"]))
    return Profile("netns", proxy_mode, NETNS_CLUSTER_IP, state["dns_address"],
                   tuple(node.ip for node in topology.plan(len(state["nodes"]))),
                   netns_proxy_metrics(state), pod_net=Place(Where.NODE, first),
                   service_net=Place(Where.POD, first), outside=Place(Where.NODE, "client"),
                   rules_at=Place(Where.NODE, first),
                   ingress_address=topology.plan(len(state["nodes"]))[0].ip,
                   lb_pool=state.get("lb_pool", topology.LB_POOL))

DEPLOYMENT = """\
apiVersion: v1
kind: Namespace
metadata:
  name: dev
---
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
      initContainers:            # marks the pod ready; step 8 removes the mark
      - name: mark-ready
        image: busybox:1.30
        command: [touch, /tmp/ready]
      containers:
      - name: nginx
        image: nginx:1.17.1
        ports:
        - containerPort: 80
        readinessProbe:
          exec:
            command: [cat, /tmp/ready]
          periodSeconds: 1
"""


INGRESS_BACKENDS = "".join(f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {app}
  namespace: dev
spec:
  replicas: 1
  selector:
    matchLabels:
      app: {app}
  template:
    metadata:
      labels:
        app: {app}
    spec:
      containers:
      - name: kubia
        image: luksa/kubia
        ports:
        - containerPort: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: {app}
  namespace: dev
spec:
  selector:
    app: {app}
  ports:
  - port: 80
    targetPort: 8080
---
""" for app in ("kubia", "bar"))

SEED_INGRESS = """\
apiVersion: extensions/v1beta1     # the seed's form: served, converted to networking.k8s.io/v1, with a warning
kind: Ingress
metadata:
  name: kubia
  namespace: dev
spec:
  rules:
  - host: kubia.example.com
    http:
      paths:
      - path: /kubia
        backend:
          serviceName: kubia
          servicePort: 80
      - path: /foo
        backend:
          serviceName: bar
          servicePort: 80
"""


def _service(name: str, spec: str) -> str:
    return f"apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: dev\nspec:\n{spec}"


_SELECT = "  selector:\n    app: nginx-pod\n"
_PORTS = "  ports:\n  - port: 80\n    targetPort: 80\n"


def service_clusterip(cluster_ip: str) -> str:
    return _service("service-clusterip", f"{_SELECT}  clusterIP: {cluster_ip}\n  type: ClusterIP\n{_PORTS}")


SERVICE_HEADLESS = _service("service-headliness", f"{_SELECT}  clusterIP: None\n  type: ClusterIP\n{_PORTS}")
SERVICES_NODEPORT = (_service("service-nodeport", f"{_SELECT}  type: NodePort\n{_PORTS}    nodePort: {NODE_PORT}\n")
                     + "---\n" + _service("service-nodeport-auto", f"{_SELECT}  type: NodePort\n{_PORTS}"))
SERVICE_LOADBALANCER = _service("service-loadbalancer", f"{_SELECT}  type: LoadBalancer\n{_PORTS}")
SERVICE_EXTERNALNAME = _service("service-externalname", "  type: ExternalName\n  externalName: www.baidu.com\n")


# ---- pure helpers ----------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class DigAnswer:
    status: str  # NOERROR, NXDOMAIN, ... ("" when dig got no answer)
    records: tuple[tuple[str, str, str], ...]  # (owner name, type, data) of the ANSWER SECTION

    def values(self, rtype: str) -> list[str]:
        return sorted(data for _, kind, data in self.records if kind == rtype)


def parse_dig(text: str) -> DigAnswer:
    """dig's default output -> its status and answer records."""
    status = re.search(r"status: (\w+)", text)
    records: list[tuple[str, str, str]] = []
    section = text.split(";; ANSWER SECTION:\n", 1)
    for line in section[1].split("\n\n", 1)[0].splitlines() if len(section) == 2 else []:
        fields = line.split(None, 4)
        if len(fields) == 5:
            records.append((fields[0], fields[3], fields[4].strip()))
    return DigAnswer(status.group(1) if status else "", tuple(records))


def ready_pods(pod_list: dict[str, Any]) -> dict[str, str]:
    """Pod name -> pod IP of the Running, Ready pods not being deleted."""
    ready = {}
    for pod in pod_list.get("items") or []:
        status = pod.get("status") or {}
        is_ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
        if is_ready and status.get("phase") == "Running" and status.get("podIP") and \
                not pod["metadata"].get("deletionTimestamp"):
            ready[pod["metadata"]["name"]] = status["podIP"]
    return ready


def curl_loop(url: str, count: int = LOOP) -> str:
    return f"for i in $(seq {count}); do curl -s {url}; done"


def answers(stdout: str) -> list[str]:
    return [line.strip() for line in stdout.splitlines() if line.strip()]


# ---- the shell: real commands, shown ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Ran:
    rc: int
    stdout: str
    stderr: str


@dataclass(frozen=True, slots=True)
class Via:
    """A command prefix that runs a command elsewhere (`svcnet exec ...`, `kubectl exec ...`), and how it is typed."""
    argv: tuple[str, ...] = ()
    shown: str = ""

    def wrap(self, argv: Sequence[str], shown: str | None = None) -> tuple[list[str], str]:
        if not self.argv:
            return list(argv), shown or shlex.join(argv)
        return [*self.argv, *argv], self.shown + shlex.join(argv)


class StepFailed(Exception):
    """A check of a step did not hold (the message says which)."""


class Shell:
    """Runs commands as subprocesses with the demo's environment; shown ones are printed with their output."""

    def __init__(self, env: dict[str, str], svcnet_argv: Sequence[str], write: Callable[[str], None]) -> None:
        self.env = env
        self.svcnet_argv = list(svcnet_argv)
        self.write = write

    async def run(self, argv: Sequence[str], *, shown: str | None = None, stdin: str | None = None,
                  show: bool = True, timeout: float = 60.0) -> Ran:
        if show:
            self.write(f"$ {shown or shlex.join(argv)}")
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=self.env, start_new_session=True)
        try:
            out, err = await asyncio.wait_for(proc.communicate(stdin.encode() if stdin is not None else None),
                                              timeout)
            ran = Ran(proc.returncode if proc.returncode is not None else -1, out.decode(errors="replace"),
                      err.decode(errors="replace"))
        except TimeoutError:
            ran = Ran(-1, "", f"(no answer after {timeout:.0f} s)\n")
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        if show:
            for text in (ran.stdout, ran.stderr):
                if text:
                    self.write(text.rstrip("\n"))
        return ran

    async def kubectl(self, *args: str, stdin: str | None = None, show: bool = True) -> Ran:
        return await self.run([KUBECTL, *args], shown="kubectl " + shlex.join(args), stdin=stdin, show=show)

    async def apply(self, manifest: str) -> Ran:
        return await self.run([KUBECTL, "apply", "-f", "-"], shown=f"kubectl apply -f - <<'EOF'\n{manifest}EOF",
                              stdin=manifest)

    async def svcnet(self, *args: str) -> Ran:
        return await self.run([*self.svcnet_argv, *args], shown="svcnet " + shlex.join(args))

    async def get_json(self, *args: str) -> Any:
        """`kubectl get ARGS -o json`, quietly; None when kubectl fails."""
        ran = await self.kubectl("get", *args, "-o", "json", show=False)
        return json.loads(ran.stdout) if ran.rc == 0 else None


async def until(probe: Callable[[], Awaitable[T | None]], what: str, timeout: float = DEADLINE) -> T:
    """Poll `probe` until it returns something truthy; StepFailed naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    interval = 0.05
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise StepFailed(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(interval)
        interval = min(interval * 1.5, 0.5)


# ---- the walkthrough -------------------------------------------------------------------------------------------

@dataclass
class Demo:
    shell: Shell
    profile: Profile = LOOPBACK
    data_dir: Path = Path()  # for `svcnet exec` (netns mode)
    pods: dict[str, str] = field(default_factory=dict)  # name -> IP of the 3 pods, from step 1
    pod_nodes: dict[str, str] = field(default_factory=dict)  # name -> node of the 3 pods, from step 1

    def expect(self, ok: bool, what: str, why: str = "") -> None:
        if not ok:
            raise StepFailed(what + (f": {why}" if why else ""))
        self.shell.write(f"   ok: {what}")

    @property
    def ips(self) -> list[str]:
        return sorted(self.pods.values())

    def via(self, place: Place) -> Via:
        args: tuple[str, ...]
        if place.where is Where.NODE:
            args = ("exec", place.name, "--data-dir", str(self.data_dir), "--")
            return Via((*self.shell.svcnet_argv, *args), "svcnet " + shlex.join(args) + " ")
        if place.where is Where.POD:
            pod = min((p for p, node in self.pod_nodes.items() if node == place.name), default="")
            if not pod:
                raise StepFailed(f"no demo pod runs on {place.name} to send requests from")
            args = ("exec", pod, "-n", NAMESPACE, "-c", "nginx", "--")
            return Via((KUBECTL, *args), "kubectl " + shlex.join(args) + " ")
        return Via()

    async def net(self, place: Place, argv: Sequence[str], *, shown: str | None = None, show: bool = True,
                  timeout: float = 60.0) -> Ran:
        """A network command run at `place` (here, in a node's namespace, or in a pod)."""
        full, typed = self.via(place).wrap(argv, shown)
        return await self.shell.run(full, shown=typed, show=show, timeout=timeout)

    async def curl(self, url: str, place: Place, *, show: bool = True) -> Ran:
        return await self.net(place, ["curl", "-sS", "--max-time", "5", url], show=show,
                              timeout=10 if place == HERE else 20)

    async def curl_loop(self, url: str, count: int = LOOP, *, show: bool = True) -> list[str]:
        script = curl_loop(url, count)
        return answers((await self.net(self.profile.service_net, ["sh", "-c", script], shown=script,
                                       show=show)).stdout)

    async def dig(self, name: str, *, show: bool = True) -> DigAnswer:
        argv = ["dig", f"@{self.profile.cluster_dns}", name] + ([] if show else ["+time=1", "+tries=1"])
        return parse_dig((await self.net(self.profile.service_net, argv, show=show, timeout=20)).stdout)

    async def apply(self, manifest: str, what: str) -> None:
        ran = await self.shell.apply(manifest)
        self.expect(ran.rc == 0, f"{what} applied", ran.stderr.strip().splitlines()[-1] if ran.stderr.strip() else "")

    async def listed_pods(self) -> dict[str, Any] | None:
        return await self.shell.get_json("pods", "-n", NAMESPACE, "-l", "app=nginx-pod")

    async def ready_pods(self) -> dict[str, str]:
        listed = await self.listed_pods()
        return ready_pods(listed) if listed else {}

    async def endpoint_ips(self, service: str) -> list[str]:
        endpoints = await self.shell.get_json("endpoints", service, "-n", NAMESPACE) or {}
        return sorted(a["ip"] for s in endpoints.get("subsets") or [] for a in s.get("addresses") or [])

    async def virtual_server(self, ip: str, port: int) -> dict[str, Any] | None:
        ran = await self.shell.run([*self.shell.svcnet_argv, "proxy", "show", "--metrics-bind-address",
                                    self.profile.proxy_metrics, "-o", "json"], show=False)
        listed = json.loads(ran.stdout) if ran.rc == 0 else []
        return next((s for s in listed if s["ip"] == ip and s["port"] == port and s["protocol"] == "TCP"), None)

    async def proxy_listing(self) -> str:
        return (await self.shell.svcnet("proxy", "show", "--metrics-bind-address", self.profile.proxy_metrics)).stdout

    async def loop_until(self, url: str, good: Callable[[list[str]], bool], what: str, count: int = LOOP
                         ) -> list[str]:
        """Quiet curl loops until one satisfies `good` (the proxy has caught up), then the loop shown once."""
        await until(lambda: self._quiet_loop(url, good, count), what)
        return await self.curl_loop(url, count)

    async def _quiet_loop(self, url: str, good: Callable[[list[str]], bool], count: int) -> bool:
        return good(await self.curl_loop(url, count, show=False))

    @property
    def spread(self) -> int:
        """Requests per loop that must reach every ready pod."""
        return LOOP if self.profile.round_robin else SPREAD


async def step_deployment(demo: Demo) -> None:
    sh = demo.shell
    await demo.apply(DEPLOYMENT, "namespace dev and Deployment pc-deployment")
    ran = await sh.kubectl("rollout", "status", "deployment/pc-deployment", "-n", NAMESPACE, "--timeout=90s")
    demo.expect(ran.rc == 0, "the rollout finished")
    demo.pods = await until(lambda: _three(demo.ready_pods()), "3 ready pods")
    demo.expect(len(set(demo.pods.values())) == 3, "3 pods Ready, each with its own IP", str(demo.pods))
    table = (await sh.kubectl("get", "pods", "-n", NAMESPACE, "-o", "wide", "--show-labels")).stdout
    rows = [line for line in table.splitlines() if line.split(" ", 1)[0] in demo.pods]
    demo.expect(len(rows) == 3 and all("Running" in r and "app=nginx-pod" in r and demo.pods[r.split()[0]] in r
                                       for r in rows), "the table shows 3 Running pods with IP and app=nginx-pod")
    listed = await demo.listed_pods() or {}
    demo.pod_nodes = {p["metadata"]["name"]: p.get("spec", {}).get("nodeName", "") for p in listed.get("items", [])
                      if p["metadata"]["name"] in demo.pods}
    if demo.profile.service_net.where is Where.POD:
        node = demo.profile.service_net.name
        demo.expect(node in demo.pod_nodes.values(), f"a pod runs on {node} (ClusterIP and DNS requests go from it)",
                    str(demo.pod_nodes))
    for ip in demo.ips:
        body = (await demo.curl(f"http://{ip}:80/", demo.profile.pod_net)).stdout.strip()
        demo.expect(body == ip, f"the pod at {ip} answers HTTP with its own IP", repr(body))


async def _three(pods: Awaitable[dict[str, str]]) -> dict[str, str] | None:
    found = await pods
    return found if len(found) == 3 else None


async def step_clusterip(demo: Demo) -> None:
    sh, cluster_ip = demo.shell, demo.profile.cluster_ip
    await demo.apply(service_clusterip(cluster_ip), "service-clusterip")
    table = (await sh.kubectl("get", "svc", "service-clusterip", "-n", NAMESPACE, "-o", "wide")).stdout
    demo.expect(f" {cluster_ip} " in table, f"CLUSTER-IP is {cluster_ip}")
    await until(lambda: _equal(demo.endpoint_ips("service-clusterip"), demo.ips), "the endpoints of 3 pods")
    described = (await sh.kubectl("describe", "svc", "service-clusterip", "-n", NAMESPACE)).stdout
    line = next((ln for ln in described.splitlines() if ln.startswith("Endpoints:")), "")
    demo.expect(sorted(line.split()[-1].split(",")) == sorted(f"{ip}:80" for ip in demo.ips),
                "describe lists Endpoints: ip:80,ip:80,ip:80", line)
    listed = (await sh.kubectl("get", "endpoints", "service-clusterip", "-n", NAMESPACE)).stdout
    demo.expect(all(f"{ip}:80" in listed for ip in demo.ips), "get endpoints shows the 3 pods")


async def _equal(value: Awaitable[Any], expected: Any) -> bool:
    return bool(await value == expected)


async def step_affinity(demo: Demo) -> None:
    sh, profile, url = demo.shell, demo.profile, demo.profile.cluster_url
    await until(lambda: _backends(demo, 3), "the proxy to forward to 3 pods")
    await _spread(demo, url)
    patch = await sh.kubectl("patch", "svc", "service-clusterip", "-n", NAMESPACE, "-p",
                             '{"spec":{"sessionAffinity":"ClientIP"}}')
    demo.expect(patch.rc == 0, "sessionAffinity: ClientIP set")
    await until(lambda: _persistent(demo, 10800), "the proxy to apply the affinity")
    got = await demo.loop_until(url, lambda got: len(got) == LOOP and len(set(got)) == 1,
                                "the requests to stick to one pod")
    demo.expect(len(got) == LOOP and len(set(got)) == 1 and got[0] in demo.ips, "ClientIP: 6 of 6 to one pod",
                str(got))
    listing = await demo.proxy_listing()
    demo.expect(f"TCP  {profile.cluster_ip}:80 {profile.scheduler} persistent 10800" in listing.splitlines(),
                f"the listing shows {profile.scheduler} and persistent 10800")
    if profile.ruleset:
        rules = (await demo.net(profile.rules_at, profile.ruleset)).stdout
        demo.expect(profile.cluster_ip in rules,
                    f"the {profile.proxy_mode} rules of {profile.rules_at.name} mention {profile.cluster_ip}")
    patch = await sh.kubectl("patch", "svc", "service-clusterip", "-n", NAMESPACE, "-p",
                             '{"spec":{"sessionAffinity":"None"}}')
    demo.expect(patch.rc == 0, "sessionAffinity back to None for the next steps")
    await until(lambda: _persistent(demo, None), "the proxy to drop the affinity")


async def _spread(demo: Demo, url: str) -> None:
    """Round robin: each pod twice in 6 requests; a random choice (kernel modes): 30 requests reach every pod."""
    if demo.profile.round_robin:
        await until(lambda: demo._quiet_loop(url, lambda got: set(got) == set(demo.ips), LOOP),
                    "the proxy to answer from 3 pods")
        got = await demo.curl_loop(url)
        demo.expect(collections.Counter(got) == {ip: 2 for ip in demo.ips}, "round robin: each pod answered twice",
                    str(got))
        return
    got = await demo.loop_until(url, lambda got: set(got) == set(demo.ips), "the proxy to answer from 3 pods",
                                SPREAD)
    demo.expect(len(got) == SPREAD and set(got) == set(demo.ips),
                f"random choice: {SPREAD} requests reached all 3 pods", str(collections.Counter(got)))


async def _backends(demo: Demo, count: int) -> bool:
    server = await demo.virtual_server(demo.profile.cluster_ip, 80)
    return server is not None and sum(1 for b in server["backends"] if b.get("ready", True)) == count


async def _persistent(demo: Demo, seconds: int | None) -> bool:
    server = await demo.virtual_server(demo.profile.cluster_ip, 80)
    return server is not None and server.get("persistent") == seconds


async def step_headless(demo: Demo) -> None:
    sh, name, dns = demo.shell, "service-headliness.dev.svc.cluster.local", demo.profile.cluster_dns
    await demo.apply(SERVICE_HEADLESS, "service-headliness")
    table = (await sh.kubectl("get", "svc", "service-headliness", "-n", NAMESPACE)).stdout
    demo.expect(" None " in table, "CLUSTER-IP is None")
    await until(lambda: _equal(_a_records(demo, name), demo.ips), "DNS to answer with the 3 pod IPs")
    answer = await demo.dig(name)
    demo.expect(answer.values("A") == demo.ips, "dig returns the 3 pod IPs as A records", str(answer.values("A")))
    pod = min(demo.pods)
    resolv = (await sh.kubectl("exec", pod, "-n", NAMESPACE, "--", "cat", "/etc/resolv.conf")).stdout
    lines = [line.split() for line in resolv.splitlines()]
    demo.expect(["nameserver", dns] in lines, f"the pod's nameserver is {dns}")
    demo.expect(["search", *SEARCH.split()] in lines, f"the pod's search domains are {SEARCH}")


async def _a_records(demo: Demo, name: str) -> list[str]:
    return (await demo.dig(name, show=False)).values("A")


async def step_nodeport(demo: Demo) -> None:
    sh = demo.shell
    await demo.apply(SERVICES_NODEPORT, "service-nodeport and service-nodeport-auto")
    await sh.kubectl("get", "svc", "service-nodeport", "service-nodeport-auto", "-n", NAMESPACE)
    for address in demo.profile.node_addresses:
        await _answers(demo, f"http://{address}:{NODE_PORT}/", f"NodePort {NODE_PORT} on {address}")
    auto = await sh.get_json("svc", "service-nodeport-auto", "-n", NAMESPACE)
    port = int((auto or {}).get("spec", {}).get("ports", [{}])[0].get("nodePort") or 0)
    demo.expect(port in NODE_PORT_RANGE, f"service-nodeport-auto got nodePort {port} from 30000-32767")
    for address in demo.profile.node_addresses:
        await _answers(demo, f"http://{address}:{port}/", f"NodePort {port} on {address}")


async def _answers(demo: Demo, url: str, what: str) -> None:
    """`url` answers from outside the cluster (waited for quietly), then one request shown; a pod must have
    answered."""
    place = demo.profile.outside
    await until(lambda: _curl_ok(demo, url, place), f"{what} to answer")
    body = (await demo.curl(url, place)).stdout.strip()
    demo.expect(body in demo.ips, f"{what} forwards to a pod", repr(body))


async def _curl_ok(demo: Demo, url: str, place: Place) -> bool:
    return (await demo.curl(url, place, show=False)).rc == 0


async def step_loadbalancer(demo: Demo) -> None:
    sh = demo.shell
    await demo.apply(SERVICE_LOADBALANCER, "service-loadbalancer")
    address = await until(lambda: _lb_address(sh), "an EXTERNAL-IP")
    table = (await sh.kubectl("get", "svc", "service-loadbalancer", "-n", NAMESPACE)).stdout
    pool = ipaddress.ip_network(demo.profile.lb_pool)
    demo.expect(address in table and ipaddress.ip_address(address) in pool, f"EXTERNAL-IP {address} from the pool {pool}")
    await _answers(demo, f"http://{address}:80/", f"the external address {address}")


async def _lb_address(sh: Shell) -> str | None:
    svc = await sh.get_json("svc", "service-loadbalancer", "-n", NAMESPACE) or {}
    ingress = svc.get("status", {}).get("loadBalancer", {}).get("ingress") or [{}]
    return ingress[0].get("ip")


async def step_externalname(demo: Demo) -> None:
    sh, name = demo.shell, "service-externalname.dev.svc.cluster.local"
    await demo.apply(SERVICE_EXTERNALNAME, "service-externalname")
    await sh.kubectl("get", "svc", "service-externalname", "-n", NAMESPACE)
    await until(lambda: _cname(demo, name), "DNS to answer with a CNAME")
    answer = await demo.dig(name)
    demo.expect(answer.values("CNAME") == ["www.baidu.com."], "dig answers CNAME www.baidu.com.",
                str(answer.records))


async def _cname(demo: Demo, name: str) -> list[str]:
    return (await demo.dig(name, show=False)).values("CNAME")


async def step_readiness(demo: Demo) -> None:
    sh, url, count = demo.shell, demo.profile.cluster_url, demo.spread
    pod = min(demo.pods)
    ip, others = demo.pods[pod], sorted(set(demo.ips) - {demo.pods[pod]})
    await sh.kubectl("exec", pod, "-n", NAMESPACE, "--", "rm", "/tmp/ready")
    ran = await sh.kubectl("wait", "--for=condition=Ready=false", f"pod/{pod}", "-n", NAMESPACE, "--timeout=60s")
    demo.expect(ran.rc == 0, f"{pod} is not Ready once its probe fails")
    await sh.kubectl("get", "pods", "-n", NAMESPACE, "-o", "wide")
    await until(lambda: _equal(demo.endpoint_ips("service-clusterip"), others), f"{ip} to leave the endpoints")
    listed = (await sh.kubectl("get", "endpoints", "service-clusterip", "-n", NAMESPACE)).stdout
    demo.expect(ip not in listed and all(o in listed for o in others), f"{ip} left the endpoints")
    got = await demo.loop_until(url, lambda got: ip not in got and set(got) == set(others), "traffic to move", count)
    demo.expect(ip not in got and set(got) == set(others), f"{ip} receives no traffic", str(got))
    await sh.kubectl("exec", pod, "-n", NAMESPACE, "--", "touch", "/tmp/ready")
    ran = await sh.kubectl("wait", "--for=condition=Ready", f"pod/{pod}", "-n", NAMESPACE, "--timeout=60s")
    demo.expect(ran.rc == 0, f"{pod} is Ready again once its probe passes")
    await until(lambda: _equal(demo.endpoint_ips("service-clusterip"), demo.ips), f"{ip} back in the endpoints")
    listed = (await sh.kubectl("get", "endpoints", "service-clusterip", "-n", NAMESPACE)).stdout
    demo.expect(all(f"{i}:80" in listed for i in demo.ips), f"{ip} is back in the endpoints")
    got = await demo.loop_until(url, lambda got: set(got) == set(demo.ips), "traffic to come back", count)
    demo.expect(set(got) == set(demo.ips), f"{ip} receives traffic again", str(got))


async def step_ingress(demo: Demo) -> None:
    sh, address = demo.shell, demo.profile.ingress_address
    await demo.apply(INGRESS_BACKENDS, "the kubia and bar deployments and services")
    for app in ("kubia", "bar"):
        ran = await sh.kubectl("rollout", "status", f"deployment/{app}", "-n", NAMESPACE, "--timeout=60s")
        demo.expect(ran.rc == 0, f"deployment {app} rolled out")
    applied = await sh.apply(SEED_INGRESS)
    demo.expect(applied.rc == 0, "the seed's Ingress (extensions/v1beta1) applied, converted to networking.k8s.io/v1")
    await until(lambda: _ingress_address(sh), "the Ingress to get its ADDRESS")
    listed = (await sh.kubectl("get", "ingress", "kubia", "-n", NAMESPACE)).stdout
    demo.expect(address in listed and "kubia.example.com" in listed, f"kubectl get ingress shows {address}")
    resolve = ("--resolve", f"kubia.example.com:80:{address}")
    for path, app in (("/kubia", "kubia"), ("/foo", "bar")):
        url = f"http://kubia.example.com{path}"
        await until(lambda url=url, app=app: _hits(demo, url, resolve, app, show=False), f"{path} to reach {app}")
        demo.expect(await _hits(demo, url, resolve, app), f"{path} reaches a {app} pod")
    ran = await demo.net(demo.profile.outside, ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}\n",
                                                "--resolve", f"unknown.example.com:80:{address}",
                                                "http://unknown.example.com/kubia"])
    demo.expect(ran.stdout.strip() == "404", "an unknown host gets the default backend's 404", ran.stdout.strip())


async def _ingress_address(sh: Shell) -> str | None:
    ingress = await sh.get_json("ingress", "kubia", "-n", NAMESPACE) or {}
    points = ingress.get("status", {}).get("loadBalancer", {}).get("ingress") or [{}]
    return points[0].get("ip")


async def _hits(demo: Demo, url: str, resolve: tuple[str, ...], app: str, show: bool = True) -> bool:
    ran = await demo.net(demo.profile.outside, ["curl", "-sS", "--max-time", "5", *resolve, url], show=show)
    return ran.rc == 0 and ran.stdout.startswith(f"You've hit {app}-")


async def step_delete(demo: Demo) -> None:
    sh, profile = demo.shell, demo.profile
    ran = await sh.kubectl("delete", "svc", "service-clusterip", "service-headliness", "-n", NAMESPACE)
    demo.expect(ran.rc == 0, "the services are deleted")
    url, (_, reads) = profile.cluster_url, profile.unreachable
    await until(lambda: _unreachable(demo, url), f"{profile.cluster_ip}:80 to stop answering")
    demo.expect(await _unreachable(demo, url, show=True), f"{profile.cluster_ip}:80 {reads}")
    listing = await demo.proxy_listing()
    demo.expect(f" {profile.cluster_ip}:" not in listing, f"the proxy has no rule for {profile.cluster_ip} left")
    if profile.ruleset:
        await until(lambda: _rules_without(demo, profile.cluster_ip), f"the {profile.proxy_mode} rules to drop it")
        rules = (await demo.net(profile.rules_at, profile.ruleset)).stdout
        demo.expect(rules.strip() != "" and profile.cluster_ip not in rules,
                    f"the {profile.proxy_mode} rules of {profile.rules_at.name} no longer mention {profile.cluster_ip}")
    for name in ("service-clusterip.dev.svc.cluster.local", "service-headliness.dev.svc.cluster.local"):
        await until(functools.partial(_nxdomain, demo, name), f"{name} to be gone from DNS")
        demo.expect((await demo.dig(name)).status == "NXDOMAIN", f"{name} is NXDOMAIN")


async def _unreachable(demo: Demo, url: str, show: bool = False) -> bool:
    codes, _ = demo.profile.unreachable  # loopback: 7, curl's "Failed to connect to host"
    return (await demo.curl(url, demo.profile.service_net, show=show)).rc in codes


async def _rules_without(demo: Demo, address: str) -> bool:
    ran = await demo.net(demo.profile.rules_at, demo.profile.ruleset, show=False)
    return ran.rc == 0 and address not in ran.stdout


async def _nxdomain(demo: Demo, name: str) -> bool:
    return (await demo.dig(name, show=False)).status == "NXDOMAIN"


class Outcome(Enum):
    PASS = "PASS"
    FAIL = "FAIL"
    SKIP = "SKIP"


@dataclass(frozen=True, slots=True)
class Step:
    number: int  # as in MISSION.md's walkthrough
    title: str
    body: Callable[[Demo], Awaitable[None]] | None  # None: not built yet, `skip` says why
    needs: tuple[int, ...] = ()
    skip: str = ""


def steps(profile: Profile) -> tuple[Step, ...]:
    """The walkthrough as `profile`'s cluster runs it."""
    nodes = ", ".join(profile.node_addresses)
    return (
        Step(1, "Deployment pc-deployment: 3 Running pods, each answering with its own IP", step_deployment),
        Step(2, f"service-clusterip at {profile.cluster_ip}:80 and its 3 endpoints", step_clusterip, (1,)),
        Step(3, "round robin over the pods, then sessionAffinity ClientIP" if profile.round_robin else
             "a random choice over the pods, then sessionAffinity ClientIP", step_affinity, (1, 2)),
        Step(4, "headless service-headliness in DNS, and a pod's resolv.conf", step_headless, (1,)),
        Step(5, f"NodePort {NODE_PORT} on {nodes}, and one allocated from 30000-32767", step_nodeport, (1,)),
        Step(6, f"LoadBalancer: an EXTERNAL-IP from {profile.lb_pool} forwarding to the pods", step_loadbalancer,
             (1,)),
        Step(7, "ExternalName service-externalname answers with a CNAME", step_externalname, (1,)),
        Step(8, "a failing readiness probe takes a pod out of the endpoints and back", step_readiness, (1, 2)),
        Step(9, f"Ingress kubia.example.com with /kubia and /foo, at {profile.ingress_address}", step_ingress),
        Step(10, "deleting services removes their forwarding and their DNS names", step_delete, (2, 4)),
    )


STEPS = steps(LOOPBACK)


# ---- the runner --------------------------------------------------------------------------------------------------

async def run_steps(demo: Demo, steps: Sequence[Step]) -> dict[int, Outcome]:
    write, outcomes = demo.shell.write, dict[int, Outcome]()
    for step in steps:
        write(f"\n=== step {step.number}: {step.title}")
        failed_needs = [n for n in step.needs if outcomes.get(n) is not Outcome.PASS]
        if step.body is None or failed_needs:
            why = step.skip or f"needs step {', '.join(map(str, failed_needs))}"
            outcomes[step.number] = Outcome.SKIP
            write(f"SKIP step {step.number}: {step.title} ({why})")
            continue
        try:
            await step.body(demo)
        except StepFailed as exc:
            outcomes[step.number] = Outcome.FAIL
            write(f"FAIL step {step.number}: {step.title} ({exc})")
            continue
        outcomes[step.number] = Outcome.PASS
        write(f"PASS step {step.number}: {step.title}")
    return outcomes


async def clean_up(shell: Shell) -> bool:
    shell.write("\n=== cleaning up")
    ran = await shell.run([KUBECTL, "delete", "namespace", NAMESPACE, "--ignore-not-found", "--timeout=120s"],
                          shown=f"kubectl delete namespace {NAMESPACE} --ignore-not-found --timeout=120s",
                          timeout=150)
    gone = await shell.kubectl("get", "namespace", NAMESPACE, show=False)
    ok = ran.rc == 0 and gone.rc != 0 and "NotFound" in gone.stderr
    shell.write(f"{'PASS' if ok else 'FAIL'} cleanup: namespace {NAMESPACE} {'is gone' if ok else 'is still there'}")
    return ok


def _svcnet_argv() -> list[str]:
    script = Path(sys.executable).parent / "svcnet"
    return [str(script)] if script.exists() else [sys.executable, "-m", "svcnet.cli.main"]


async def _preflight(data_dir: Path) -> bool:
    """Whether a healthy `svcnet up` answers in `data_dir` (and kubectl is there); a message on stderr if not."""
    from svcnet.cluster.up import status

    if not Path(KUBECTL).exists():
        print(f"svcnet demo: {KUBECTL} is not installed; the demo runs the real kubectl", file=sys.stderr)
        return False
    try:
        rows = await status(data_dir)
    except Exception as exc:  # noqa: BLE001 — a stale or foreign up.json: no cluster to talk to
        rows, why = [], f"cannot read {data_dir / 'up.json'} ({exc!r})"
    else:
        down = [f"{name} ({where})" for name, healthy, where in rows if not healthy]
        why = f"no running `svcnet up` in {data_dir}" if not rows else "not healthy: " + ", ".join(down)
    if rows and all(healthy for _, healthy, _ in rows):
        return True
    print(f"svcnet demo: {why}; start one with `svcnet up --data-dir {data_dir}`", file=sys.stderr)
    return False


async def select_profile(shell: Shell, data_dir: Path) -> Profile | None:
    """LOOPBACK, or the netns profile with the mode node-1's proxy says (shown); None (said why) if unknown."""
    state = json.loads((data_dir / "up.json").read_text())
    if not state.get("nodes"):
        return LOOPBACK
    ran = await shell.run(["curl", "-sS", "--max-time", "5", f"http://{netns_proxy_metrics(state)}/proxyMode"])
    mode = ran.stdout.strip()
    if ran.rc != 0 or mode not in ("userspace", "iptables", "nftables"):
        print(f"svcnet demo: cannot tell the proxy mode of {data_dir}'s nodes ({mode or ran.stderr.strip()!r})",
              file=sys.stderr)
        return None
    first = next(iter(state["nodes"]))
    shell.write(f"   netns mode, {len(state['nodes'])} nodes, proxy mode {mode}: pod IPs are reached from {first}, "
                f"ClusterIPs and DNS from a pod on {first}, NodePorts from the client namespace")
    return netns_profile(state, mode)


async def run(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir)
    if not await _preflight(data_dir):
        return 2
    kubeconfig = data_dir / "kubeconfig"
    shell = Shell({**os.environ, "KUBECONFIG": str(kubeconfig)}, _svcnet_argv(), lambda line: print(line, flush=True))
    shell.write(f"svcnet demo: the seed walkthrough against the cluster of {data_dir}\n"
                f"$ export KUBECONFIG={shlex.quote(str(kubeconfig))}")
    profile = await select_profile(shell, data_dir)
    if profile is None:
        return 2
    outcomes: dict[int, Outcome] = {}
    try:
        outcomes = await run_steps(Demo(shell, profile, data_dir), steps(profile))
    finally:
        cleaned = await clean_up(shell)
    counts = collections.Counter(outcomes.values())
    shell.write(f"\nsvcnet demo: {counts[Outcome.PASS]} passed, {counts[Outcome.FAIL]} failed, "
                f"{counts[Outcome.SKIP]} skipped")
    return 0 if cleaned and not counts[Outcome.FAIL] else 1


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add `demo` to the `svcnet` command's subparsers."""
    from svcnet.cli.main import default_data_dir

    parser: argparse.ArgumentParser = subparsers.add_parser(
        "demo", help="run the seed walkthrough against a running `svcnet up`, step by step with PASS/FAIL")
    parser.add_argument("--data-dir", type=Path, default=default_data_dir(), help="the `svcnet up` data directory")
    return parser
