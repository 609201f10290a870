"""What the node agent's HTTP API (kubelet_api) needs from the runtime, as a protocol: find a pod's container,
its logs, how to run a command inside the pod, and its attached stdin/stdout.

The runtime implements `ContainerAccess`; kubelet_api only speaks the wire protocols. Errors are `LookupError`
with a message fit for the user (`container "x" not found in pod "ns/p"`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class ContainerRef:
    namespace: str
    pod: str
    container: str
    log_dir: Path                      # <restartCount>.log files in svcnet.node.crilog format
    exec_prefix: tuple[str, ...] = ()  # argv prefix entering the pod's namespaces (() for the process runtime)
    env: dict[str, str] = field(default_factory=dict)  # the container's environment, for exec
    cwd: str = "/"
    running: bool = True
    stdin_once: bool = False  # the spec's stdinOnce: the first attach's stdin EOF closes the container's stdin


class ContainerAccess(Protocol):
    def container(self, namespace: str, pod: str, container: str) -> ContainerRef:
        """The container, or LookupError. An empty `container` means the pod's first container."""

    def output(self, ref: ContainerRef) -> AsyncIterator[tuple[str, bytes]]:
        """Follow the running container's output live: ("stdout"|"stderr", chunk) until it exits (for attach)."""

    def stdin(self, ref: ContainerRef) -> asyncio.StreamWriter | None:
        """The running container's stdin, when its spec has `stdin: true` (for attach)."""
