"""`svcnet demo` against `svcnet up --netns --nodes 3` (root), in userspace and iptables proxy mode: every step of
the seed walkthrough passes but the LoadBalancer one, which is skipped with its reason (LB addresses are not on the
fabric yet); pod IPs are reached from node-1, ClusterIPs and DNS from a pod on node-1, NodePorts on every node's
address from the client namespace, and the commands are shown as a user would type them.

The node namespaces have fixed names, so the cluster starts only once no other `svcnet up --netns` runs (waited
for, with a deadline); it is stopped with SIGTERM and any namespace it left is removed.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import KUBECTL, SVCNET, wait_for
from tests.e2e.test_up_netns import NetnsUp

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="svcnet up --netns needs root")

STEP = re.compile(r"^(PASS|FAIL|SKIP) step (\d+): ")
EXPECTED = {n: "PASS" for n in range(1, 11)}


def _no_other_netns_up() -> bool:
    return subprocess.run(["pgrep", "-f", "svcnet up --netns"], capture_output=True).returncode == 1


@pytest.fixture(scope="module", params=["userspace", "iptables"])
def cluster(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[NetnsUp]:
    wait_for(_no_other_netns_up, 600, "no other `svcnet up --netns` to run (node namespaces have fixed names)",
             interval=1)
    up = NetnsUp(tmp_path_factory.mktemp("demonetns") / "data", request.param)
    try:
        yield up
    finally:
        up.stop()


def _demo(data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(data_dir.parent)}  # kubectl's cache, not the user's ~/.kube
    return subprocess.run([str(SVCNET), "demo", "--data-dir", str(data_dir)],
                          capture_output=True, text=True, env=env, timeout=900)


def _outcomes(stdout: str) -> dict[int, str]:
    return {int(m.group(2)): m.group(1) for m in map(STEP.match, stdout.splitlines()) if m}


def test_every_step_passes_across_three_node_namespaces(cluster: NetnsUp) -> None:
    done = _demo(cluster.data_dir)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert _outcomes(out) == EXPECTED, out
    assert re.search(r"ok: EXTERNAL-IP 172\.18\.1\.\d+ from the pool 172\.18\.1\.0/24", out), out
    data_dir = str(cluster.data_dir)
    assert f"$ svcnet exec client --data-dir {data_dir} -- curl -sS --max-time 5 --resolve " \
           "kubia.example.com:80:172.18.0.11 http://kubia.example.com/kubia" in out
    assert f"$ svcnet exec node-1 --data-dir {data_dir} -- curl -sS --max-time 5 http://10.244." in out
    for node_ip in ("172.18.0.11", "172.18.0.12", "172.18.0.13"):
        assert f"$ svcnet exec client --data-dir {data_dir} -- curl -sS --max-time 5 http://{node_ip}:30002/" in out
    assert re.search(r"^\$ kubectl exec pc-deployment-\S+ -n dev -c nginx -- dig @10\.96\.0\.10 ", out, re.M), out
    scheduler = "rr" if cluster.proxy_mode == "userspace" else "random"
    assert f"TCP  10.97.97.97:80 {scheduler} persistent 10800" in out.splitlines()
    if cluster.proxy_mode == "iptables":
        assert f"$ svcnet exec node-1 --data-dir {data_dir} -- iptables-save -t nat" in out
        assert "random choice: 30 requests reached all 3 pods" in out
    else:
        assert "round robin: each pod answered twice" in out
    assert "ok: 10.97.97.97:80 is unreachable" in out
    assert "PASS cleanup: namespace dev is gone" in out
    env = {**os.environ, "KUBECONFIG": str(cluster.data_dir / "kubeconfig"), "HOME": str(cluster.data_dir.parent)}
    got = subprocess.run([str(KUBECTL), "get", "namespace", "dev"], capture_output=True, text=True, env=env)
    assert got.returncode != 0 and "NotFound" in got.stderr
