"""`svcnet up` run by a user who is not root (issue 6: loopback mode needs no root), checked from the outside.

uid 65534 (nobody) runs `svcnet up` with its defaults (data dir under its own $HOME) inside a network namespace
this test creates, so the fixed loopback addresses (127.96.0.10:53, 127.0.53.1, :6443, :10249) meet no other
cluster on the machine, and `net.ipv4.ip_unprivileged_port_start` — a per-namespace sysctl — is set here without
touching the machine's own value:
- at 1024 (the kernel's default) `svcnet up` refuses before it starts anything: exit 2, no traceback, a message
  that names the sysctl and the fix (the /etc/sysctl.d file scripts/install.sh writes), no data dir created;
- at 0 (what scripts/install.sh sets) the cluster comes up, runs only as that uid, `svcnet status` is all ok,
  pods answer through ClusterIP Services on port 8080 (luksa/kubia) and on port 80 (nginx, listening on 80 in its
  pod too), and the cluster DNS answers `dig @127.96.0.10` for them.
kubectl and `svcnet status` run as the same uid; dig and curl as root inside the namespace (it makes no
difference to them). Only root can switch uid and create namespaces, so those tests are skipped elsewhere (CI runs
as root). The venv's interpreter may live where the uid cannot reach it (pyenv under /root, mode 0700): then the
uid runs this checkout and the venv's packages through a throwaway venv made from the system python3 of the same
version, as a machine set up by scripts/install.sh from Debian's python3 would have it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from svcnet.cluster import up
from tests.e2e.conftest import KUBECTL, REPO, LineReader, wait_for

UID = 65534
DNS = up.DNS_SERVICE_IP
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="only root can run svcnet up as another uid (setpriv) "
                               "in a network namespace of the test's own; CI runs as root")

SERVICES = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web80, namespace: default}
spec:
  replicas: 2
  selector: {matchLabels: {app: web80}}
  template:
    metadata: {labels: {app: web80}}
    spec:
      containers:
      - {name: nginx, image: "nginx:1.17.1", ports: [{containerPort: 80}],
         readinessProbe: {tcpSocket: {port: 80}, periodSeconds: 1}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: kubia, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: kubia}}
  template:
    metadata: {labels: {app: kubia}}
    spec:
      containers:
      - {name: kubia, image: luksa/kubia, ports: [{containerPort: 8080}],
         readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}}
---
apiVersion: v1
kind: Service
metadata: {name: web80, namespace: default}
spec:
  selector: {app: web80}
  ports: [{port: 80, targetPort: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: kubia, namespace: default}
spec:
  selector: {app: kubia}
  ports: [{port: 8080, targetPort: 8080}]
"""


