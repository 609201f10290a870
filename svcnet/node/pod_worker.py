"""One pod on this node, from sandbox to deletion (the kubelet's pod worker).

Level-triggered: every change of the pod object, container exit, probe result or backoff expiry wakes `run`,
which compares what the spec wants with what runs and acts: sandbox first (address, resolv.conf, hosts), init
containers one by one, then every container, restarted per restartPolicy with exponential backoff
(CrashLoopBackOff); probes decide readiness and liveness. The status is recomputed after each pass and written
only when it changed. Deletion: preStop hooks, SIGTERM, the grace period, SIGKILL, then the pod is removed from
the API (grace 0, uid precondition) and its address and directory are released.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from svcnet.api import errors
from svcnet.node import crilog, hostports, images, podspec, podstatus, probes
from svcnet.node.runtime.process import ContainerProcess, Sandbox

if TYPE_CHECKING:
    from svcnet.node.agent import NodeAgent

log = logging.getLogger(__name__)
Obj = dict[str, Any]
MAX_BACKOFF = 300.0
CONFIG_RETRY = 2.0


def _default_page(html: Path) -> bool:
    """Whether index.html is absent or still the page the agent wrote (just an address), not the user's."""
    try:
        text = html.read_text().strip()
    except OSError:
        return True
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return not text
    return True


def _now() -> str:
    return crilog.timestamp()[:19] + "Z"


@dataclass
class Container:
    spec: Obj
    view: podstatus.ContainerView
    init: bool = False
    process: ContainerProcess | None = None
    next_backoff: float = 0.0
    not_before: float = 0.0  # monotonic time before which no restart happens
    probe_tasks: list[asyncio.Task[None]] = field(default_factory=list)
    readiness: bool = False
    startup_done: bool = False

    @property
    def name(self) -> str:
        return str(self.spec["name"])


