"""The I/O shell of `svcnet doctor svc/NAME`: read the API, probe the network, fill `doctor.Facts`, print.

What is gathered: the Service; the namespace's pods (those its selector matches are kept apart) with the
Unhealthy events about them; the Endpoints and the EndpointSlices labelled with the service's name; one TCP
connection per matched pod to its resolved target port (short timeout), and when refused, to the pod's other
declared ports (to tell a wrong targetPort from a dead application); one TCP connection per TCP service port to the
ClusterIP; one DNS question for NAME.NS.svc.<domain> (dnslib, UDP) to the cluster DNS — the kube-dns Service's
ClusterIP in kube-system, or `--dns HOST[:PORT]`.

"Bound to localhost only": when a pod IP refuses the connection, doctor tries 127.0.0.1:<port> and asks
`ss -ltnp` which process listens there; the process is the pod's when its environment carries the pod's
POD_NAME and POD_NAMESPACE (the node agent sets them for every container). Limits: this only works where the pod
shares this machine's network namespace — svcnet's loopback mode, where pods are processes here with 127.x pod
IPs. On a real cluster (or `svcnet up --netns`) the pod's 127.0.0.1 lives in its own network namespace, out of
reach from here: doctor then says "unknown" and suggests `kubectl exec POD -- ss -ltn`; the TCP probes of pod
IPs and ClusterIPs also only mean something when doctor runs on a node (or in a pod) of the cluster.

Invariants: every network operation has a timeout; nothing is written to the API; a fact not gathered stays
`None`; the exit code of `run` is 0 exactly when no check FAILs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import dnslib

from svcnet.api import errors, resources
from svcnet.client import Client, ConfigError, load_kubeconfig
from svcnet.cluster import doctor

SERVICES = resources.require("", "v1", "services")
PODS = resources.require("", "v1", "pods")
ENDPOINTS = resources.require("", "v1", "endpoints")
EVENTS = resources.require("", "v1", "events")
SLICES = resources.require("discovery.k8s.io", "v1", "endpointslices")
CONNECT_TIMEOUT = 1.0
DNS_TIMEOUT = 2.0
CLOSE_WINDOW = 0.3  # a ClusterIP connection closed this fast forwarded nowhere (a userspace proxy may hold it longer)


# ---- network probes ---------------------------------------------------------------------------------------------

async def tcp_connect(host: str, port: int, timeout: float = CONNECT_TIMEOUT, hold: float = 0.0
                      ) -> tuple[bool, str]:
    """(accepted, error): one TCP connection. With `hold`, a connection the far end closes within `hold` seconds
    without a byte counts as failed: that is how a proxy says it found no backend to forward to."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except ConnectionRefusedError:
        return False, "connection refused"
    except TimeoutError:
        return False, f"no answer within {timeout:g} s"
    except OSError as exc:
        return False, exc.strerror or str(exc)
    closed = False
    if hold:
        with contextlib.suppress(TimeoutError, OSError):
            closed = await asyncio.wait_for(reader.read(1), hold) == b""
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    if closed:
        return False, "accepted, then closed at once without a byte (nothing answered behind it)"
    return True, ""


_SS_PID = re.compile(r"pid=(\d+)")


