"""A stand-in `ContainerAccess` for tests of the kubelet API: containers are table entries with real CRI log files
in a temporary directory, and attach relays a real process that the test starts. It stands in for the node
agent's runtime only until that runtime exists; it is not a runtime (no images, no namespaces, no restarts).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import os
from collections.abc import AsyncIterator
from pathlib import Path

from svcnet.node import crilog
from svcnet.node.access import ContainerRef


class StandinAccess:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.refs: dict[tuple[str, str, str], ContainerRef] = {}
        self.processes: dict[tuple[str, str, str], asyncio.subprocess.Process] = {}

    # ---- the test's side ---------------------------------------------------------------------------------

    def add(self, namespace: str, pod: str, container: str, runs: int = 1, running: bool = True,
            stdin_once: bool = False) -> ContainerRef:
        log_dir = self.root / f"{namespace}_{pod}" / container
        log_dir.mkdir(parents=True, exist_ok=True)
        for run in range(runs):
            (log_dir / f"{run}.log").touch()
        env = {"PATH": os.environ.get("PATH", os.defpath), "GREETING": f"hello from {container}"}
        ref = ContainerRef(namespace, pod, container, log_dir, env=env, cwd=str(self.root), running=running,
                           stdin_once=stdin_once)
        self.refs[(namespace, pod, container)] = ref
        return ref

    def write(self, ref: ContainerRef, stream: str, chunk: bytes, when: datetime.datetime | None = None,
              run: int = -1) -> None:
        """Append one chunk of output, as CRI records, to the run's log file (default: the current run)."""
        path = crilog.log_files(ref.log_dir)[run]
        with path.open("ab") as f:
            f.write(crilog.format_record(stream, chunk, when))

    def stop(self, ref: ContainerRef) -> None:
        self.refs[(ref.namespace, ref.pod, ref.container)] = dataclasses.replace(ref, running=False)

    async def start_process(self, ref: ContainerRef, *argv: str) -> asyncio.subprocess.Process:
        """Run the container's main process (for attach): stdin, stdout and stderr are pipes."""
        pipe = asyncio.subprocess.PIPE
        process = await asyncio.create_subprocess_exec(*argv, stdin=pipe, stdout=pipe, stderr=pipe)
        self.processes[(ref.namespace, ref.pod, ref.container)] = process
        return process

    # ---- ContainerAccess ---------------------------------------------------------------------------------

    def container(self, namespace: str, pod: str, container: str) -> ContainerRef:
        if not container:
            found = [r for (ns, p, _), r in self.refs.items() if (ns, p) == (namespace, pod)]
            if found:
                return found[0]
        ref = self.refs.get((namespace, pod, container))
        if ref is None:
            raise LookupError(f'container "{container}" not found in pod "{namespace}/{pod}"')
        return ref

    async def output(self, ref: ContainerRef) -> AsyncIterator[tuple[str, bytes]]:
        process = self.processes[(ref.namespace, ref.pod, ref.container)]
        queue: asyncio.Queue[tuple[str, bytes] | None] = asyncio.Queue()

        async def pump(stream: str, reader: asyncio.StreamReader | None) -> None:
            while reader is not None and (chunk := await reader.read(65536)):
                await queue.put((stream, chunk))
            await queue.put(None)

        tasks = [asyncio.ensure_future(pump("stdout", process.stdout)),
                 asyncio.ensure_future(pump("stderr", process.stderr))]
        try:
            open_streams = 2
            while open_streams:
                item = await queue.get()
                if item is None:
                    open_streams -= 1
                else:
                    yield item
        finally:
            for task in tasks:
                task.cancel()

    def stdin(self, ref: ContainerRef) -> asyncio.StreamWriter | None:
        process = self.processes.get((ref.namespace, ref.pod, ref.container))
        return process.stdin if process else None