class PodWorker:
    def __init__(self, agent: NodeAgent, pod: Obj) -> None:
        self.agent = agent
        self.pod = pod
        self.uid = pod["metadata"]["uid"]
        self.wake = asyncio.Event()
        self.gone = False
        self.finished = False
        self.sandbox: Sandbox | None = None
        self.sandbox_error = ""
        self.start_time = ""
        self.last_status: Obj | None = None
        previous = {s["name"]: s for s in (pod.get("status") or {}).get("containerStatuses") or []}
        spec = pod.get("spec", {})
        self.init = [self._container(c, previous, init=True) for c in spec.get("initContainers") or []]
        self.containers = [self._container(c, previous) for c in spec.get("containers") or []]
        self.task: asyncio.Task[None] | None = None

    @staticmethod
    def _container(spec: Obj, previous: dict[str, Obj], init: bool = False) -> Container:
        before = previous.get(spec["name"], {})
        restarts = int(before.get("restartCount", 0)) + (1 if before.get("state", {}).get("running") else 0)
        view = podstatus.ContainerView(spec["name"], str(spec.get("image", "")), restart_count=restarts)
        return Container(spec, view, init)

    # ---- the loop ----------------------------------------------------------------------------------------------

    def update(self, pod: Obj) -> None:
        self.pod = pod
        self.wake.set()

    def deleted(self) -> None:
        self.gone = True
        self.wake.set()

    @property
    def key(self) -> str:
        return f"{self.pod['metadata'].get('namespace')}/{self.pod['metadata']['name']}"

    async def run(self) -> None:
        try:
            while not self.finished:
                self.wake.clear()
                try:
                    await self._sync()
                except (errors.APIError, OSError) as exc:
                    log.warning("pod %s: %s", self.key, exc)
                    self._wake_in(1.0)
                if not self.finished:
                    await self.wake.wait()
        finally:
            await self._stop_everything(0)

    def _wake_in(self, seconds: float) -> None:
        asyncio.get_running_loop().call_later(max(seconds, 0.0), self.wake.set)

    async def _sync(self) -> None:
        if self.gone or self.pod["metadata"].get("deletionTimestamp"):
            await self._terminate()
            return
        if self.sandbox is None and not await self._start_sandbox():
            await self._publish()
            return
        initialized = await self._run_init_containers()
        if initialized:
            for container in self.containers:
                await self._ensure_running(container)
        await self._publish()

    # ---- sandbox -----------------------------------------------------------------------------------------------

    async def _start_sandbox(self) -> bool:
        ip = self.agent.allocate_ip(self.pod)
        if ip is None:
            self.sandbox_error = "waiting for the node's podCIDR"
            self._wake_in(1.0)
            return False
        files = {"resolv.conf": self.agent.resolv_conf(self.pod),
                 "hosts": podspec.hosts_file(self.pod, ip, self.agent.config.cluster_domain)}
        try:
            self.sandbox = await self.agent.runtime.start_sandbox(self.agent.pod_dir(self.uid), ip, files)
        except (OSError, TimeoutError) as exc:
            self.agent.release_ip(ip)
            self.sandbox_error = str(exc)
            await self.agent.event(self.pod, "Warning", "FailedCreatePodSandBox", f"Failed to create pod sandbox: {exc}")
            self._wake_in(5.0)
            return False
        try:
            await self.agent.hostports.add(self.uid, ip, hostports.mappings(self.pod, self.agent.config.node_ip))
        except OSError as exc:
            await self.agent.event(self.pod, "Warning", "FailedHostPort", str(exc))
        html = self.sandbox.pod_dir / "html" / "index.html"
        if _default_page(html):  # the built-in page names the pod's IP, which a restart may have changed
            html.write_text(f"{ip}\n")
        self.start_time = self.start_time or _now()
        return True

    # ---- containers --------------------------------------------------------------------------------------------

    async def _run_init_containers(self) -> bool:
        for container in self.init:
            if container.view.state == "terminated" and container.view.exit_code == 0:
                continue
            await self._ensure_running(container)
            return False
        return True

    def _restart_policy(self) -> str:
        return str(self.pod.get("spec", {}).get("restartPolicy", "Always"))

    def _should_restart(self, container: Container) -> bool:
        policy = "OnFailure" if container.init and self._restart_policy() == "Always" else self._restart_policy()
        return policy == "Always" or (policy == "OnFailure" and container.view.exit_code != 0)

    async def _ensure_running(self, container: Container) -> None:
        if container.process is not None and container.process.running:
            return
        if container.process is not None:
            self._record_exit(container)
            if not self._should_restart(container):
                return
            container.view.last_terminated = container.view.terminated_state()
            container.view.restart_count += 1
            container.process = None
        wait = container.not_before - time.monotonic()
        if wait > 0:
            container.view.state, container.view.reason = "waiting", "CrashLoopBackOff"
            container.view.message = (f"back-off {int(container.next_backoff)}s restarting failed container="
                                      f"{container.name} pod={self.pod['metadata']['name']}_"
                                      f"{self.pod['metadata'].get('namespace')}({self.uid})")
            self._wake_in(wait)
            return
        await self._start(container)

    def _record_exit(self, container: Container) -> None:
        process = container.process
        assert process is not None
        if container.view.state == "terminated" and container.view.finished_at == process.finished_at:
            return
        for task in container.probe_tasks:
            task.cancel()
        container.probe_tasks.clear()
        view = container.view
        view.state, view.exit_code, view.finished_at = "terminated", process.exit_code or 0, process.finished_at
        view.reason = "Completed" if view.exit_code == 0 else "Error"
        view.message, view.ready = "", False
        ran = time.monotonic() - container.not_before
        if ran > 2 * MAX_BACKOFF:
            container.next_backoff = 0.0
        delay = container.next_backoff
        container.not_before = time.monotonic() + delay
        container.next_backoff = min(max(delay * 2, self.agent.config.restart_backoff), MAX_BACKOFF)
        deleting = self.gone or bool(self.pod["metadata"].get("deletionTimestamp"))
        if self._should_restart(container) and delay > 0 and not deleting:
            asyncio.create_task(self.agent.event(self.pod, "Warning", "BackOff",
                                                 f"Back-off restarting failed container {container.name} in pod "
                                                 f"{self.pod['metadata']['name']}_"
                                                 f"{self.pod['metadata'].get('namespace')}({self.uid})"))

    async def _start(self, container: Container) -> None:
        assert self.sandbox is not None
        view = container.view
        argv = self.agent.catalog.argv(container.spec)
        if argv is None:
            view.state, view.reason = "waiting", "ErrImagePull"
            view.message = images.unmapped_message(view.image)
            await self.agent.event(self.pod, "Warning", "Failed", view.message)
            return
        try:
            env = await self.agent.container_env(self.pod, container.spec, self.sandbox.ip)
        except podspec.SpecError as exc:
            view.state, view.reason, view.message = "waiting", exc.reason, str(exc)
            await self.agent.event(self.pod, "Warning", "Failed", f"Error: {exc}")
            self._wake_in(CONFIG_RETRY)
            return
        argv = [podspec.expand(a, env) for a in argv]
        await self.agent.event(self.pod, "Normal", "Pulled",
                               f'Container image "{view.image}" already present on machine')
        try:
            process = await self.agent.runtime.start_container(
                self.sandbox, container.name, argv, env, view.restart_count, bool(container.spec.get("stdin")),
                container.spec.get("workingDir"))
        except OSError as exc:
            view.state, view.reason, view.message = "waiting", "RunContainerError", str(exc)
            await self.agent.event(self.pod, "Warning", "Failed", f"Error: {exc}")
            container.not_before = time.monotonic() + max(container.next_backoff, self.agent.config.restart_backoff)
            self._wake_in(container.not_before - time.monotonic())
            return
        container.process = process
        view.state, view.reason, view.message = "running", "", ""
        view.started_at, view.container_id = process.started_at, f"svcnet://{self.uid}/{container.name}/{process.proc.pid}"
        container.readiness = "readinessProbe" not in container.spec
        container.startup_done = "startupProbe" not in container.spec
        self._update_ready(container)
        await self.agent.event(self.pod, "Normal", "Created", f"Created container: {container.name}")
        await self.agent.event(self.pod, "Normal", "Started", f"Started container {container.name}")
        asyncio.create_task(self._wake_on_exit(process))
        if not container.init:
            self._start_probes(container)

    async def _wake_on_exit(self, process: ContainerProcess) -> None:
        await process.done.wait()
        self.wake.set()

    def _update_ready(self, container: Container) -> None:
        running = container.process is not None and container.process.running
        container.view.started = container.startup_done
        container.view.ready = running and container.startup_done and container.readiness

    # ---- probes ------------------------------------------------------------------------------------------------

    def _start_probes(self, container: Container) -> None:
        for kind in ("startup", "liveness", "readiness"):
            probe = container.spec.get(f"{kind}Probe")
            if probe:
                worker = probes.ProbeWorker(kind, probe, self._attempt(container, probe, kind),
                                            self._on_probe_change(container, kind),
                                            self._on_probe_failure(container, kind))
                container.probe_tasks.append(asyncio.create_task(worker.run()))

    def _attempt(self, container: Container, probe: Obj, kind: str) -> Any:
        async def attempt() -> tuple[bool, str]:
            if kind != "startup" and not container.startup_done:
                return (kind == "liveness"), ""  # held back until the startup probe passes
            assert self.sandbox is not None
            sandbox = self.sandbox
            env = await self.agent.container_env(self.pod, container.spec, sandbox.ip)

            async def run(argv: list[str], timeout: float) -> tuple[int, bytes]:
                return await self.agent.runtime.run(sandbox, argv, env, timeout)
            return await probes.check(probe, self.pod, container.spec, sandbox.ip, run, self.agent.http,
                                      self.agent.runtime.probe_netns())
        return attempt

    def _on_probe_change(self, container: Container, kind: str) -> Any:
        def changed(result: bool, message: str) -> None:
            if kind == "readiness":
                container.readiness = result
            elif kind == "startup" and result:
                container.startup_done = True
            elif not result:  # liveness or startup failed: restart the container
                asyncio.create_task(self._kill_unhealthy(container, kind))
            self._update_ready(container)
            self.wake.set()
        return changed

    def _on_probe_failure(self, container: Container, kind: str) -> Any:
        def failed(message: str) -> None:
            name = kind.capitalize()
            asyncio.create_task(self.agent.event(self.pod, "Warning", "Unhealthy", f"{name} probe failed: {message}"))
        return failed

    async def _kill_unhealthy(self, container: Container, kind: str) -> None:
        if container.process is None or not container.process.running:
            return
        await self.agent.event(self.pod, "Normal", "Killing",
                               f"Container {container.name} failed {kind} probe, will be restarted")
        await self.agent.runtime.stop_container(container.process, self._grace())
        self.wake.set()

    # ---- status ------------------------------------------------------------------------------------------------

    async def _publish(self) -> None:
        init_views = [c.view for c in self.init]
        initialized = all(v.state == "terminated" and v.exit_code == 0 for v in init_views)
        init_failed = any(v.state == "terminated" and v.exit_code != 0 and not self._should_restart(c)
                          for c, v in zip(self.init, init_views, strict=True))
        facts = podstatus.PodFacts(
            pod_ip=self.sandbox.ip if self.sandbox else "", host_ip=self.agent.config.node_ip,
            start_time=self.start_time or _now(), sandbox_ready=self.sandbox is not None, initialized=initialized,
            init_failed=init_failed, now=_now(), qos_class=podstatus.qos_class(self.pod))
        if self.sandbox is None:
            for c in self.containers:
                c.view.reason = "ContainerCreating"
        status = podstatus.pod_status(self.pod, facts, [c.view for c in self.containers], init_views,
                                      {c.name: f"svcnet://{images.repository(c.view.image)}"
                                       for c in [*self.init, *self.containers]})
        comparable = {k: v for k, v in status.items() if k != "conditions"}, \
            [{k: v for k, v in c.items() if k != "lastTransitionTime"} for c in status["conditions"]]
        if comparable == self.last_status:
            return
        meta = self.pod["metadata"]
        try:
            self.pod = await self.agent.write_status(meta.get("namespace", "default"), meta["name"], self.uid, status)
        except errors.APIError as exc:
            if exc.code == 404:
                self.gone = True
                self.wake.set()
                return
            raise
        self.last_status = comparable

    # ---- termination -------------------------------------------------------------------------------------------

    def _grace(self) -> float:
        meta, spec = self.pod["metadata"], self.pod.get("spec", {})
        grace = meta.get("deletionGracePeriodSeconds")
        return float(grace if grace is not None else spec.get("terminationGracePeriodSeconds", 30))

    async def _terminate(self) -> None:
        grace = 0.0 if self.gone else self._grace()
        deadline = time.monotonic() + grace
        running = [c for c in [*self.init, *self.containers] if c.process is not None and c.process.running]
        for c in running:
            await self.agent.event(self.pod, "Normal", "Killing", f"Stopping container {c.name}")
        await asyncio.gather(*(self._pre_stop(c, grace) for c in running))
        await self._stop_everything(max(deadline - time.monotonic(), 0.0))
        for c in running:
            self._record_exit(c)
        if not self.gone:
            with contextlib.suppress(errors.APIError):
                await self._publish()
            await self.agent.remove_pod(self.pod)
        self.finished = True

    async def _pre_stop(self, container: Container, grace: float) -> None:
        hook = (container.spec.get("lifecycle") or {}).get("preStop") or {}
        if self.sandbox is None or grace <= 0:
            return
        if "exec" in hook:
            env = await self.agent.container_env(self.pod, container.spec, self.sandbox.ip)
            await self.agent.runtime.run(self.sandbox, list(hook["exec"].get("command") or []), env, grace)
        elif "sleep" in hook:
            await asyncio.sleep(min(float(hook["sleep"].get("seconds", 0)), grace))

    async def _stop_everything(self, grace: float) -> None:
        containers = [*self.init, *self.containers]
        for c in containers:
            for task in c.probe_tasks:
                task.cancel()
            c.probe_tasks.clear()
        await asyncio.gather(*(self.agent.runtime.stop_container(c.process, grace)
                               for c in containers if c.process is not None))
        if self.sandbox is not None:
            await self.agent.hostports.remove(self.uid)
            await self.agent.runtime.stop_sandbox(self.sandbox)
            self.agent.release_ip(self.sandbox.ip)
            if self.gone or self.finished or self.pod["metadata"].get("deletionTimestamp"):
                shutil.rmtree(self.sandbox.pod_dir, ignore_errors=True)
            self.sandbox = None