@dataclass
class Unprivileged:
    """uid 65534's world: a home directory, a network namespace and a way to run svcnet."""
    home: Path
    netns: str
    svcnet: tuple[str, ...]

    @property
    def data_dir(self) -> Path:
        return self.home / ".local" / "share" / "svcnet"

    def in_netns(self, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.netns, *argv]

    def as_user(self, *argv: str, **env: str) -> list[str]:
        """argv run as the uid with a clean environment; through `env`, so the uid itself execs the program."""
        path = f"{Path(self.svcnet[0]).parent}:/usr/bin:/bin"
        variables = [f"{k}={v}" for k, v in {"HOME": str(self.home), "PATH": path, "LANG": "C.UTF-8", **env}.items()]
        return self.in_netns("setpriv", f"--reuid={UID}", f"--regid={UID}", "--clear-groups", "env", "-i",
                             *variables, *argv)

    def run(self, argv: list[str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        out = subprocess.run(self.as_user(str(KUBECTL), *args, KUBECONFIG=str(self.data_dir / "kubeconfig")),
                             input=stdin, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, f"kubectl {' '.join(args)}: {out.stderr}"
        return out.stdout

    def set_port_start(self, value: int) -> None:
        subprocess.run(self.in_netns("sysctl", "-q", "-w", f"net.ipv4.ip_unprivileged_port_start={value}"),
                       check=True)


def _reachable(home: Path, netns: str, python: Path) -> bool:
    probe = Unprivileged(home, netns, (str(python),))
    return probe.run(probe.as_user(str(python), "-c", "import svcnet")).returncode == 0


def _svcnet_for_uid(home: Path, netns: str) -> tuple[str, ...]:
    """How the uid runs svcnet: the venv's own script, or this checkout through a venv of the system python3."""
    venv_script = REPO / ".venv" / "bin" / "svcnet"
    if _reachable(home, netns, Path(sys.executable)):
        return (str(venv_script),)
    system = shutil.which("python3", path="/usr/bin:/bin")
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    if system is None or subprocess.run([system, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                                        capture_output=True, text=True).stdout.strip() != version:
        pytest.skip(f"uid {UID} cannot run {sys.executable} and there is no system python{version} to run svcnet")
    venv = home / "venv"
    subprocess.run([system, "-m", "venv", "--without-pip", str(venv)], check=True)
    purelib = Path(sysconfig.get_paths(vars={"base": str(venv)})["purelib"])
    (purelib / "svcnet-checkout.pth").write_text(f"import site; site.addsitedir({sysconfig.get_path('purelib')!r})\n")
    python = venv / "bin" / "python"
    assert _reachable(home, netns, python), f"uid {UID} cannot import svcnet through {python}"
    return (str(python), "-m", "svcnet.cli.main")


@pytest.fixture(scope="module")
def user() -> Iterator[Unprivileged]:
    home = Path(tempfile.mkdtemp(prefix="svcnet-unprivileged-"))  # /tmp: pytest's tmp dirs are root's alone
    netns = f"svcnet-unpriv-{uuid.uuid4().hex[:6]}"
    try:
        os.chown(home, UID, UID)
        subprocess.run(["ip", "netns", "add", netns], check=True)
        subprocess.run(["ip", "-n", netns, "link", "set", "lo", "up"], check=True)
        yield Unprivileged(home, netns, _svcnet_for_uid(home, netns))
    finally:
        subprocess.run(["ip", "netns", "del", netns], capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


@root_only
def test_refuses_before_starting_when_low_ports_are_root_only(user: Unprivileged) -> None:
    user.set_port_start(1024)
    out = user.run(user.as_user(*user.svcnet, "up"))
    message = out.stdout + out.stderr
    assert out.returncode == 2, message
    assert "Traceback" not in message, message
    assert "net.ipv4.ip_unprivileged_port_start = 1024" in message, message
    assert f"net.ipv4.ip_unprivileged_port_start = 0' | sudo tee {up.SYSCTL_CONF}" in message, message
    assert "scripts/install.sh" in message and "Nothing was started" in message, message
    assert not user.data_dir.exists(), "nothing may start, not even the data directory"


class Cluster:
    """`svcnet up` as the uid; stopped with SIGTERM, its whole process group killed if it does not stop."""

    def __init__(self, user: Unprivileged) -> None:
        self.proc = subprocess.Popen(user.as_user(*user.svcnet, "up"), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.output = LineReader(self.proc.stdout)

    def session_uids(self) -> set[int]:
        """Real uids of every process in the cluster's session (svcnet up and its pods)."""
        uids = set()
        for status in Path("/proc").glob("[0-9]*/status"):
            try:
                if os.getsid(int(status.parent.name)) != self.proc.pid:
                    continue
                uids.add(int(next(x for x in status.read_text().splitlines() if x.startswith("Uid:")).split()[1]))
            except (OSError, StopIteration):
                continue  # gone meanwhile
        return uids

    def stop(self) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                return self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        return self.proc.wait(20)


def _ready_ips(user: Unprivileged, app: str, count: int) -> list[str] | None:
    pods = json.loads(user.kubectl("get", "pods", "-l", f"app={app}", "-o", "json"))["items"]
    ready = sorted(p["status"]["podIP"] for p in pods if any(
        c["type"] == "Ready" and c["status"] == "True" for c in p.get("status", {}).get("conditions", [])))
    return ready if len(ready) == count == len(pods) else None


def _curl(user: Unprivileged, url: str) -> str:
    out = user.run(user.in_netns("curl", "-s", "--max-time", "2", url))
    return out.stdout.strip() if out.returncode == 0 else ""


def _dig(user: Unprivileged, name: str) -> list[str]:
    out = user.run(user.in_netns("dig", f"@{DNS}", "+short", "+time=2", "+tries=1", name))
    return sorted(out.stdout.split())


@root_only
def test_runs_the_cluster_when_low_ports_are_allowed(user: Unprivileged) -> None:
    user.set_port_start(0)
    cluster = Cluster(user)
    try:
        cluster.output.wait_line(lambda line: line.strip().startswith("ready in"), 60, "svcnet up ready")
        assert f"export KUBECONFIG={user.data_dir / 'kubeconfig'}" == cluster.output.wait_line(
            lambda line: line.startswith("export KUBECONFIG="), 5, "the KUBECONFIG line")
        status = user.run(user.as_user(*user.svcnet, "status"))
        assert status.returncode == 0, status.stdout + status.stderr
        assert [line.split()[:2] for line in status.stdout.splitlines()] == [
            [name, "ok"] for name in ("apiserver", "controller-manager", "node", "proxy", "dns", "ingress")]
        assert _dig(user, "kubernetes.default.svc.cluster.local") == ["127.96.0.1"]

        user.kubectl("apply", "-f", "-", stdin=SERVICES)
        web = wait_for(lambda: _ready_ips(user, "web80", 2), 30, "2 ready nginx pods")
        kubia = wait_for(lambda: _ready_ips(user, "kubia", 1), 30, "1 ready kubia pod")
        assert cluster.session_uids() == {UID}, "every process of the cluster runs as the uid"
        ips = {name: user.kubectl("get", "svc", name, "-o", "jsonpath={.spec.clusterIP}")
               for name in ("web80", "kubia")}
        wait_for(lambda: {_curl(user, f"http://{ips['web80']}:80/") for _ in range(4)} == set(web), 20,
                 "both nginx pods answering through the ClusterIP on port 80")
        kubia_pod = json.loads(user.kubectl("get", "pods", "-l", "app=kubia", "-o", "json"))["items"][0]
        wait_for(lambda: _curl(user, f"http://{ips['kubia']}:8080/") ==
                 f"You've hit {kubia_pod['metadata']['name']}", 20, "kubia answering through its ClusterIP on 8080")
        assert kubia_pod["status"]["podIP"] == kubia[0]
        assert _dig(user, "web80.default.svc.cluster.local") == [ips["web80"]]
        assert _dig(user, "kubia.default.svc.cluster.local") == [ips["kubia"]]
    finally:
        code = cluster.stop()
    assert code == 0, f"svcnet up exited with {code}: {cluster.output.lines}"


@pytest.mark.parametrize(("can_bind_service", "start", "needed", "blocked", "note"), [
    pytest.param(True, 1024, [("dns", 53)], [], False, id="capability: everything"),
    pytest.param(False, 1024, [("dns", 53), ("nodeports", 30000)], [("dns", 53)], False, id="default: dns blocked"),
    pytest.param(False, 54, [("dns", 53)], [("dns", 53)], False, id="one above 53"),
    pytest.param(False, 53, [("dns", 53)], [], True, id="53 itself is allowed: note"),
    pytest.param(False, 0, [("dns", 53), ("api", 443)], [], False, id="0: everything"),
    pytest.param(False, 1, [("dns", 53)], [], False, id="1: port 0 does not exist"),
    pytest.param(False, 40, [("dns", 53), ("nodeports", 20)], [("nodeports", 20)], False, id="low nodeport range"),
])
def test_check_ports(can_bind_service: bool, start: int, needed: list[tuple[str, int]],
                     blocked: list[tuple[str, int]], note: bool) -> None:
    check = up.check_ports(up.PortPrivilege(can_bind_service, start), needed)
    assert list(check.blocked) == blocked
    assert bool(check.note) == note
