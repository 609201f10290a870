"""Authentication and authorization: bearer tokens, a generated CA and serving certificate, the admin kubeconfig.

Invariants: without a valid token a request is 401 (except the public paths kube-apiserver lets anonymous users
read: /version, /healthz, /livez, /readyz); the read-only token may only get, list and watch (403 otherwise).
Key material is created once in `<data-dir>/pki` and reused, so kubeconfigs stay valid across restarts.
"""

from __future__ import annotations

import datetime
import hmac
import ipaddress
import os
import secrets
import ssl
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

PUBLIC_PATHS = frozenset({"/version", "/healthz", "/livez", "/readyz"})
READ_VERBS = frozenset({"get", "list", "watch"})
ADMIN_USER = "svcnet-admin"
READONLY_USER = "svcnet-readonly"


@dataclass(frozen=True, slots=True)
class User:
    name: str
    read_only: bool


@dataclass(frozen=True, slots=True)
class Tokens:
    admin: str
    read_only: str

    def user_for(self, header: str | None) -> User | None:
        if not header or not header.startswith("Bearer "):
            return None
        token = header[len("Bearer "):].strip()
        if hmac.compare_digest(token, self.admin):
            return User(ADMIN_USER, False)
        if hmac.compare_digest(token, self.read_only):
            return User(READONLY_USER, True)
        return None


def load_tokens(data_dir: Path) -> Tokens:
    """Tokens from `<data-dir>/tokens.csv` (kube's static token file format: token,user,uid), made once."""
    path = data_dir / "tokens.csv"
    if not path.exists():
        lines = f"{secrets.token_hex(24)},{ADMIN_USER},1\n{secrets.token_hex(24)},{READONLY_USER},2\n"
        _write_private(path, lines.encode())
    rows = dict(_parse_token_line(line) for line in path.read_text().splitlines() if line.strip())
    return Tokens(admin=rows[ADMIN_USER], read_only=rows[READONLY_USER])


def _parse_token_line(line: str) -> tuple[str, str]:
    token, user = line.split(",")[:2]
    return user, token


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


@dataclass(frozen=True, slots=True)
class Pki:
    ca_cert: Path
    server_cert: Path
    server_key: Path

    def ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.server_cert, self.server_key)
        return ctx


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def ensure_pki(data_dir: Path, hosts: list[str]) -> Pki:
    """A CA and a serving certificate for `hosts` (IPs or DNS names) under `<data-dir>/pki`; the serving
    certificate is re-issued when the host list grows."""
    pki = data_dir / "pki"
    paths = Pki(pki / "ca.crt", pki / "apiserver.crt", pki / "apiserver.key")
    ca_key_path = pki / "ca.key"
    if not paths.ca_cert.exists() or not ca_key_path.exists():
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = _certificate(_name("svcnet-ca"), _name("svcnet-ca"), ca_key.public_key(), ca_key, ca=True, hosts=[])
        _write_private(ca_key_path, _pem_key(ca_key))
        paths.ca_cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    if not paths.server_cert.exists() or not _covers(paths.server_cert, hosts):
        ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), None)
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _certificate(_name("svcnet-apiserver"), _name("svcnet-ca"), key.public_key(), ca_key, ca=False,
                            hosts=hosts)
        _write_private(paths.server_key, _pem_key(key))
        paths.server_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return paths


def _covers(cert_path: Path, hosts: list[str]) -> bool:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    present = {str(v) for v in san.get_values_for_type(x509.IPAddress)} | set(san.get_values_for_type(x509.DNSName))
    return set(hosts) <= present


def _certificate(subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey,
                 signing_key: ec.EllipticCurvePrivateKey, ca: bool, hosts: list[str]) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=3650 if ca else 365))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if hosts:
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(signing_key, hashes.SHA256())


def kubeconfig(server: str, token: str | None, ca_cert: Path | None, user: str = ADMIN_USER) -> str:
    """A kubeconfig for one cluster/user/context named svcnet."""
    cluster: dict[str, object] = {"server": server}
    if ca_cert is not None:
        import base64

        cluster["certificate-authority-data"] = base64.b64encode(ca_cert.read_bytes()).decode()
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "svcnet", "cluster": cluster}],
        "users": [{"name": user, "user": {"token": token} if token else {}}],
        "contexts": [{"name": "svcnet", "context": {"cluster": "svcnet", "user": user, "namespace": "default"}}],
        "current-context": "svcnet",
        "preferences": {},
    }
    return yaml.safe_dump(doc, sort_keys=False)


def write_kubeconfig(path: Path, text: str) -> None:
    _write_private(path, text.encode())
