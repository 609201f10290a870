"""TLS termination for the ingress proxy: one `ssl.SSLContext` per HTTPS listener, certificates chosen by SNI.

A listener gets a stable `SniContext.context` once (the listening socket keeps it); each handshake's SNI callback
moves the connection to the context of the certificate that serves the name: exact host first, then `*.suffix`
for exactly one more label (`*.example.com` serves `a.example.com`, not `example.com` or `a.b.example.com`), else
the port's first certificate (also when the client sends no SNI). `update(certificates)` runs once per table
change and reloads only certificates whose PEM changed.

Keys never touch a disk: the PEM is handed to OpenSSL through an anonymous in-memory file (`memfd_create`, opened
by `/proc/self/fd/N` and closed right after loading). Where that is unavailable, a private 0700 temp dir with 0600
files is used and removed at once. A certificate that does not load is skipped and reported in `errors`.
Protocols: TLS 1.2 and 1.3 only; ALPN offers `http/1.1` (this proxy speaks no HTTP/2).
"""

from __future__ import annotations

import contextlib
import logging
import os
import ssl
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from svcnet.ingress.model import Certificate

log = logging.getLogger(__name__)


def new_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    return context


def load_context(cert_pem: bytes, key_pem: bytes) -> ssl.SSLContext:
    """A server context for one certificate chain and key given as PEM bytes; raises `ssl.SSLError`/`OSError`."""
    context = new_context()
    with _pem_paths(cert_pem, key_pem) as (cert_path, key_path):
        context.load_cert_chain(cert_path, key_path)
    return context


@contextlib.contextmanager
def _pem_paths(cert_pem: bytes, key_pem: bytes) -> Iterator[tuple[str, str]]:
    if hasattr(os, "memfd_create") and Path("/proc/self/fd").is_dir():
        fds = [os.memfd_create(name, os.MFD_CLOEXEC) for name in ("cert", "key")]
        try:
            for fd, data in zip(fds, (cert_pem, key_pem), strict=True):
                os.write(fd, data)
            yield f"/proc/self/fd/{fds[0]}", f"/proc/self/fd/{fds[1]}"
        finally:
            for fd in fds:
                os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="svcnet-tls-") as tmp:  # created 0700
        paths = []
        for name, data in (("cert.pem", cert_pem), ("key.pem", key_pem)):
            path = os.path.join(tmp, name)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            paths.append(path)
        yield paths[0], paths[1]


def select(name: str | None, exact: dict[str, ssl.SSLContext], wildcard: dict[str, ssl.SSLContext],
           default: ssl.SSLContext | None) -> ssl.SSLContext | None:
    """The context serving SNI `name` (pure: exact, then one-label wildcard, then the default)."""
    if name:
        name = name.lower().rstrip(".")
        found = exact.get(name)
        if found is not None:
            return found
        _, dot, parent = name.partition(".")
        if dot:
            found = wildcard.get(parent)
            if found is not None:
                return found
    return default


class SniContext:
    """The TLS side of one HTTPS listener; `update` swaps its certificates (atomically, for new handshakes)."""

    def __init__(self) -> None:
        self.context = new_context()
        self.context.sni_callback = self._on_sni
        self.errors: dict[str, str] = {}  # certificate source -> why it was skipped
        self._loaded: dict[tuple[bytes, bytes], ssl.SSLContext] = {}
        self._state: tuple[dict[str, ssl.SSLContext], dict[str, ssl.SSLContext], ssl.SSLContext | None] = (
            {}, {}, None)

    def update(self, certificates: Sequence[Certificate]) -> None:
        loaded: dict[tuple[bytes, bytes], ssl.SSLContext] = {}
        exact: dict[str, ssl.SSLContext] = {}
        wildcard: dict[str, ssl.SSLContext] = {}
        default: ssl.SSLContext | None = None
        errors: dict[str, str] = {}
        for cert in certificates:
            key = (cert.cert_pem, cert.key_pem)
            context = loaded.get(key) or self._loaded.get(key)
            if context is None:
                try:
                    context = load_context(cert.cert_pem, cert.key_pem)
                except (ssl.SSLError, OSError, ValueError) as exc:
                    errors[cert.source] = f"cannot load certificate and key: {exc}"
                    log.error("ingress TLS: %s: %s", cert.source, errors[cert.source])
                    continue
            loaded[key] = context
            default = default or context
            for host in cert.hosts:
                host = host.lower()
                if host.startswith("*."):
                    wildcard.setdefault(host[2:], context)
                else:
                    exact.setdefault(host, context)
        self._loaded, self.errors = loaded, errors
        self._state = (exact, wildcard, default)

    def _on_sni(self, conn: ssl.SSLObject | ssl.SSLSocket, name: str | None, _: ssl.SSLContext) -> int | None:
        context = select(name, *self._state)
        if context is None:
            return ssl.ALERT_DESCRIPTION_HANDSHAKE_FAILURE
        conn.context = context
        return None
