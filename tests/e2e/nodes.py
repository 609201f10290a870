"""A running node for end-to-end tests: the real `svcnet controller-manager` and `svcnet node` as subprocesses
against the module's API server, stopped (SIGTERM, then SIGKILL) at the end so no pod process survives."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.conftest import SVCNET, Server, killpg, wait_for

CONTROLLERS = "scheduler,endpoints,replicaset,replicationcontroller,deployment"


@dataclass
class Node:
    name: str
    pod_cidr: str
    data_dir: Path
    processes: list[subprocess.Popen[bytes]]
    log_dir: Path

    def log(self, which: str = "node") -> str:
        return (self.log_dir / f"{which}.log").read_text(errors="replace")


def run_node(server: Server, tmp: Path, name: str, pod_cidr: str, controllers: str = CONTROLLERS,
             *extra: str) -> Iterator[Node]:
    env = {"KUBECONFIG": str(server.kubeconfig), "PATH": "/usr/local/bin:/usr/bin:/bin"}
    commands = {
        "controller-manager": [str(SVCNET), "controller-manager", "--controllers", controllers],
        "node": [str(SVCNET), "node", "--name", name, "--pod-cidr", pod_cidr, "--kubelet-port", "0",
                 "--restart-backoff", "0.5", "--data-dir", str(tmp / name), *extra],
    }
    processes = []
    try:
        for which, cmd in commands.items():
            with (tmp / f"{which}.log").open("wb") as log:
                processes.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                                  start_new_session=True))
        node = Node(name, pod_cidr, tmp / name, processes, tmp)
        wait_for(lambda: _ready(server, name), 20, f"node {name} Ready")
        yield node
    finally:
        for proc in processes:
            killpg(proc)


def _ready(server: Server, name: str) -> bool:
    response = server.http("GET", f"/api/v1/nodes/{name}")
    if response.status_code != 200:
        return False
    conditions = response.json().get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
