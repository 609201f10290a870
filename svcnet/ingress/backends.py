"""Services → backends and Secrets → certificates, for both compilers — pure.

A backend is a Service port resolved to the ready endpoints of the Service's EndpointSlices (never the
ClusterIP): the Service port is found by number or by name, the slice port by the Service port's name (so a
named targetPort works through the slices), endpoints whose `conditions.ready` is not false count, each by its
first address. Endpoints are deduplicated and sorted.

A certificate comes from a Secret of type `kubernetes.io/tls` whose data holds base64 `tls.crt` and `tls.key`.
Each failure is a sentence that says what is wrong, for a Problem or a status message.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass

from svcnet.ingress.common import Obj, dict_of, list_of, meta, name_of, namespace_of, spec
from svcnet.ingress.model import Backend, Certificate, Endpoint

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
TLS_SECRET_TYPE = "kubernetes.io/tls"


@dataclass(frozen=True, slots=True)
class ServiceIndex:
    services: dict[tuple[str, str], Obj]
    slices: dict[tuple[str, str], tuple[Obj, ...]]  # (namespace, service name) -> its EndpointSlices
    secrets: dict[tuple[str, str], Obj]

    def has_service(self, namespace: str, name: str) -> bool:
        return (namespace, name) in self.services

    def backend(self, namespace: str, name: str, port: int | str, weight: int = 1,
                status_when_empty: int = 503) -> tuple[Backend, str]:
        """The backend for Service `namespace/name` port (number or name), and "" or why it has no endpoints."""
        label = f"{namespace}/{name}:{port}"
        service = self.services.get((namespace, name))
        if service is None:
            return Backend(label, (), weight, status_when_empty), f"service {namespace}/{name} not found"
        if spec(service).get("type") == "ExternalName":
            return (Backend(label, (), weight, status_when_empty),
                    f"service {namespace}/{name} is of type ExternalName, which has no endpoints")
        service_port = _find_port(service, port)
        if service_port is None:
            what = "port name" if isinstance(port, str) else "port"
            return (Backend(label, (), weight, status_when_empty),
                    f"service {namespace}/{name} has no {what} {port!r}")
        port_name = str(service_port.get("name") or "")
        label = f"{namespace}/{name}:{service_port.get('port')}"
        endpoints = self._endpoints(namespace, name, port_name)
        return Backend(label, endpoints, weight, status_when_empty), ""

    def _endpoints(self, namespace: str, service: str, port_name: str) -> tuple[Endpoint, ...]:
        found: set[Endpoint] = set()
        for eps in self.slices.get((namespace, service), ()):
            number = _slice_port(eps, port_name)
            if number is None:
                continue
            for endpoint in list_of(eps.get("endpoints")):
                endpoint = dict_of(endpoint)
                addresses = list_of(endpoint.get("addresses"))
                if addresses and dict_of(endpoint.get("conditions")).get("ready") is not False:
                    found.add(Endpoint(str(addresses[0]), number))
        return tuple(sorted(found, key=lambda e: (e.ip, e.port)))

    def certificate(self, namespace: str, name: str, hosts: tuple[str, ...]) -> tuple[Certificate | None, str]:
        """The certificate in Secret `namespace/name` served for `hosts`, or None and why not."""
        secret = self.secrets.get((namespace, name))
        if secret is None:
            return None, f"secret {namespace}/{name} not found"
        if secret.get("type") != TLS_SECRET_TYPE:
            return None, f"secret {namespace}/{name} is of type {secret.get('type')!r}, not {TLS_SECRET_TYPE}"
        data = dict_of(secret.get("data"))
        pem: list[bytes] = []
        for key in ("tls.crt", "tls.key"):
            try:
                value = base64.b64decode(str(data.get(key) or ""), validate=True)
            except (binascii.Error, ValueError):
                return None, f"secret {namespace}/{name}: {key} is not valid base64"
            if not value:
                return None, f"secret {namespace}/{name} has no {key}"
            pem.append(value)
        return Certificate(f"{namespace}/{name}", hosts, pem[0], pem[1]), ""


def index_services(services: Sequence[Obj], slices: Sequence[Obj], secrets: Sequence[Obj]) -> ServiceIndex:
    by_service: dict[tuple[str, str], list[Obj]] = {}
    for eps in slices:
        owner = dict_of(meta(eps).get("labels")).get(SERVICE_NAME_LABEL)
        if owner:
            by_service.setdefault((namespace_of(eps), str(owner)), []).append(eps)
    return ServiceIndex(
        services={(namespace_of(s), name_of(s)): s for s in services},
        slices={key: tuple(sorted(group, key=name_of)) for key, group in by_service.items()},
        secrets={(namespace_of(s), name_of(s)): s for s in secrets},
    )


def _find_port(service: Obj, port: int | str) -> Obj | None:
    for candidate in list_of(spec(service).get("ports")):
        candidate = dict_of(candidate)
        if isinstance(port, str) and candidate.get("name") == port:
            return candidate
        if isinstance(port, int) and candidate.get("port") == port:
            return candidate
    return None


def _slice_port(eps: Obj, port_name: str) -> int | None:
    for port in list_of(eps.get("ports")):
        port = dict_of(port)
        if str(port.get("name") or "") == port_name and isinstance(port.get("port"), int):
            return int(port["port"])
    return None