def localhost_listeners(port: int) -> list[int]:
    """Pids of processes listening on 127.0.0.1:<port> (`ss -ltnp`); [] when ss is missing."""
    ss = shutil.which("ss")
    if ss is None:
        return []
    try:
        out = subprocess.run([ss, "-ltnpH", f"sport = :{port}"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    pids = []
    for line in out.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[3] == f"127.0.0.1:{port}":
            pids += [int(p) for p in _SS_PID.findall(line)]
    return pids


def process_pod(pid: int) -> tuple[str, str]:
    """(namespace, name) of the pod a process belongs to, from its environment; ("", "") when unknown."""
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return "", ""
    env = dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)
    return env.get("POD_NAMESPACE", ""), env.get("POD_NAME", "")


async def localhost_only(namespace: str, pod: doctor.PodFacts, port: int) -> tuple[bool | None, str]:
    """Whether a process of `pod` listens on 127.0.0.1:<port> only (the pod IP already refused)."""
    if not ipaddress.ip_address(pod.ip).is_loopback:
        return None, (f"cannot look inside the pod's network namespace from here: run `kubectl exec {pod.name} "
                      f"-n {namespace} -- ss -ltn`")
    accepts, _ = await tcp_connect("127.0.0.1", port)
    if not accepts:
        return False, f"nothing listens on 127.0.0.1:{port} either"
    pids = await asyncio.to_thread(localhost_listeners, port)
    owners = {pid: process_pod(pid) for pid in pids}
    if any(owner == (namespace, pod.name) for owner in owners.values()):
        return True, f"pid {', '.join(map(str, pids))} of the pod listens on 127.0.0.1:{port}"
    if pids:
        return False, f"127.0.0.1:{port} is held by another process (pid {', '.join(map(str, pids))})"
    return None, f"127.0.0.1:{port} accepts, but `ss -ltnp` could not say which process listens"


async def probe_pod(namespace: str, pod: doctor.PodFacts, port: doctor.ServicePort) -> doctor.PodProbe | None:
    target = doctor.resolve_target_port(port, pod)
    if target is None or not pod.ip or port.protocol != "TCP":
        return None
    accepts, error = await tcp_connect(pod.ip, target)
    if accepts:
        return doctor.PodProbe(pod.name, pod.ip, target, True)
    others = sorted({p.port for p in pod.ports if p.protocol == "TCP" and p.port != target})
    results = await asyncio.gather(*(tcp_connect(pod.ip, other) for other in others))
    open_declared = tuple(other for other, (ok, _) in zip(others, results, strict=True) if ok)
    only, note = await localhost_only(namespace, pod, target)
    return doctor.PodProbe(pod.name, pod.ip, target, False, error, open_declared, only, note)


async def probe_cluster_ip(svc: doctor.ServiceFacts) -> list[doctor.AddressProbe]:
    if svc.headless or svc.type == "ExternalName":
        return []
    ports = [p for p in svc.ports if p.protocol == "TCP"]
    results = await asyncio.gather(*(tcp_connect(svc.cluster_ip, p.port, hold=CLOSE_WINDOW) for p in ports))
    return [doctor.AddressProbe(svc.cluster_ip, p.port, ok, error) for p, (ok, error) in zip(ports, results,
                                                                                            strict=True)]


def resolve(name: str, server: tuple[str, int], timeout: float = DNS_TIMEOUT) -> doctor.DNSFacts:
    where = f"{server[0]}:{server[1]}"
    try:
        raw = dnslib.DNSRecord.question(name, "A").send(server[0], server[1], timeout=timeout)
        reply = dnslib.DNSRecord.parse(raw)
    except (OSError, dnslib.DNSError) as exc:
        return doctor.DNSFacts(name, where, error=f"no answer ({exc or type(exc).__name__})")
    answers = tuple(str(rr.rdata) for rr in reply.rr if rr.rtype in (dnslib.QTYPE.A, dnslib.QTYPE.CNAME))
    return doctor.DNSFacts(name, where, answers, dnslib.RCODE.get(reply.header.rcode))


# ---- reading the API --------------------------------------------------------------------------------------------

async def _get(client: Client, info: resources.ResourceInfo, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        return await client.get(info, namespace, name)
    except errors.APIError as exc:
        if exc.code == 404:
            return None
        raise


async def dns_server(client: Client, override: tuple[str, int] | None) -> tuple[str, int] | None:
    if override is not None:
        return override
    svc = await _get(client, SERVICES, "kube-system", "kube-dns")
    ip = ((svc or {}).get("spec") or {}).get("clusterIP")
    return (ip, 53) if ip and ip != "None" else None


async def gather(client: Client, namespace: str, name: str, dns: tuple[str, int] | None = None,
                 domain: str = "cluster.local") -> doctor.Facts:
    raw = await _get(client, SERVICES, namespace, name)
    if raw is None:
        return doctor.Facts(namespace, name, None)
    svc = doctor.parse_service(raw)
    pods_raw = (await client.list(PODS, namespace)).get("items") or []
    events = (await client.list(EVENTS, namespace)).get("items") or []
    every = tuple(doctor.parse_pod(p, events) for p in pods_raw)
    matched = tuple(p for p in every if doctor.selector_matches(svc.selector, p.labels)
                    and p.phase not in ("Succeeded", "Failed"))
    endpoints = await _get(client, ENDPOINTS, namespace, name)
    slices = (await client.list(SLICES, namespace, label_selector=f"kubernetes.io/service-name={name}")
              ).get("items") or []
    probes = await asyncio.gather(*(probe_pod(namespace, pod, port) for pod in matched for port in svc.ports))
    server = await dns_server(client, dns)
    dns_facts = None if server is None else await asyncio.to_thread(resolve, f"{name}.{namespace}.svc.{domain}",
                                                                    server)
    return doctor.Facts(namespace, name, svc, matched, every, doctor.parse_endpoints(endpoints, slices),
                        tuple(p for p in probes if p is not None), tuple(await probe_cluster_ip(svc)), dns_facts)


# ---- the command ------------------------------------------------------------------------------------------------

def _service_ref(text: str) -> str:
    kind, _, name = text.rpartition("/")
    if kind not in ("", "svc", "service", "services") or not name:
        raise argparse.ArgumentTypeError(f"expected svc/NAME, got {text!r}")
    return name


def _dns_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep:
        return text, 53
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST[:PORT], got {text!r}")
    return host.strip("[]"), int(port)


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add `doctor` to an argparse subparsers object."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "doctor", help="troubleshoot a Service: the checklist of seed 004, with one verdict line")
    parser.add_argument("service", type=_service_ref, metavar="svc/NAME")
    parser.add_argument("-n", "--namespace", default="default")
    parser.add_argument("--kubeconfig", default=None, help="default: $KUBECONFIG, then ~/.kube/config")
    parser.add_argument("--dns", type=_dns_address, default=None,
                        help="cluster DNS HOST[:PORT] (default: the kube-dns Service in kube-system)")
    parser.add_argument("--domain", default="cluster.local")
    return parser


def render(results: list[doctor.Check]) -> list[str]:
    width = max(len(c.name) for c in results)
    return [f"{c.status.value}  {c.name:<{width}}  {c.detail}" for c in results]


async def run(args: argparse.Namespace) -> int:
    """Print each check and the verdict; 0 when nothing FAILs, 1 when something does, 2 when doctor cannot run."""
    try:
        client = Client(load_kubeconfig(args.kubeconfig), field_manager="svcnet-doctor")
    except ConfigError as exc:
        print(f"svcnet doctor: {exc}", file=sys.stderr)
        return 2
    try:
        facts = await gather(client, args.namespace, args.service, args.dns, args.domain)
    except (errors.APIError, aiohttp.ClientError, OSError) as exc:
        print(f"svcnet doctor: cannot read the cluster: {exc}", file=sys.stderr)
        return 2
    finally:
        await client.close()
    results = doctor.checks(facts)
    for line in render(results):
        print(line)
    print(doctor.verdict(results, facts), flush=True)
    return 1 if any(c.status is doctor.Status.FAIL for c in results) else 0
