"""DNS unit tests. A small cluster as the API returns it (plain dicts, as informers hold them), shared by the tests."""

from __future__ import annotations

from typing import Any

from svcnet.dns import zone

Obj = dict[str, Any]


def service(name: str, ns: str = "dev", cluster_ips: tuple[str, ...] = (), ports: tuple[Obj, ...] = (),
            **spec: Any) -> Obj:
    body: Obj = {"ports": list(ports), **spec}
    if cluster_ips:
        body |= {"clusterIP": cluster_ips[0], "clusterIPs": list(cluster_ips)}
    return {"metadata": {"name": name, "namespace": ns, "resourceVersion": "1"}, "spec": body}


def port(name: str | None, number: int, protocol: str = "TCP") -> Obj:
    return {"port": number, "protocol": protocol, **({"name": name} if name else {})}


def endpoint(ip: str, hostname: str | None = None, ready: bool = True) -> Obj:
    return {"addresses": [ip], "conditions": {"ready": ready}, **({"hostname": hostname} if hostname else {})}


def slice_(service_name: str, endpoints: list[Obj], ports: tuple[Obj, ...] = (), ns: str = "dev",
           address_type: str = "IPv4", suffix: str = "x") -> Obj:
    return {"metadata": {"name": f"{service_name}-{suffix}", "namespace": ns,
                         "labels": {"kubernetes.io/service-name": service_name}},
            "addressType": address_type, "endpoints": endpoints, "ports": list(ports)}


def pod(name: str, ip: str, ns: str = "dev") -> Obj:
    return {"metadata": {"name": name, "namespace": ns}, "status": {"podIP": ip, "podIPs": [{"ip": ip}]}}


HTTP, DNS_UDP = port("http", 80), port("dns", 53, "UDP")

SERVICES = [
    service("web", cluster_ips=("10.96.0.10",), ports=(HTTP, DNS_UDP)),
    service("service-headliness", cluster_ips=("None",), ports=(HTTP,)),
    service("idle", cluster_ips=("None",), ports=(HTTP,)),
    service("warm", cluster_ips=("None",), ports=(HTTP,), publishNotReadyAddresses=True),
    service("service-externalname", type="ExternalName", externalName="www.baidu.com"),
    service("dual", cluster_ips=("10.96.0.20", "fd00::20"), ports=(HTTP,)),
    service("db", cluster_ips=("None",), ports=(port("pg", 5432),)),
    service("noports", cluster_ips=("10.96.0.30",)),
    service("kube-dns", ns="kube-system", cluster_ips=("10.96.0.53",), ports=(DNS_UDP,)),
]
SLICES = [
    slice_("web", [endpoint("10.244.1.10"), endpoint("10.244.1.11", ready=False)], (port("http", 8080), DNS_UDP)),
    slice_("service-headliness", [endpoint("10.244.0.5", "pod-0"), endpoint("10.244.0.6", "pod-1"),
                                  endpoint("10.244.0.7"), endpoint("10.244.0.8", "pod-3", ready=False)],
           (port("http", 8080),)),
    slice_("idle", [endpoint("10.244.4.1", "idle-0", ready=False)], (port("http", 8080),)),
    slice_("warm", [endpoint("10.244.2.1", "warm-0", ready=False)], (port("http", 8080),)),
    slice_("db", [endpoint("10.244.3.1", "db-0")], (port("pg", 5432),)),
    slice_("db", [endpoint("fd00:244::31", "db-0")], (port("pg", 5432),), address_type="IPv6", suffix="y"),
]
PODS = [pod("p1", "10.244.0.5"), pod("lonely", "10.244.9.9", ns="lonely")]
OPTIONS = zone.ZoneOptions(dns_ips=("10.96.0.53",), reverse_cidrs=("10.96.0.0/12", "fd00::/112"))


def build(ttl: int = 5, options: zone.ZoneOptions = OPTIONS, **kwargs: Any) -> zone.Zone:
    return zone.build(SERVICES, SLICES, PODS, ttl=ttl, options=options, **kwargs)
