"""A route table as text, one line per route in precedence order — pure; for golden files and debugging output.

```
:80 http
  host foo.example.com
    Prefix /api GET header:x-env=canary query:v~^[0-9]+$ -> default/api:80 w=80 [10.244.1.5:8080], ... (source)
```
Hosts print exact first, then one-label wildcards (`*.suffix`), then wildcards of one or more labels
(`**.suffix`), then the default host (`*`), each longest suffix first — the order a lookup tries them.
"""

from __future__ import annotations

from svcnet.ingress.model import MatchType, PortRoutes, Route, RouteTable, ValueMatch, VirtualHost


def render_table(table: RouteTable) -> str:
    lines: list[str] = []
    for port in sorted(table.ports):
        lines.extend(_render_port(table.ports[port]))
    return "\n".join(lines) + "\n"


def _render_port(routes: PortRoutes) -> list[str]:
    lines = [f":{routes.port} {'https' if routes.tls else 'http'}"]
    for certificate in routes.certificates:
        lines.append(f"  certificate {certificate.source} for {', '.join(certificate.hosts) or '(any)'}")
    hosts: list[tuple[str, VirtualHost]] = sorted(routes.exact_hosts.items())
    hosts += [(f"*{suffix}", vhost) for suffix, vhost in routes.wildcard_hosts]
    hosts += [(f"**{suffix}", vhost) for suffix, vhost in routes.suffix_hosts]
    if routes.default_host is not None:
        hosts.append(("*", routes.default_host))
    for name, vhost in hosts:
        lines.append(f"  host {name}")
        lines.extend(f"    {render_route(route)}" for route in vhost.routes)
    return lines


def render_route(route: Route) -> str:
    parts = [route.path.type.value, route.path.value]
    if route.method:
        parts.append(route.method)
    parts += [f"header:{_value(m)}" for m in route.headers] + [f"query:{_value(m)}" for m in route.query]
    if route.request_headers is not None:
        mod = route.request_headers
        parts += [f"set:{n}={v}" for n, v in mod.set] + [f"add:{n}={v}" for n, v in mod.add]
        parts += [f"remove:{n}" for n in mod.remove]
    if route.redirect is not None:
        r = route.redirect
        fields = {"scheme": r.scheme, "hostname": r.hostname, "port": r.port, "path": r.full_path,
                  "prefix": r.prefix_path}
        target = " ".join(f"{k}={v}" for k, v in fields.items() if v is not None)
        parts.append(f"=> {r.status_code} {target}".rstrip())
    else:
        backends = ", ".join(
            f"{b.name} w={b.weight} [{' '.join(f'{e.ip}:{e.port}' for e in b.endpoints) or f'{b.status_when_empty}'}]"
            for b in route.backends)
        parts.append(f"-> {backends or route.status_when_empty}")
    return " ".join(parts) + f" ({route.source})"


def _value(match: ValueMatch) -> str:
    return f"{match.name}{'~' if match.type is MatchType.REGEX else '='}{match.value}"
