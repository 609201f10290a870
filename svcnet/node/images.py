"""The image catalog of the process runtime: which program an image name stands for.

A container with `command` runs it whatever the image; a container with only an `image` runs the catalog's entry
for it: `entrypoint` (replaced by the container's `command`) and `cmd` (replaced by its `args`), as Docker
images do. Patterns match the image's repository without registry, `library/` or tag (`nginx`, `docker.io/
library/nginx:1.25` and `nginx@sha256:…` all match `nginx`), with shell wildcards. A YAML file adds entries in
front of the built-ins: a list of `{image: PATTERN, entrypoint: [...], cmd: [...]}`.
"""

from __future__ import annotations

import fnmatch
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

_SERVERS = [sys.executable, "-m", "svcnet.node.builtin.servers"]
_SLEEP = ["sleep", "infinity"]


@dataclass(frozen=True)
class Image:
    pattern: str
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...] = ()


BUILTIN = (
    Image("nginx*", (*_SERVERS, "http", "80")),
    Image("httpd*", (*_SERVERS, "http", "80")),
    Image("*/nginx*", (*_SERVERS, "http", "80")),
    Image("luksa/kubia*", (*_SERVERS, "kubia", "8080")),
    Image("svcnet/http", (*_SERVERS, "http"), ("8080",)),
    Image("svcnet/tcp-echo", (*_SERVERS, "tcp-echo"), ("7",)),
    Image("svcnet/udp-echo", (*_SERVERS, "udp-echo"), ("7",)),
    Image("busybox*", (), tuple(_SLEEP)),
    Image("alpine*", (), tuple(_SLEEP)),
    Image("debian*", (), tuple(_SLEEP)),
    Image("ubuntu*", (), tuple(_SLEEP)),
    Image("*dnsutils*", (), tuple(_SLEEP)),
    Image("*curl*", (), tuple(_SLEEP)),
    Image("svcnet/sleep", (), tuple(_SLEEP)),
    Image("pause*", (), tuple(_SLEEP)),
)


def repository(image: str) -> str:
    """`docker.io/library/nginx:1.25` -> `nginx`; `quay.io/x/y@sha256:...` -> `x/y`."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)
    if ":" in last[-1]:
        name = name[: name.rfind(":")]
    parts = name.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        parts = parts[1:]
    if parts[0] == "library" and len(parts) > 1:
        parts = parts[1:]
    return "/".join(parts)


class Catalog:
    def __init__(self, extra: tuple[Image, ...] = ()) -> None:
        self.entries = extra + BUILTIN

    @classmethod
    def load(cls, path: Path | None) -> Catalog:
        if path is None:
            return cls()
        raw = yaml.safe_load(path.read_text()) or []
        if not isinstance(raw, list):
            raise ValueError(f"{path}: expected a list of {{image, entrypoint, cmd}}")
        entries = []
        for item in raw:
            if not isinstance(item, dict) or not isinstance(item.get("image"), str):
                raise ValueError(f"{path}: every entry needs an `image` pattern, got {item!r}")
            entries.append(Image(item["image"], tuple(map(str, item.get("entrypoint") or [])),
                                 tuple(map(str, item.get("cmd") or []))))
        return cls(tuple(entries))

    def find(self, image: str) -> Image | None:
        repo = repository(image)
        return next((e for e in self.entries if fnmatch.fnmatchcase(repo, e.pattern)), None)

    def argv(self, container: dict[str, object]) -> list[str] | None:
        """The container's program before `$(VAR)` expansion, or None when it cannot run here."""
        command = [str(c) for c in container.get("command") or []]  # type: ignore[attr-defined]
        args = [str(a) for a in container.get("args") or []]  # type: ignore[attr-defined]
        if command:
            return command + args
        entry = self.find(str(container.get("image", "")))
        if entry is None:
            return None
        argv = [*entry.entrypoint, *(args or entry.cmd)]
        return argv or None


def unmapped_message(image: str) -> str:
    return (f'image "{image}" has no entry in svcnet\'s image catalog and the container has no command; give the '
            f"container a `command`, or map the image in a catalog file (svcnet node --image-catalog FILE with "
            f"`- {{image: \"{repository(image)}\", entrypoint: [\"/path/to/program\"]}}`)")
