"""Client configuration from a kubeconfig file: server URL, bearer token, CA — pure parsing plus file reading.

Invariants: a kubeconfig without a usable cluster or context is a `ConfigError` naming what is missing; TLS
verification is on unless the kubeconfig says `insecure-skip-tls-verify: true`.
"""

from __future__ import annotations

import base64
import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


class ConfigError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class ClientConfig:
    server: str
    token: str = ""
    ca_data: bytes = b""
    insecure: bool = False
    namespace: str = "default"

    def ssl_context(self) -> ssl.SSLContext | bool:
        if not self.server.startswith("https://"):
            return False
        if self.insecure:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            return ctx
        ctx = ssl.create_default_context()
        if self.ca_data:
            ctx.load_verify_locations(cadata=self.ca_data.decode())
        return ctx


def _named(entries: list[dict[str, Any]] | None, name: str, what: str) -> dict[str, Any]:
    for entry in entries or []:
        if entry.get("name") == name:
            return dict(entry.get(what) or {})
    raise ConfigError(f"kubeconfig has no {what} named {name!r}")


def parse_kubeconfig(doc: dict[str, Any], base: Path, context: str = "") -> ClientConfig:
    context = context or doc.get("current-context") or ""
    if not context:
        raise ConfigError("kubeconfig has no current-context")
    ctx = _named(doc.get("contexts"), context, "context")
    cluster = _named(doc.get("clusters"), ctx.get("cluster", ""), "cluster")
    user = _named(doc.get("users"), ctx.get("user", ""), "user") if ctx.get("user") else {}
    if not cluster.get("server"):
        raise ConfigError(f"cluster {ctx.get('cluster')!r} has no server")
    ca = base64.b64decode(cluster["certificate-authority-data"]) if cluster.get("certificate-authority-data") \
        else (base / cluster["certificate-authority"]).read_bytes() if cluster.get("certificate-authority") else b""
    token = user.get("token") or ""
    if not token and user.get("tokenFile"):
        token = (base / user["tokenFile"]).read_text().strip()
    return ClientConfig(server=cluster["server"].rstrip("/"), token=token, ca_data=ca,
                        insecure=bool(cluster.get("insecure-skip-tls-verify")),
                        namespace=ctx.get("namespace") or "default")


def load_kubeconfig(path: str | Path | None = None, context: str = "") -> ClientConfig:
    """`path`, else $KUBECONFIG (first entry), else ~/.kube/config."""
    chosen = Path(path or (os.environ.get("KUBECONFIG") or "").split(os.pathsep)[0] or Path.home() / ".kube/config")
    try:
        doc = yaml.safe_load(chosen.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read kubeconfig {chosen}: {exc}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"kubeconfig {chosen} is not a mapping")
    return parse_kubeconfig(doc, chosen.parent, context)
