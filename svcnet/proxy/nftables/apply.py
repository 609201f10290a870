"""Running `nft` transactions for the nftables proxy mode (its I/O half), inside the node's network namespace
(or the current one), and the conntrack cleanup of UDP endpoints that left.

Two ways in. A full sync (megabytes of text) runs `nft -f /dev/fd/0` as a process, started from a worker thread
and put in the namespace by `nsenter --net` (as the iptables applier does: no fork of the whole proxy by the
event loop, no mount namespace built by `ip netns exec`); the text may come in pieces, written to nft's stdin as
they are made (nft parses a pipe given by that name as it fills, `-f -` reads all of it first). A partial sync (a
few lines) goes through libnftables, the library `nft` is built on, loaded with ctypes: one context per applier,
made inside the namespace (its netlink socket stays there), run on a worker thread -- no process to start, which
saved 4-20 ms per partial sync on a 2-core VM (load 1.5-4), the busier the more. The context keeps nft's cache
only while the kernel's ruleset generation stays the same (cache.c `nft_cache_update` compares the genid), so
after each of our own commits -- or anyone else's -- it lists the kernel again: for the commands partial syncs
use, just the tables (diff.py). A failed run releases the cache. Without libnftables (the library
missing, or its context refused), partial syncs run `nft` as a process too.

Invariants: a failed transaction raises OSError with nft's message (the proxier then writes the whole table);
runs on the one context are serialised; commands run inside the namespace only (nsenter fails rather than
fall back to the current one, the context is made after entering it); `close` frees the context.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import subprocess
import tempfile
import threading
from collections.abc import Iterable

from svcnet.netns import NETNS_DIR, call_in_netns
from svcnet.proxy.iptables.apply import IptablesApplier
from svcnet.tools import which

LIBRARY = "libnftables.so.1"


def _load(name: str) -> ctypes.CDLL | None:
    """libnftables with the signatures used here, or None when it cannot be loaded."""
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return None
    lib.nft_ctx_new.restype, lib.nft_ctx_new.argtypes = ctypes.c_void_p, [ctypes.c_uint32]
    lib.nft_ctx_free.restype, lib.nft_ctx_free.argtypes = None, [ctypes.c_void_p]
    lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
    lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    for buffer in ("output", "error"):
        getattr(lib, f"nft_ctx_buffer_{buffer}").argtypes = [ctypes.c_void_p]
        getter = getattr(lib, f"nft_ctx_get_{buffer}_buffer")
        getter.restype, getter.argtypes = ctypes.c_char_p, [ctypes.c_void_p]
    return lib


class NftContext:
    """A libnftables context whose netlink socket was opened in `netns` ("" for the current namespace)."""

    def __init__(self, lib: ctypes.CDLL, netns: str = "") -> None:
        self.lib = lib
        self.lock = threading.Lock()
        self.ctx = call_in_netns(netns, lambda: lib.nft_ctx_new(0)) if netns else lib.nft_ctx_new(0)
        if not self.ctx:
            raise OSError("nft_ctx_new: no libnftables context")
        lib.nft_ctx_buffer_output(self.ctx)  # nothing is printed on the proxy's own stdout / stderr
        lib.nft_ctx_buffer_error(self.ctx)

    def run(self, text: str) -> None:
        """One `nft -f` transaction; raises OSError with nft's message when it fails."""
        with self.lock:
            if not self.ctx:
                raise OSError("nft: context closed")
            failed = self.lib.nft_run_cmd_from_buffer(self.ctx, text.encode()) != 0
            self.lib.nft_ctx_get_output_buffer(self.ctx)  # each read rewinds its buffer for the next run
            err = self.lib.nft_ctx_get_error_buffer(self.ctx) or b""
        if failed:
            raise OSError(f"nft -f: {err.decode(errors='replace').strip()}")

    def close(self) -> None:
        with self.lock:
            if self.ctx:
                self.lib.nft_ctx_free(self.ctx)
                self.ctx = None


class NftablesApplier:
    """`apply` (a process) for whole tables, `apply_partial` (libnftables) for partial syncs, UDP cleanup."""

    def __init__(self, netns: str = "") -> None:
        self.netns = netns
        self.library = LIBRARY  # "" once it failed to load
        self.context: NftContext | None = None
        self.conntrack = IptablesApplier(netns)  # its forget_udp_flows is mode-independent

    async def apply(self, text: str | Iterable[str]) -> None:
        """One `nft -f` transaction, as one text or as the pieces of one (`compile.WholeTable`), handed to `nft`
        as they come (the iteration runs on the worker thread)."""
        await asyncio.to_thread(self._load, [text] if isinstance(text, str) else text)

    def _load(self, pieces: Iterable[str]) -> None:
        """`nft -f /dev/fd/0`: unlike `-f -`, nft parses the pipe as it fills. If the pieces fail (an exception
        before the last one), nft is killed before it sees the end of its input: nothing is committed."""
        prefix = [which("nsenter"), f"--net={NETNS_DIR / self.netns}", "--"] if self.netns else []
        with tempfile.TemporaryFile() as errors:  # not a pipe: nft never waits on us while we wait on it
            nft = subprocess.Popen([*prefix, which("nft"), "-f", "/dev/fd/0"], stdin=subprocess.PIPE,
                                   stdout=subprocess.DEVNULL, stderr=errors)
            assert nft.stdin is not None
            try:
                with contextlib.suppress(BrokenPipeError):  # nft stopped reading: its status and message say why
                    for piece in pieces:
                        nft.stdin.write(piece.encode())
            except BaseException:
                nft.kill()
                raise
            finally:
                with contextlib.suppress(BrokenPipeError):
                    nft.stdin.close()
                nft.wait()
            if nft.returncode != 0:
                errors.seek(0)
                raise OSError(f"nft -f: {errors.read().decode(errors='replace').strip()}")

    def _context(self) -> NftContext | None:
        if self.context is None and self.library:
            lib = _load(self.library)
            try:
                self.context = NftContext(lib, self.netns) if lib is not None else None
            except OSError:
                self.context = None
            if self.context is None:
                self.library = ""  # not again: partial syncs run `nft` as a process from now on
        return self.context

    async def apply_partial(self, text: str) -> None:
        """A small transaction, through libnftables when it is there."""
        context = await asyncio.to_thread(self._context)
        if context is None:
            await self.apply(text)
        else:
            await asyncio.to_thread(context.run, text)

    async def forget_udp_flows(self, pairs: Iterable[tuple[str, str]]) -> None:
        await self.conntrack.forget_udp_flows(pairs)

    def close(self) -> None:
        if self.context is not None:
            self.context.close()
            self.context = None
