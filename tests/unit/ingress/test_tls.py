"""TLS termination: SNI picks the certificate (exact, one-label wildcard, else the port's first), checked with
real curl against the running proxy; the pure selection table; bad PEM reported, not raised; TLS < 1.2 refused."""

from __future__ import annotations

import datetime
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from svcnet.ingress import tls
from svcnet.ingress.model import Backend, Certificate, RouteTable
from tests.unit.ingress.test_proxy import AppBackend, curl, free_port, prefix, running, table

_NOW = datetime.datetime.now(datetime.UTC)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _ca() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name("svcnet test CA")).issuer_name(_name("svcnet test CA"))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(_NOW - datetime.timedelta(hours=1)).not_valid_after(_NOW + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def _leaf(ca: tuple[ec.EllipticCurvePrivateKey, x509.Certificate], *hosts: str) -> tuple[bytes, bytes]:
    ca_key, ca_cert = ca
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name(hosts[0])).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(_NOW - datetime.timedelta(hours=1)).not_valid_after(_NOW + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hosts]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, tuple[Certificate, ...]]:
    ca = _ca()
    ca_file = tmp_path_factory.mktemp("pki") / "ca.crt"
    ca_file.write_bytes(ca[1].public_bytes(serialization.Encoding.PEM))
    certs = tuple(Certificate(f"default/{hosts[0]}", hosts, *_leaf(ca, *hosts))
                  for hosts in (("a.test",), ("*.b.test",), ("c.test", "www.c.test")))
    return ca_file, certs


@pytest.fixture
async def backend() -> AsyncIterator[AppBackend]:
    b = await AppBackend("A", "127.0.0.2").start()
    yield b
    await b.stop()


def _https_table(port: int, backend: AppBackend, certs: tuple[Certificate, ...]) -> RouteTable:
    route = (prefix("/", Backend("ns/a:80", (backend.endpoint,))),)
    return table(port, {"a.test": route, "x.b.test": route, "c.test": route}, default=route, tls=True,
                 certificates=certs)


@pytest.mark.parametrize(("host", "subject", "verified"), [
    pytest.param("a.test", "CN=a.test", True, id="exact"),
    pytest.param("x.b.test", "CN=*.b.test", True, id="wildcard, one label"),
    pytest.param("www.c.test", "CN=c.test", True, id="second name of a certificate"),
    pytest.param("y.x.b.test", "CN=a.test", False, id="wildcard covers one label only: default"),
    pytest.param("other.test", "CN=a.test", False, id="unknown: the first certificate"),
])
async def test_sni_picks_the_certificate(pki: tuple[Path, tuple[Certificate, ...]], backend: AppBackend,
                                         host: str, subject: str, verified: bool) -> None:
    ca_file, certs = pki
    port = free_port()
    async with running(_https_table(port, backend, certs)):
        code, out, err = await curl("-v", "--cacert", str(ca_file), "--resolve", f"{host}:{port}:127.0.0.1",
                                    *([] if verified else ["-k"]), f"https://{host}:{port}/p")
        assert code == 0, err
        assert f"subject: {subject}" in err
        assert "ALPN: server accepted http/1.1" in err
        assert out == "A GET /p 0"
        if verified:
            code, _, _ = await curl("--cacert", str(ca_file), "--resolve", f"{host}:{port}:127.0.0.1",
                                    f"https://{host}:{port}/p")
            assert code == 0
    assert backend.requests[0].headers["X-Forwarded-Proto"] == "https"


async def test_tls_1_2_is_the_minimum(pki: tuple[Path, tuple[Certificate, ...]], backend: AppBackend) -> None:
    ca_file, certs = pki
    port = free_port()
    sni = tls.SniContext()
    sni.update(certs)
    exact, _, _ = sni._state
    assert {c.minimum_version for c in (sni.context, *exact.values())} == {ssl.TLSVersion.TLSv1_2}
    async with running(_https_table(port, backend, certs)):
        for version in ("--tlsv1.2", "--tlsv1.3"):
            code, out, err = await curl(version, "--tls-max", version[6:], "--cacert", str(ca_file),
                                        "--resolve", f"a.test:{port}:127.0.0.1", f"https://a.test:{port}/")
            assert (code, out) == (0, "A GET / 0"), err


@pytest.mark.parametrize(("name", "expected"), [
    pytest.param("a.test", "exact", id="exact"),
    pytest.param("A.Test.", "exact", id="case and trailing dot"),
    pytest.param("x.b.test", "wild", id="wildcard"),
    pytest.param("b.test", "default", id="wildcard does not cover its own suffix"),
    pytest.param("y.x.b.test", "default", id="wildcard covers one label"),
    pytest.param(None, "default", id="no SNI"),
    pytest.param("", "default", id="empty SNI"),
])
def test_select(name: str | None, expected: str) -> None:
    contexts = {key: ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER) for key in ("exact", "wild", "default")}
    chosen = tls.select(name, {"a.test": contexts["exact"]}, {"b.test": contexts["wild"]}, contexts["default"])
    assert chosen is contexts[expected]


def test_bad_pem_is_reported_not_raised(pki: tuple[Path, tuple[Certificate, ...]]) -> None:
    _, certs = pki
    sni = tls.SniContext()
    broken = Certificate("default/broken", ("bad.test",), b"not a certificate", b"not a key")
    mismatched = Certificate("default/mismatched", ("m.test",), certs[0].cert_pem, certs[1].key_pem)
    sni.update((broken, mismatched, certs[0]))
    assert set(sni.errors) == {"default/broken", "default/mismatched"}
    exact, _, default = sni._state
    assert set(exact) == {"a.test"} and default is exact["a.test"]
