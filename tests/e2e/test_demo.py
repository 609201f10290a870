"""`svcnet demo` against a real `svcnet up` (started as tests/e2e/test_up.py's `Up` does): every step of the seed
walkthrough passes with the real kubectl, curl and dig, and namespace dev is gone afterwards; a Service in the way
makes its step FAIL, the steps needing it SKIP, the exit status non-zero, and the cleanup still happen; with no
cluster the demo says so and exits 2.

`svcnet up` binds fixed addresses (proxy 127.0.0.1:10249/10256, DNS 127.0.53.1:53), so the cluster starts only
once no other `svcnet up` runs (waited for, with a deadline); never run this module alongside test_up.py.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import SVCNET, wait_for, write
from tests.e2e.test_up import Up

STEP = re.compile(r"^(PASS|FAIL|SKIP) step (\d+): ")
WALKTHROUGH = list(range(1, 11))  # every step of MISSION.md


def _no_other_up() -> bool:
    return subprocess.run(["pgrep", "-f", "svcnet up"], capture_output=True).returncode == 1


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    wait_for(_no_other_up, 600, "no other `svcnet up` to run (they share fixed ports)", interval=1)
    cluster = Up(tmp_path_factory.mktemp("demo") / "data")
    cluster.start()
    try:
        yield cluster
    finally:
        if cluster.proc is not None and cluster.proc.poll() is None:
            os.killpg(cluster.proc.pid, signal.SIGTERM)
            try:
                cluster.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(cluster.proc.pid, signal.SIGKILL)
                cluster.proc.wait()


def _demo(data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(data_dir.parent)}  # kubectl's cache, not the user's ~/.kube
    return subprocess.run([str(SVCNET), "demo", "--data-dir", str(data_dir)],
                          capture_output=True, text=True, env=env, timeout=600)


def _outcomes(stdout: str) -> dict[int, str]:
    return {int(m.group(2)): m.group(1) for m in map(STEP.match, stdout.splitlines()) if m}


def _namespace_gone(up: Up) -> bool:
    env = {**os.environ, "KUBECONFIG": str(up.data_dir / "kubeconfig"), "HOME": str(up.data_dir.parent)}
    got = subprocess.run(["/usr/bin/kubectl", "get", "namespace", "dev"], capture_output=True, text=True, env=env)
    return got.returncode != 0 and "NotFound" in got.stderr


def test_every_step_of_the_walkthrough_passes_and_dev_is_cleaned_up(up: Up) -> None:
    done = _demo(up.data_dir)
    assert done.returncode == 0, done.stdout + done.stderr
    outcomes = _outcomes(done.stdout)
    assert outcomes == {n: "PASS" for n in WALKTHROUGH}, done.stdout
    assert "$ kubectl get pods -n dev -o wide --show-labels" in done.stdout
    assert "TCP  127.97.97.97:80 rr persistent 10800" in done.stdout
    assert "PASS cleanup: namespace dev is gone" in done.stdout
    assert _namespace_gone(up)


def test_a_service_in_the_way_fails_its_step_and_the_demo(up: Up, tmp_path: Path) -> None:
    blocker = ("apiVersion: v1\nkind: Namespace\nmetadata: {name: dev}\n---\n"
               "apiVersion: v1\nkind: Service\nmetadata: {name: service-clusterip, namespace: dev}\n"
               "spec: {clusterIP: 127.97.97.98, selector: {app: nginx-pod}, ports: [{port: 80}]}\n")
    up.kubectl("apply", "-f", str(write(tmp_path, "blocker.yaml", blocker)))
    done = _demo(up.data_dir)
    assert done.returncode == 1, done.stdout + done.stderr
    outcomes = _outcomes(done.stdout)
    assert outcomes[1] == "PASS" and outcomes[2] == "FAIL", done.stdout
    assert "service-clusterip applied" in next(line for line in done.stdout.splitlines() if line.startswith("FAIL step 2:"))
    assert [outcomes[n] for n in (3, 8, 10)] == ["SKIP"] * 3, "the steps needing step 2 are skipped"
    assert outcomes[4] == outcomes[5] == "PASS"
    assert _namespace_gone(up), "cleaned up even though a step failed"


def test_without_a_cluster_the_demo_says_so_and_exits_2(tmp_path: Path) -> None:
    done = _demo(tmp_path / "nothing-here")
    assert done.returncode == 2
    assert "no running `svcnet up`" in done.stderr
