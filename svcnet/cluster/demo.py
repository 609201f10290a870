"""`svcnet demo`: the seed walkthrough of MISSION.md, run against a running `svcnet up` (loopback mode) with the
real tools a user types — /usr/bin/kubectl (KUBECONFIG=<data-dir>/kubeconfig), curl, dig and `svcnet proxy show`.

Theory of operation: the walkthrough is data — `STEPS`, one `Step` per MISSION item (number, title, the coroutine
that runs it, the steps it needs) and the manifests below. A step prints every command it runs as `$ command`
followed by the command's real output, then checks what the seed says should be true and prints `ok: ...` per
check; the first failed check ends the step with FAIL (and why). A step whose prerequisite failed is SKIPped,
and so is MISSION step 9 (Ingress), which svcnet does not build yet.

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

__all__ = ["STEPS", "Demo", "DigAnswer", "Outcome", "Step", "parse_dig", "ready_pods", "register", "run"]

T = TypeVar("T")
NAMESPACE = "dev"
KUBECTL = "/usr/bin/kubectl"
CLUSTER_DNS = "127.96.0.10"
CLUSTER_IP = "127.97.97.97"
NODE_PORT = 30002
NODE_PORT_RANGE = range(30000, 32768)
LB_POOL = ipaddress.ip_network("127.240.0.0/24")
DEFAULT_PROXY_METRICS = "127.0.0.1:10249"
SEARCH = "dev.svc.cluster.local svc.cluster.local cluster.local"
DEADLINE = 90.0  # seconds any one condition may take
LOOP = 6  # requests per curl loop: each of the 3 pods twice under round robin

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


def _service(name: str, spec: str) -> str:
    return f"apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: dev\nspec:\n{spec}"


_SELECT = "  selector:\n    app: nginx-pod\n"
_PORTS = "  ports:\n  - port: 80\n    targetPort: 80\n"
SERVICE_CLUSTERIP = _service("service-clusterip", f"{_SELECT}  clusterIP: {CLUSTER_IP}\n  type: ClusterIP\n{_PORTS}")
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

    async def curl(self, url: str, *, show: bool = True) -> Ran:
        return await self.run(["curl", "-sS", "--max-time", "5", url], show=show, timeout=10)

    async def curl_loop(self, url: str, *, show: bool = True) -> list[str]:
        script = curl_loop(url)
        return answers((await self.run(["sh", "-c", script], shown=script, show=show)).stdout)

    async def dig(self, name: str, *, show: bool = True) -> DigAnswer:
        argv = ["dig", f"@{CLUSTER_DNS}", name] + ([] if show else ["+time=1", "+tries=1"])
        return parse_dig((await self.run(argv, show=show, timeout=20)).stdout)

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
    proxy_metrics: str = DEFAULT_PROXY_METRICS
    pods: dict[str, str] = field(default_factory=dict)  # name -> IP of the 3 pods, from step 1

    def expect(self, ok: bool, what: str, why: str = "") -> None:
        if not ok:
            raise StepFailed(what + (f": {why}" if why else ""))
        self.shell.write(f"   ok: {what}")

    @property
    def ips(self) -> list[str]:
        return sorted(self.pods.values())

    async def apply(self, manifest: str, what: str) -> None:
        ran = await self.shell.apply(manifest)
        self.expect(ran.rc == 0, f"{what} applied", ran.stderr.strip().splitlines()[-1] if ran.stderr.strip() else "")

    async def ready_pods(self) -> dict[str, str]:
        listed = await self.shell.get_json("pods", "-n", NAMESPACE, "-l", "app=nginx-pod")
        return ready_pods(listed) if listed else {}

    async def endpoint_ips(self, service: str) -> list[str]:
        endpoints = await self.shell.get_json("endpoints", service, "-n", NAMESPACE) or {}
        return sorted(a["ip"] for s in endpoints.get("subsets") or [] for a in s.get("addresses") or [])

    async def virtual_server(self, ip: str, port: int) -> dict[str, Any] | None:
        ran = await self.shell.run([*self.shell.svcnet_argv, "proxy", "show", "--metrics-bind-address",
                                    self.proxy_metrics, "-o", "json"], show=False)
        listed = json.loads(ran.stdout) if ran.rc == 0 else []
        return next((s for s in listed if s["ip"] == ip and s["port"] == port and s["protocol"] == "TCP"), None)

    async def loop_until(self, url: str, good: Callable[[list[str]], bool], what: str) -> list[str]:
        """Quiet curl loops until one satisfies `good` (the proxy has caught up), then the loop shown once."""
        await until(lambda: self._quiet_loop(url, good), what)
        return await self.shell.curl_loop(url)

    async def _quiet_loop(self, url: str, good: Callable[[list[str]], bool]) -> bool:
        return good(await self.shell.curl_loop(url, show=False))


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
    for ip in demo.ips:
        body = (await sh.curl(f"http://{ip}:80/")).stdout.strip()
        demo.expect(body == ip, f"the pod at {ip} answers HTTP with its own IP", repr(body))


async def _three(pods: Awaitable[dict[str, str]]) -> dict[str, str] | None:
    found = await pods
    return found if len(found) == 3 else None


async def step_clusterip(demo: Demo) -> None:
    sh = demo.shell
    await demo.apply(SERVICE_CLUSTERIP, "service-clusterip")
    table = (await sh.kubectl("get", "svc", "service-clusterip", "-n", NAMESPACE, "-o", "wide")).stdout
    demo.expect(f" {CLUSTER_IP} " in table, f"CLUSTER-IP is {CLUSTER_IP}")
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
    sh, url = demo.shell, f"http://{CLUSTER_IP}:80/"
    await until(lambda: _backends(demo, 3), "the proxy to forward to 3 pods")
    got = await sh.curl_loop(url)
    demo.expect(collections.Counter(got) == {ip: 2 for ip in demo.ips}, "round robin: each pod answered twice",
                str(got))
    patch = await sh.kubectl("patch", "svc", "service-clusterip", "-n", NAMESPACE, "-p",
                             '{"spec":{"sessionAffinity":"ClientIP"}}')
    demo.expect(patch.rc == 0, "sessionAffinity: ClientIP set")
    await until(lambda: _persistent(demo, 10800), "the proxy to apply the affinity")
    got = await sh.curl_loop(url)
    demo.expect(len(got) == LOOP and len(set(got)) == 1 and got[0] in demo.ips, "ClientIP: 6 of 6 to one pod",
                str(got))
    listing = (await sh.svcnet("proxy", "show", "--metrics-bind-address", demo.proxy_metrics)).stdout
    demo.expect(f"TCP  {CLUSTER_IP}:80 rr persistent 10800" in listing.splitlines(),
                "the listing shows rr and persistent 10800")
    patch = await sh.kubectl("patch", "svc", "service-clusterip", "-n", NAMESPACE, "-p",
                             '{"spec":{"sessionAffinity":"None"}}')
    demo.expect(patch.rc == 0, "sessionAffinity back to None for the next steps")
    await until(lambda: _persistent(demo, None), "the proxy to drop the affinity")


async def _backends(demo: Demo, count: int) -> bool:
    server = await demo.virtual_server(CLUSTER_IP, 80)
    return server is not None and sum(1 for b in server["backends"] if b.get("ready", True)) == count


async def _persistent(demo: Demo, seconds: int | None) -> bool:
    server = await demo.virtual_server(CLUSTER_IP, 80)
    return server is not None and server.get("persistent") == seconds


async def step_headless(demo: Demo) -> None:
    sh, name = demo.shell, "service-headliness.dev.svc.cluster.local"
    await demo.apply(SERVICE_HEADLESS, "service-headliness")
    table = (await sh.kubectl("get", "svc", "service-headliness", "-n", NAMESPACE)).stdout
    demo.expect(" None " in table, "CLUSTER-IP is None")
    await until(lambda: _equal(_a_records(sh, name), demo.ips), "DNS to answer with the 3 pod IPs")
    answer = await sh.dig(name)
    demo.expect(answer.values("A") == demo.ips, "dig returns the 3 pod IPs as A records", str(answer.values("A")))
    pod = min(demo.pods)
    resolv = (await sh.kubectl("exec", pod, "-n", NAMESPACE, "--", "cat", "/etc/resolv.conf")).stdout
    lines = [line.split() for line in resolv.splitlines()]
    demo.expect(["nameserver", CLUSTER_DNS] in lines, f"the pod's nameserver is {CLUSTER_DNS}")
    demo.expect(["search", *SEARCH.split()] in lines, f"the pod's search domains are {SEARCH}")


async def _a_records(sh: Shell, name: str) -> list[str]:
    return (await sh.dig(name, show=False)).values("A")


async def step_nodeport(demo: Demo) -> None:
    sh = demo.shell
    await demo.apply(SERVICES_NODEPORT, "service-nodeport and service-nodeport-auto")
    await sh.kubectl("get", "svc", "service-nodeport", "service-nodeport-auto", "-n", NAMESPACE)
    await _answers(demo, f"http://127.0.0.1:{NODE_PORT}/", f"NodePort {NODE_PORT} on 127.0.0.1")
    auto = await sh.get_json("svc", "service-nodeport-auto", "-n", NAMESPACE)
    port = int((auto or {}).get("spec", {}).get("ports", [{}])[0].get("nodePort") or 0)
    demo.expect(port in NODE_PORT_RANGE, f"service-nodeport-auto got nodePort {port} from 30000-32767")
    await _answers(demo, f"http://127.0.0.1:{port}/", f"NodePort {port} on 127.0.0.1")


async def _answers(demo: Demo, url: str, what: str) -> None:
    """`url` answers (waited for quietly), then one request shown; a pod must have answered."""
    await until(lambda: _curl_ok(demo.shell, url), f"{what} to answer")
    body = (await demo.shell.curl(url)).stdout.strip()
    demo.expect(body in demo.ips, f"{what} forwards to a pod", repr(body))


async def _curl_ok(sh: Shell, url: str) -> bool:
    return (await sh.curl(url, show=False)).rc == 0


async def step_loadbalancer(demo: Demo) -> None:
    sh = demo.shell
    await demo.apply(SERVICE_LOADBALANCER, "service-loadbalancer")
    address = await until(lambda: _lb_address(sh), "an EXTERNAL-IP")
    table = (await sh.kubectl("get", "svc", "service-loadbalancer", "-n", NAMESPACE)).stdout
    demo.expect(address in table and ipaddress.ip_address(address) in LB_POOL,
                f"EXTERNAL-IP {address} from the pool {LB_POOL}")
    await _answers(demo, f"http://{address}:80/", f"the external address {address}")


async def _lb_address(sh: Shell) -> str | None:
    svc = await sh.get_json("svc", "service-loadbalancer", "-n", NAMESPACE) or {}
    ingress = svc.get("status", {}).get("loadBalancer", {}).get("ingress") or [{}]
    return ingress[0].get("ip")


async def step_externalname(demo: Demo) -> None:
    sh, name = demo.shell, "service-externalname.dev.svc.cluster.local"
    await demo.apply(SERVICE_EXTERNALNAME, "service-externalname")
    await sh.kubectl("get", "svc", "service-externalname", "-n", NAMESPACE)
    await until(lambda: _cname(sh, name), "DNS to answer with a CNAME")
    answer = await sh.dig(name)
    demo.expect(answer.values("CNAME") == ["www.baidu.com."], "dig answers CNAME www.baidu.com.",
                str(answer.records))


async def _cname(sh: Shell, name: str) -> list[str]:
    return (await sh.dig(name, show=False)).values("CNAME")


async def step_readiness(demo: Demo) -> None:
    sh, url = demo.shell, f"http://{CLUSTER_IP}:80/"
    pod = min(demo.pods)
    ip, others = demo.pods[pod], sorted(set(demo.ips) - {demo.pods[pod]})
    await sh.kubectl("exec", pod, "-n", NAMESPACE, "--", "rm", "/tmp/ready")
    ran = await sh.kubectl("wait", "--for=condition=Ready=false", f"pod/{pod}", "-n", NAMESPACE, "--timeout=60s")
    demo.expect(ran.rc == 0, f"{pod} is not Ready once its probe fails")
    await sh.kubectl("get", "pods", "-n", NAMESPACE, "-o", "wide")
    await until(lambda: _equal(demo.endpoint_ips("service-clusterip"), others), f"{ip} to leave the endpoints")
    listed = (await sh.kubectl("get", "endpoints", "service-clusterip", "-n", NAMESPACE)).stdout
    demo.expect(ip not in listed and all(o in listed for o in others), f"{ip} left the endpoints")
    got = await demo.loop_until(url, lambda got: ip not in got and set(got) == set(others), "traffic to move")
    demo.expect(ip not in got and set(got) == set(others), f"{ip} receives no traffic", str(got))
    await sh.kubectl("exec", pod, "-n", NAMESPACE, "--", "touch", "/tmp/ready")
    ran = await sh.kubectl("wait", "--for=condition=Ready", f"pod/{pod}", "-n", NAMESPACE, "--timeout=60s")
    demo.expect(ran.rc == 0, f"{pod} is Ready again once its probe passes")
    await until(lambda: _equal(demo.endpoint_ips("service-clusterip"), demo.ips), f"{ip} back in the endpoints")
    listed = (await sh.kubectl("get", "endpoints", "service-clusterip", "-n", NAMESPACE)).stdout
    demo.expect(all(f"{i}:80" in listed for i in demo.ips), f"{ip} is back in the endpoints")
    got = await demo.loop_until(url, lambda got: set(got) == set(demo.ips), "traffic to come back")
    demo.expect(set(got) == set(demo.ips), f"{ip} receives traffic again", str(got))


async def step_delete(demo: Demo) -> None:
    sh = demo.shell
    ran = await sh.kubectl("delete", "svc", "service-clusterip", "service-headliness", "-n", NAMESPACE)
    demo.expect(ran.rc == 0, "the services are deleted")
    url = f"http://{CLUSTER_IP}:80/"
    await until(lambda: _refused(sh, url), f"{CLUSTER_IP}:80 to refuse connections")
    demo.expect(await _refused(sh, url, show=True), f"{CLUSTER_IP}:80 refuses connections")
    listing = (await sh.svcnet("proxy", "show", "--metrics-bind-address", demo.proxy_metrics)).stdout
    demo.expect(f" {CLUSTER_IP}:" not in listing, f"the proxy has no rule for {CLUSTER_IP} left")
    for name in ("service-clusterip.dev.svc.cluster.local", "service-headliness.dev.svc.cluster.local"):
        await until(functools.partial(_nxdomain, sh, name), f"{name} to be gone from DNS")
        demo.expect((await sh.dig(name)).status == "NXDOMAIN", f"{name} is NXDOMAIN")


async def _refused(sh: Shell, url: str, show: bool = False) -> bool:
    return (await sh.curl(url, show=show)).rc == 7  # curl: "Failed to connect to host"


async def _nxdomain(sh: Shell, name: str) -> bool:
    return (await sh.dig(name, show=False)).status == "NXDOMAIN"


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


STEPS: tuple[Step, ...] = (
    Step(1, "Deployment pc-deployment: 3 Running pods, each answering with its own IP", step_deployment),
    Step(2, f"service-clusterip at {CLUSTER_IP}:80 and its 3 endpoints", step_clusterip, (1,)),
    Step(3, "round robin over the pods, then sessionAffinity ClientIP", step_affinity, (1, 2)),
    Step(4, "headless service-headliness in DNS, and a pod's resolv.conf", step_headless, (1,)),
    Step(5, f"NodePort {NODE_PORT} on 127.0.0.1, and one allocated from 30000-32767", step_nodeport, (1,)),
    Step(6, f"LoadBalancer: an EXTERNAL-IP from {LB_POOL} forwarding to the pods", step_loadbalancer, (1,)),
    Step(7, "ExternalName service-externalname answers with a CNAME", step_externalname, (1,)),
    Step(8, "a failing readiness probe takes a pod out of the endpoints and back", step_readiness, (1, 2)),
    Step(9, "Ingress kubia.example.com with /kubia and /foo", None,
         skip="the ingress controller is not built yet"),
    Step(10, "deleting services removes their forwarding and their DNS names", step_delete, (2, 4)),
)


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


async def run(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir)
    if not await _preflight(data_dir):
        return 2
    kubeconfig = data_dir / "kubeconfig"
    shell = Shell({**os.environ, "KUBECONFIG": str(kubeconfig)}, _svcnet_argv(), lambda line: print(line, flush=True))
    shell.write(f"svcnet demo: the seed walkthrough against the cluster of {data_dir}\n"
                f"$ export KUBECONFIG={shlex.quote(str(kubeconfig))}")
    outcomes: dict[int, Outcome] = {}
    try:
        outcomes = await run_steps(Demo(shell), STEPS)
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
