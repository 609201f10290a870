"""The pod sandbox's first moments (the "pause" container's role), run by `unshare` inside the pod's new mount
namespace: give the pod its own /etc/resolv.conf, /etc/hosts and /tmp, then become `sleep infinity` so the
namespace lives as long as this process. Containers and `kubectl exec` join it with nsenter.

Paths that must stay visible inside the pod but live under /tmp (the pod directory, the Python running the
built-in images) are re-bound after /tmp is replaced, through file descriptors opened before. Standard library
only, so it starts fast. Usage: sandbox_init POD_DIR [KEEP_PATH...]; prints `ready` once set up.
"""

from __future__ import annotations

import ctypes
import os
import sys

MS_BIND = 4096
MS_REC = 16384
_libc = ctypes.CDLL(None, use_errno=True)


def _bind(source: str, target: str) -> None:
    if _libc.mount(source.encode(), target.encode(), None, MS_BIND | MS_REC, None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"bind {source} on {target}: {os.strerror(err)}")


def _under_tmp(path: str) -> bool:
    return path == "/tmp" or path.startswith("/tmp/")


def main(argv: list[str]) -> int:
    pod_dir, keep = argv[0], [p for p in argv[1:] if os.path.isdir(p)]
    held = {path: os.open(path, os.O_PATH | os.O_DIRECTORY) for path in [pod_dir, *keep] if _under_tmp(path)}
    for name in ("resolv.conf", "hosts"):
        if os.path.exists(f"/etc/{name}"):
            _bind(f"{pod_dir}/{name}", f"/etc/{name}")
    _bind(f"{pod_dir}/tmp", "/tmp")
    for path, fd in held.items():
        os.makedirs(path, exist_ok=True)
        _bind(f"/proc/self/fd/{fd}", path)
        os.close(fd)
    os.write(1, b"ready\n")
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1):
        os.dup2(devnull, fd)
    os.execvp("sleep", ["sleep", "infinity"])
    return 1


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except OSError as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        sys.exit(1)
