"""Container probes (readiness, liveness, startup) as the kubelet runs them.

`ProbeState` is the pure part: consecutive successes and failures against successThreshold / failureThreshold
decide the result, which starts as "failure" for readiness and startup and "success" for liveness. `check` runs
one probe of kind exec, httpGet (2xx/3xx is success; path, port number or name, host, headers, scheme) or
tcpSocket with the probe's timeout and returns (success, message). `ProbeWorker` runs one probe on its period
after initialDelaySeconds and calls back only when the result changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from svcnet import netns as _netns
from svcnet.node import podspec

Obj = dict[str, Any]
Runner = Callable[[list[str], float], Awaitable[tuple[int, bytes]]]


@dataclass
class ProbeState:
    success_threshold: int
    failure_threshold: int
    result: bool
    successes: int = 0
    failures: int = 0

    @classmethod
    def for_probe(cls, probe: Obj, kind: str) -> ProbeState:
        return cls(max(int(probe.get("successThreshold", 1)), 1), max(int(probe.get("failureThreshold", 3)), 1),
                   result=kind == "liveness")

    def observe(self, success: bool) -> bool:
        """Record one probe outcome; return True when the result flipped."""
        if success:
            self.successes, self.failures = self.successes + 1, 0
            flip = not self.result and self.successes >= self.success_threshold
        else:
            self.failures, self.successes = self.failures + 1, 0
            flip = self.result and self.failures >= self.failure_threshold
        if flip:
            self.result = not self.result
        return flip


def timing(probe: Obj) -> tuple[float, float, float]:
    """(initialDelaySeconds, periodSeconds, timeoutSeconds) with the kubelet's defaults and minimums."""
    return (max(float(probe.get("initialDelaySeconds", 0)), 0.0), max(float(probe.get("periodSeconds", 10)), 1.0),
            max(float(probe.get("timeoutSeconds", 1)), 1.0))


async def check(probe: Obj, pod: Obj, container: Obj, pod_ip: str, run: Runner,
                session: aiohttp.ClientSession, netns: str | None = None) -> tuple[bool, str]:
    """One probe attempt; `netns` is the network namespace to probe from (the node's, in the netns runtime)."""
    timeout = timing(probe)[2]
    if "exec" in probe:
        code, output = await run(list(probe["exec"].get("command") or []), timeout)
        text = output.decode(errors="replace").strip()
        return code == 0, text or (f"command exited with {code}" if code else "")
    if "httpGet" in probe:
        return await _http(probe["httpGet"], pod, container, pod_ip, timeout, session, netns)
    if "tcpSocket" in probe:
        return await _tcp(probe["tcpSocket"], pod, container, pod_ip, timeout, netns)
    return False, "probe has no handler (exec, httpGet or tcpSocket)"


def _port(spec: Obj, pod: Obj, container: Obj) -> int | None:
    port = podspec.named_port(pod, spec.get("port", 0), container)
    return port if port and 0 < port < 65536 else None


async def _http(spec: Obj, pod: Obj, container: Obj, pod_ip: str, timeout: float,
                session: aiohttp.ClientSession, netns: str | None) -> tuple[bool, str]:
    port = _port(spec, pod, container)
    if port is None:
        return False, f"invalid port {spec.get('port')!r}"
    scheme = str(spec.get("scheme", "HTTP")).lower()
    host = spec.get("host") or pod_ip
    path = spec.get("path") or "/"
    url = f"{scheme}://{host}:{port}{path if path.startswith('/') else '/' + path}"
    headers = {h["name"]: h.get("value", "") for h in spec.get("httpHeaders") or [] if h.get("name")}
    headers.setdefault("User-Agent", "kube-probe/1.32")
    insecure = ssl.create_default_context()
    insecure.check_hostname, insecure.verify_mode = False, ssl.CERT_NONE
    try:
        if netns is not None:
            code = await asyncio.to_thread(_http_status_in, netns, scheme, host, port, path, headers, timeout,
                                           insecure)
            ok = 200 <= code < 400
            return ok, "" if ok else f"HTTP probe failed with statuscode: {code}"
        async with session.get(url, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout),
                               ssl=insecure if scheme == "https" else None) as response:
            await response.read()
            ok = 200 <= response.status < 400
            return ok, "" if ok else f"HTTP probe failed with statuscode: {response.status}"
    except TimeoutError:
        return False, f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)'
    except (aiohttp.ClientError, OSError) as exc:
        return False, f'Get "{url}": {exc}'


def _http_status_in(netns: str, scheme: str, host: str, port: int, path: str, headers: dict[str, str],
                    timeout: float, context: ssl.SSLContext) -> int:
    """An HTTP GET made from inside `netns` on this (worker) thread; the response's status code."""
    def get() -> int:
        connection = http.client.HTTPSConnection(host, port, timeout=timeout, context=context) \
            if scheme == "https" else http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            connection.request("GET", path if path.startswith("/") else "/" + path, headers=headers)
            response = connection.getresponse()
            response.read()
            return int(response.status)
        finally:
            connection.close()
    return _netns.call_in_netns(netns, get)


async def _tcp(spec: Obj, pod: Obj, container: Obj, pod_ip: str, timeout: float,
               netns: str | None) -> tuple[bool, str]:
    port = _port(spec, pod, container)
    if port is None:
        return False, f"invalid port {spec.get('port')!r}"
    host = spec.get("host") or pod_ip
    if netns is not None:
        try:
            sock = await asyncio.to_thread(_netns.connect_in, netns, host, port, timeout)
        except TimeoutError:
            return False, f"dial tcp {host}:{port}: i/o timeout"
        except OSError as exc:
            return False, f"dial tcp {host}:{port}: connect: {exc.strerror or exc}"
        sock.close()
        return True, ""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except TimeoutError:
        return False, f"dial tcp {host}:{port}: i/o timeout"
    except OSError as exc:
        return False, f"dial tcp {host}:{port}: connect: {exc.strerror or exc}"
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True, ""


class ProbeWorker:
    """Runs one probe of one container until cancelled; `on_change(result, message)` when the result flips,
    `on_failure(message)` after each failed attempt (for the Unhealthy event)."""

    def __init__(self, kind: str, probe: Obj, attempt: Callable[[], Awaitable[tuple[bool, str]]],
                 on_change: Callable[[bool, str], None], on_failure: Callable[[str], None]) -> None:
        self.kind = kind
        self.probe = probe
        self.state = ProbeState.for_probe(probe, kind)
        self.attempt = attempt
        self.on_change = on_change
        self.on_failure = on_failure

    async def run(self) -> None:
        delay, period, _ = timing(self.probe)
        await asyncio.sleep(delay)
        while True:
            success, message = await self.attempt()
            if not success:
                self.on_failure(message)
            if self.state.observe(success):
                self.on_change(self.state.result, message)
            await asyncio.sleep(period)
