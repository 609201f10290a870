"""What a pod's spec means for the processes that run it — pure.

- `service_env`: the variables Kubernetes injects for services (`{SVC}_SERVICE_HOST`, `{SVC}_SERVICE_PORT`,
  `{SVC}_SERVICE_PORT_{NAME}` and the docker-link `{SVC}_PORT*` family), for the services that exist when the
  container starts; only services with a ClusterIP; the `kubernetes` service of `default` always, the pod's own
  namespace's only with `enableServiceLinks` (default true).
- `container_env`: the downward variables (POD_IP, POD_NAME, POD_NAMESPACE, HOSTNAME), the container's `env`
  (`value` with `$(VAR)` expansion, `valueFrom.fieldRef`, `configMapKeyRef`, `secretKeyRef`) and `envFrom`; the
  container's own variables win over service variables, as in the kubelet.
- `named_port`, `resolv_conf`, `hosts_file`: ports by name, the pod's DNS configuration and /etc/hosts.
Errors a user must fix (a missing ConfigMap key) raise `SpecError` with the kubelet's wording.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]


class SpecError(ValueError):
    """The pod cannot start as specified (the reason goes into the container's waiting state)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _env_name(service: str) -> str:
    return service.upper().replace("-", "_")


def _one_service_env(svc: Obj) -> dict[str, str]:
    spec = svc.get("spec", {})
    ip, ports = spec.get("clusterIP"), spec.get("ports") or []
    if not ip or ip == "None" or not ports:
        return {}
    name = _env_name(svc["metadata"]["name"])
    env = {f"{name}_SERVICE_HOST": ip, f"{name}_SERVICE_PORT": str(ports[0]["port"])}
    for port in ports:
        if port.get("name"):
            env[f"{name}_SERVICE_PORT_{_env_name(port['name'])}"] = str(port["port"])
    first = ports[0]
    env[f"{name}_PORT"] = f"{first.get('protocol', 'TCP').lower()}://{ip}:{first['port']}"
    for port in ports:
        proto = port.get("protocol", "TCP")
        prefix = f"{name}_PORT_{port['port']}_{proto}"
        env[prefix] = f"{proto.lower()}://{ip}:{port['port']}"
        env[f"{prefix}_PROTO"] = proto.lower()
        env[f"{prefix}_PORT"] = str(port["port"])
        env[f"{prefix}_ADDR"] = ip
    return env


def service_env(pod: Obj, services: list[Obj]) -> dict[str, str]:
    namespace = pod["metadata"].get("namespace", "default")
    links = pod.get("spec", {}).get("enableServiceLinks", True) is not False
    env: dict[str, str] = {}
    for svc in sorted(services, key=lambda s: s["metadata"]["name"]):
        meta = svc["metadata"]
        if meta.get("namespace") == namespace and links:
            env.update(_one_service_env(svc))
    for svc in services:  # the master service, never shadowed
        if svc["metadata"].get("namespace") == "default" and svc["metadata"]["name"] == "kubernetes":
            env.update(_one_service_env(svc))
    return env


_VAR = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes `$(VAR)` expansion: known variables are replaced, unknown ones left as written, `$$` is `$`."""
    def sub(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))
    return _VAR.sub(sub, text)


@dataclass(frozen=True)
class PodContext:
    """Facts about the running pod that variables and files refer to."""
    pod_ip: str
    host_ip: str
    node_name: str
    config_maps: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # name -> data
    secrets: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # name -> data (base64 as stored)


def _field_ref(pod: Obj, path: str, ctx: PodContext) -> str:
    meta, spec = pod["metadata"], pod.get("spec", {})
    simple = {"metadata.name": meta.get("name", ""), "metadata.namespace": meta.get("namespace", ""),
              "metadata.uid": meta.get("uid", ""), "spec.nodeName": spec.get("nodeName", ctx.node_name),
              "spec.serviceAccountName": spec.get("serviceAccountName", ""), "status.hostIP": ctx.host_ip,
              "status.hostIPs": ctx.host_ip, "status.podIP": ctx.pod_ip, "status.podIPs": ctx.pod_ip}
    if path in simple:
        return str(simple[path])
    match = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    if match:
        return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
    raise SpecError("CreateContainerConfigError", f'unsupported fieldRef fieldPath "{path}"')


def _key_ref(ref: Obj, source: Mapping[str, Mapping[str, str]], what: str, decode: bool) -> str | None:
    name, key = ref.get("name", ""), ref.get("key", "")
    data = source.get(name)
    if data is None or key not in data:
        if ref.get("optional"):
            return None
        missing = f'{what} "{name}" not found' if data is None else f'couldn\'t find key {key} in {what} {name}'
        raise SpecError("CreateContainerConfigError", missing)
    value = data[key]
    return base64.b64decode(value).decode(errors="replace") if decode else value


def _value_from(pod: Obj, source: Obj, ctx: PodContext) -> str | None:
    if "fieldRef" in source:
        return _field_ref(pod, source["fieldRef"].get("fieldPath", ""), ctx)
    if "configMapKeyRef" in source:
        return _key_ref(source["configMapKeyRef"], ctx.config_maps, "configmap", decode=False)
    if "secretKeyRef" in source:
        return _key_ref(source["secretKeyRef"], ctx.secrets, "secret", decode=True)
    if "resourceFieldRef" in source:
        return "0"
    return None


def _env_from(entry: Obj, ctx: PodContext) -> dict[str, str]:
    prefix = entry.get("prefix", "")
    for kind, source, decode in (("configMapRef", ctx.config_maps, False), ("secretRef", ctx.secrets, True)):
        ref = entry.get(kind)
        if ref is None:
            continue
        data = source.get(ref.get("name", ""))
        if data is None:
            if ref.get("optional"):
                return {}
            what = "configmap" if kind == "configMapRef" else "secret"
            raise SpecError("CreateContainerConfigError", f'{what} "{ref.get("name")}" not found')
        return {prefix + k: (base64.b64decode(v).decode(errors="replace") if decode else v) for k, v in data.items()}
    return {}


def hostname(pod: Obj) -> str:
    return str(pod.get("spec", {}).get("hostname") or pod["metadata"]["name"])


def container_env(pod: Obj, container: Obj, ctx: PodContext, services: list[Obj]) -> dict[str, str]:
    """The environment of one container, in the kubelet's order of precedence."""
    meta = pod["metadata"]
    env = {"HOSTNAME": hostname(pod), "POD_IP": ctx.pod_ip, "POD_NAME": meta["name"],
           "POD_NAMESPACE": meta.get("namespace", "default"), "NODE_NAME": ctx.node_name}
    own: dict[str, str] = {}
    for entry in container.get("envFrom") or []:
        own.update(_env_from(entry, ctx))
    for var in container.get("env") or []:
        if "valueFrom" in var:
            value = _value_from(pod, var["valueFrom"], ctx)
            if value is not None:
                own[var["name"]] = value
        else:
            own[var["name"]] = expand(var.get("value", ""), {**service_env(pod, services), **env, **own})
    return {**service_env(pod, services), **env, **own}


def command_line(container: Obj, env: Mapping[str, str], image_command: list[str]) -> list[str]:
    """The argv: `command` (or the image's entry point) then `args`, both with `$(VAR)` expanded."""
    command = [expand(c, env) for c in container.get("command") or []]
    args = [expand(a, env) for a in container.get("args") or []]
    if command:
        return command + args
    return image_command + args


def named_port(pod: Obj, port: int | str, container: Obj | None = None) -> int | None:
    """A probe's or service's port: a number, or the name of a container port (this container's first)."""
    if isinstance(port, int) or (isinstance(port, str) and port.isdigit()):
        return int(port)
    containers = [container] if container else pod.get("spec", {}).get("containers", [])
    for c in containers:
        for p in c.get("ports") or []:
            if p.get("name") == port:
                return int(p["containerPort"])
    return None


def resolv_conf(pod: Obj, cluster_dns: list[str], domain: str, host_resolv: str) -> str:
    """/etc/resolv.conf for the pod: ClusterFirst points at cluster DNS with the Kubernetes search path; Default
    copies the host's; None takes dnsConfig only; dnsConfig options and servers are merged in."""
    spec = pod.get("spec", {})
    policy = spec.get("dnsPolicy", "ClusterFirst")
    if policy == "ClusterFirstWithHostNet" or (policy == "ClusterFirst" and not spec.get("hostNetwork")):
        policy = "ClusterFirst"
    elif policy == "ClusterFirst":
        policy = "Default"
    servers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    if policy == "ClusterFirst" and cluster_dns:
        namespace = pod["metadata"].get("namespace", "default")
        servers = list(cluster_dns)
        searches = [f"{namespace}.svc.{domain}", f"svc.{domain}", domain]
        options = ["ndots:5"]
    elif policy != "None":
        for line in host_resolv.splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "nameserver":
                servers.append(parts[1])
            elif parts and parts[0] in ("search", "domain"):
                searches.extend(parts[1:])
            elif parts and parts[0] == "options":
                options.extend(parts[1:])
    config = spec.get("dnsConfig") or {}
    servers += [s for s in config.get("nameservers") or [] if s not in servers]
    searches += [s for s in config.get("searches") or [] if s not in searches]
    for opt in config.get("options") or []:
        name = opt.get("name", "")
        options = [o for o in options if o.split(":")[0] != name]
        options.append(f"{name}:{opt['value']}" if opt.get("value") is not None else name)
    lines = [f"nameserver {s}" for s in servers[:3]]
    if searches:
        lines.append("search " + " ".join(searches[:32]))
    if options:
        lines.append("options " + " ".join(options))
    return "\n".join(lines) + "\n"


def hosts_file(pod: Obj, pod_ip: str, domain: str) -> str:
    """/etc/hosts as the kubelet writes it: localhost lines, the pod's own name (FQDN with a subdomain), hostAliases."""
    spec, meta = pod.get("spec", {}), pod["metadata"]
    name = hostname(pod)
    lines = ["# Kubernetes-managed hosts file.", "127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback",
             "fe00::0\tip6-localnet", "fe00::0\tip6-mcastprefix", "fe00::1\tip6-allnodes", "fe00::2\tip6-allrouters"]
    if spec.get("subdomain"):
        fqdn = f"{name}.{spec['subdomain']}.{meta.get('namespace', 'default')}.svc.{domain}"
        lines.append(f"{pod_ip}\t{fqdn}\t{name}")
    else:
        lines.append(f"{pod_ip}\t{name}")
    for alias in spec.get("hostAliases") or []:
        lines.append(f"{alias.get('ip')}\t" + "\t".join(alias.get("hostnames") or []))
    return "\n".join(lines) + "\n"
