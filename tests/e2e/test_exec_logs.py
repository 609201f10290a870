"""`kubectl logs`, `exec` and `attach` end to end: the real kubectl → the svcnet API server → the kubelet API → real
processes and real CRI log files.

The node agent is not finished yet, so this module serves `svcnet.node.kubelet_api` itself on a free 127.0.0.1 port
(a background thread with its own event loop) over the stand-in ContainerAccess of tests/unit/node/standin.py, and
registers a Node whose InternalIP and kubelet port point there. TODO: switch to the real node agent once it exists
(start it instead of `KubeletThread`, and let its runtime run the pod).
"""

from __future__ import annotations

import asyncio
import re
import shlex
import subprocess
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp import web

from svcnet.node import kubelet_api
from svcnet.node.access import ContainerRef
from tests.e2e.conftest import KUBECTL_TIMEOUT, Server, killpg, unique
from tests.unit.node.standin import StandinAccess

T = TypeVar("T")
DEADLINE = 30.0


class KubeletThread:
    """The kubelet API app on 127.0.0.1:<free port>, served from a thread so the (sync) tests can drive kubectl."""

    def __init__(self, root: Path) -> None:
        self.access = StandinAccess(root)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="kubelet-api", daemon=True)
        self.runner = web.AppRunner(kubelet_api.make_app(self.access))
        self.port = 0

    def start(self) -> None:
        self.thread.start()
        self.call(self._serve())

    async def _serve(self) -> None:
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        self.port = self.runner.addresses[0][1]

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(DEADLINE)

    def stop(self) -> None:
        self.call(self.runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(DEADLINE)
        self.loop.close()


@pytest.fixture(scope="module")
def kubelet(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[KubeletThread, str]]:
    """The kubelet API and the name of a Node object that points at it."""
    kubelet = KubeletThread(tmp_path_factory.mktemp("kubelet"))
    kubelet.start()
    node = unique("node")
    response = server.http("POST", "/api/v1/nodes", {
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": node},
        "status": {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                   "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet.port}}}})
    assert response.status_code == 201, response.text
    assert response.json()["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"] == kubelet.port
    try:
        yield kubelet, node
    finally:
        kubelet.stop()


def make_pod(server: Server, ns: str, name: str, node: str | None, containers: tuple[str, ...] = ("c",)) -> None:
    spec: dict[str, Any] = {"containers": [{"name": c, "image": "busybox"} for c in containers]}
    if node:
        spec["nodeName"] = node
    response = server.http("POST", f"/api/v1/namespaces/{ns}/pods",
                           {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec})
    assert response.status_code == 201, response.text


@pytest.fixture
def pod(server: Server, ns: str, kubelet: tuple[KubeletThread, str]) -> ContainerRef:
    """Pod `p` in `ns` on the node, container `c` (two runs: 0.log is the previous one, 1.log the current)."""
    kubelet_thread, node = kubelet
    make_pod(server, ns, "p", node)
    ref = kubelet_thread.access.add(ns, "p", "c", runs=2)
    kubelet_thread.access.write(ref, "stdout", b"from the previous run\n", run=0)
    for line in (b"one\n", b"two\n", b"three\n"):
        kubelet_thread.access.write(ref, "stdout", line)
    return ref


# ---- logs -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("flags", "expected"), [
    pytest.param((), "one\ntwo\nthree\n", id="all"),
    pytest.param(("--tail=2",), "two\nthree\n", id="tail"),
    pytest.param(("--limit-bytes=6",), "one\ntw", id="limit-bytes"),
    pytest.param(("--since=1h",), "one\ntwo\nthree\n", id="since"),
    pytest.param(("--previous",), "from the previous run\n", id="previous"),
    pytest.param(("-c", "c", "--tail=1"), "three\n", id="container"),
])
def test_logs(server: Server, ns: str, pod: ContainerRef, flags: tuple[str, ...], expected: str) -> None:
    assert server.kubectl("logs", "p", "-n", ns, *flags).stdout == expected


def test_logs_timestamps(server: Server, ns: str, pod: ContainerRef) -> None:
    lines = server.kubectl("logs", "p", "-n", ns, "--timestamps", "--tail=2").stdout.splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == ["two", "three"]
    for line in lines:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z", line.split(" ", 1)[0]), line


def test_logs_follow_ends_when_the_container_stops(server: Server, ns: str, pod: ContainerRef,
                                                   kubelet: tuple[KubeletThread, str]) -> None:
    access = kubelet[0].access
    proc, reader = server.kubectl_popen("logs", "-f", "p", "-n", ns)
    try:
        reader.wait_line(lambda line: line == "three", DEADLINE, "the existing lines")
        access.write(pod, "stdout", b"four\n")
        reader.wait_line(lambda line: line == "four", DEADLINE, "a line written while following")
        access.write(pod, "stderr", b"five\n")
        access.stop(pod)
        assert proc.wait(DEADLINE) == 0
        reader.wait_line(lambda line: line == "five", DEADLINE, "the last line")
    finally:
        killpg(proc)


def test_logs_previous_without_a_previous_run(server: Server, ns: str, kubelet: tuple[KubeletThread, str]) -> None:
    make_pod(server, ns, "fresh", kubelet[1])
    kubelet[0].access.add(ns, "fresh", "c")
    result = server.kubectl("logs", "fresh", "-n", ns, "--previous", check=False)
    assert result.rc == 1, result
    assert result.stderr.strip() == ('Error from server (BadRequest): previous terminated container "c" in pod '
                                     '"fresh" not found')


# ---- exec and attach ------------------------------------------------------------------------------------------

def test_exec_streams_and_exit_code(server: Server, ns: str, pod: ContainerRef) -> None:
    result = server.kubectl("exec", "p", "-n", ns, "--", "sh", "-c", "echo out; echo err >&2; exit 3", check=False)
    assert (result.rc, result.stdout) == (3, "out\n"), result
    assert result.stderr == "err\ncommand terminated with exit code 3\n", result


def test_exec_success(server: Server, ns: str, pod: ContainerRef) -> None:
    result = server.kubectl("exec", "p", "-n", ns, "-c", "c", "--", "echo", "hello world")
    assert (result.stdout, result.stderr) == ("hello world\n", "")


def test_exec_stdin(server: Server, ns: str, pod: ContainerRef) -> None:
    result = server.kubectl("exec", "-i", "p", "-n", ns, "--", "cat", input="hi\nthere\n")
    assert (result.stdout, result.stderr) == ("hi\nthere\n", "")


def test_exec_tty(server: Server, ns: str, pod: ContainerRef) -> None:
    """`exec -it` needs a terminal on kubectl's side: `script` provides one."""
    kubectl = shlex.join(server.kubectl_cmd("exec", "-it", "p", "-n", ns, "--", "sh", "-c", "tty; exit 4"))
    try:
        proc = subprocess.run(["script", "-qec", kubectl, "/dev/null"], capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=KUBECTL_TIMEOUT, env=server.kubectl_env())
    except subprocess.TimeoutExpired:
        pytest.fail("kubectl exec -it under script did not finish")
    assert proc.returncode == 4, (proc.stdout, proc.stderr)
    assert "/dev/pts/" in proc.stdout, proc.stdout


def test_attach(server: Server, ns: str, kubelet: tuple[KubeletThread, str]) -> None:
    kubelet_thread = kubelet[0]
    make_pod(server, ns, "main", kubelet[1])
    ref = kubelet_thread.access.add(ns, "main", "c", stdin_once=True)
    process = kubelet_thread.call(kubelet_thread.access.start_process(ref, "sh", "-c", 'read x; echo "got $x"'))
    result = server.kubectl("attach", "-i", "main", "-n", ns, input="hello\n")
    assert result.stdout == "got hello\n", result
    assert kubelet_thread.call(asyncio.wait_for(process.wait(), DEADLINE)) == 0


# ---- errors ---------------------------------------------------------------------------------------------------

BAD = "Error from server (BadRequest): "


@pytest.mark.parametrize(("args", "message"), [
    pytest.param(("exec", "p", "-c", "nope", "--", "true"), BAD + "container nope is not valid for pod p",
                 id="exec-unknown-container"),
    pytest.param(("logs", "p", "-c", "nope"), "error: container nope is not valid for pod p",  # kubectl checks
                 id="logs-unknown-container"),
    pytest.param(("exec", "unscheduled", "--", "true"), BAD + "pod unscheduled does not have a host assigned",
                 id="exec-without-node"),
    pytest.param(("attach", "unscheduled"), BAD + "pod unscheduled does not have a host assigned",
                 id="attach-without-node"),
])
def test_bad_requests(server: Server, ns: str, pod: ContainerRef, args: tuple[str, ...], message: str) -> None:
    make_pod(server, ns, "unscheduled", None)
    result = server.kubectl("-n", ns, *args, check=False)
    assert result.rc == 1, result
    assert result.stderr.strip().splitlines()[-1] == message, result


@pytest.mark.parametrize(("query", "message"), [
    pytest.param("container=nope", "container nope is not valid for pod p", id="unknown-container"),
    pytest.param("container=c&tailLines=-1", "tailLines: Invalid value: -1: must be greater than or equal to 0",
                 id="bad-tail"),
])
def test_logs_validation_on_the_server(server: Server, ns: str, pod: ContainerRef, query: str,
                                       message: str) -> None:
    response = server.http("GET", f"/api/v1/namespaces/{ns}/pods/p/log?{query}")
    assert (response.status_code, response.json()["message"]) == (400, message)


def test_spdy_is_refused_with_a_clear_message(server: Server, ns: str, pod: ContainerRef) -> None:
    result = server.kubectl("exec", "p", "-n", ns, "--", "true", check=False,
                            env={"KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false"})
    assert result.rc == 1, result
    assert result.stderr.strip() == BAD + kubelet_api.WEBSOCKET_REQUIRED, result


def test_logs_of_an_unscheduled_pod_are_empty(server: Server, ns: str) -> None:
    """As kube-apiserver: a pod without a node has no logs yet, which is an empty answer, not an error."""
    make_pod(server, ns, "unscheduled", None)
    assert server.kubectl("logs", "unscheduled", "-n", ns).stdout == ""


def test_missing_pod(server: Server, ns: str) -> None:
    result = server.kubectl("exec", "ghost", "-n", ns, "--", "true", check=False)
    assert result.rc == 1
    assert result.stderr.strip() == 'Error from server (NotFound): pods "ghost" not found'


def test_read_only_user_cannot_exec(server: Server, ns: str, pod: ContainerRef) -> None:
    result = server.kubectl("exec", "p", "-n", ns, "--", "true", kubeconfig=server.kubeconfig_readonly,
                            check=False)
    assert result.rc == 1 and "Forbidden" in result.stderr, result
