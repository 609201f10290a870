"""The `svcnet` command: one subcommand per component.

`svcnet apiserver` runs the API server alone; `svcnet up` runs the cluster (for now: the API server with the
embedded store) and prints what a user needs to reach it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from svcnet.store import StoreError

if TYPE_CHECKING:  # the API server and the client (aiohttp and the rest: ~0.3 s) are imported where used
    from svcnet.apiserver.server import APIServerConfig


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "svcnet"


def _port_range(text: str) -> tuple[int, int]:
    try:
        low, high = (int(p) for p in text.split("-"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a range like 30000-32767, got {text!r}") from None
    if not 0 < low <= high < 65536:
        raise argparse.ArgumentTypeError(f"invalid port range {text!r}")
    return low, high


def _add_apiserver_flags(p: argparse.ArgumentParser, default_cidr: str) -> None:
    p.add_argument("--data-dir", type=Path, default=default_data_dir(), help="state, PKI and kubeconfig")
    p.add_argument("--bind-address", default="127.0.0.1")
    p.add_argument("--port", type=int, default=6443, help="0 picks a free port")
    p.add_argument("--service-cluster-ip-range", default=default_cidr)
    p.add_argument("--service-node-port-range", type=_port_range, default=(30000, 32767))
    p.add_argument("--store", default="", help="sqlite:///path (default: DATA_DIR/state.db)")
    p.add_argument("--insecure-http", action="store_true", help="plain HTTP without authentication")


def _add_exec(sub: Any) -> None:
    ex = sub.add_parser("exec", help="run a command on a node of `svcnet up --netns` (inside its namespace)")
    ex.add_argument("node")
    ex.add_argument("cmd", nargs="*", help="-- COMMAND [ARGS...]")
    ex.add_argument("--data-dir", type=Path, default=default_data_dir())


def build_parser(exec_only: bool = False) -> argparse.ArgumentParser:
    """The whole command line; `exec_only`: just `svcnet exec`, which tests and scripts run in loops, without
    importing the modules the other commands register from (~0.4 s)."""
    parser = argparse.ArgumentParser(prog="svcnet", description="Kubernetes Service networking, for real.")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    if exec_only:
        _add_exec(sub)
        return parser
    api = sub.add_parser("apiserver", help="run the Kubernetes-compatible API server")
    _add_apiserver_flags(api, "10.96.0.0/12")
    up = sub.add_parser("up", help="run a whole cluster on this machine")
    _add_apiserver_flags(up, "127.96.0.0/12")
    up.add_argument("--node-name", default=socket.gethostname())
    up.add_argument("--netns", action="store_true", help="root: nodes as network namespaces (service CIDR "
                    "10.96.0.0/12, pods 10.244.0.0/16, DNS 10.96.0.10, as in the seeds)")
    up.add_argument("--nodes", type=int, default=3, help="with --netns: how many nodes")
    up.add_argument("--proxy-mode", choices=("userspace", "iptables", "nftables", "ipvs"), default="userspace",
                    help="with --netns: how each node's proxy forwards (iptables: rules in the node's namespace)")
    _add_exec(sub)
    status = sub.add_parser("status", help="the health of each component of a running `svcnet up`")
    status.add_argument("--data-dir", type=Path, default=default_data_dir())
    cm = sub.add_parser("controller-manager", help="run the controllers against an API server")
    cm.add_argument("--kubeconfig", default=None, help="default: $KUBECONFIG, then ~/.kube/config")
    cm.add_argument("--workers", type=int, default=2)
    cm.add_argument("--cluster-cidr", default="10.244.0.0/16", help="node podCIDRs are allocated from it")
    cm.add_argument("--node-cidr-mask-size", type=int, default=24)
    cm.add_argument("--load-balancer-pool", action="append", default=[],
                    help="CIDR or first-last range for LoadBalancer addresses (repeatable)")
    cm.add_argument("--controllers", default="", help="comma-separated subset to run (default: all)")
    node = sub.add_parser("node", help="run the node agent: register a Node and run the pods bound to it")
    node.add_argument("--kubeconfig", default=None, help="default: $KUBECONFIG, then ~/.kube/config")
    node.add_argument("--name", default=socket.gethostname())
    node.add_argument("--node-ip", default="127.0.0.1", help="the node's InternalIP; the kubelet API binds it")
    node.add_argument("--data-dir", type=Path, default=None, help="pod directories and logs (default: DATA/node-NAME)")
    node.add_argument("--kubelet-port", type=int, default=10250, help="0 picks a free port")
    node.add_argument("--pod-cidr", default="", help="set on the Node when the controller manager assigns none")
    node.add_argument("--cluster-dns", default="", help="comma-separated nameservers for ClusterFirst pods")
    node.add_argument("--cluster-domain", default="cluster.local")
    node.add_argument("--max-pods", type=int, default=110)
    node.add_argument("--restart-backoff", type=float, default=10.0, help="first CrashLoopBackOff delay (s)")
    node.add_argument("--image-catalog", type=Path, default=None, help="YAML file mapping images to programs")
    node.add_argument("--runtime", choices=("process", "netns"), default="process",
                      help="process: pods are processes with 127.x addresses; netns (root): network namespaces")
    node.add_argument("--node-netns", default="", help="netns runtime: the node's network namespace, holding the "
                      "pod bridge (default svcnet-node-NAME, created and removed by the agent)")
    proxy = sub.add_parser("proxy", help="run the service proxy (kube-proxy); `svcnet proxy show` lists its table")
    proxy.add_argument("action", nargs="?", choices=("show",), help="show: print a running proxy's forwarding table")
    proxy.add_argument("--kubeconfig", default=None, help="default: $KUBECONFIG, then ~/.kube/config")
    proxy.add_argument("--mode", choices=("userspace", "iptables", "nftables", "ipvs"), default="userspace")
    proxy.add_argument("--ipvs-strict", action="store_true", help="ipvs mode: fail instead of falling back")
    proxy.add_argument("--cluster-cidr", default="10.244.0.0/16", help="iptables/nftables: the pod range")
    proxy.add_argument("--hostname-override", default=socket.gethostname(), help="this node's name")
    proxy.add_argument("--node-ip", default="", help="comma-separated addresses for NodePorts (default: the Node's)")
    proxy.add_argument("--scheduler", default="rr", help="rr, wrr, lc, wlc, sh, dh, sed, nq or random "
                       "(a service's svcnet.io/scheduler annotation overrides it)")
    proxy.add_argument("--metrics-bind-address", type=_host_port, default=("127.0.0.1", 10249))
    proxy.add_argument("--healthz-bind-address", type=_host_port, default=("0.0.0.0", 10256))
    proxy.add_argument("--min-sync-period", type=float, default=0.0)
    proxy.add_argument("--sync-period", type=float, default=30.0)
    proxy.add_argument("--connect-timeout", type=float, default=1.0, help="seconds before trying the next backend")
    proxy.add_argument("--netns", default="", help="root: proxy the node whose network namespace this is "
                       "(listeners there, iptables REDIRECT from the service addresses)")
    proxy.add_argument("-o", "--output", choices=("table", "json"), default="table", help="show: output format")
    from svcnet.cluster import demo, doctor_gather

    doctor_gather.register(sub)
    demo.register(sub)
    from svcnet.cli import ingress as ingress_cli

    ingress_cli.register(sub)
    dns = sub.add_parser("dns", help="run the cluster DNS server")
    dns.add_argument("--kubeconfig", default=None, help="default: $KUBECONFIG, then ~/.kube/config")
    dns.add_argument("--listen", type=_host_port, default=("127.96.0.10", 53), help="UDP and TCP address")
    dns.add_argument("--domain", default="cluster.local")
    dns.add_argument("--ttl", type=int, default=5)
    dns.add_argument("--upstream", action="append", default=None,
                     help="HOST[:PORT] for names outside the cluster (repeatable; default: /etc/resolv.conf's "
                     "nameservers; 'none' refuses them)")
    dns.add_argument("--metrics-bind-address", type=_host_port, default=("127.0.0.1", 9153))
    dns.add_argument("--health-bind-address", type=_host_port, default=("127.0.0.1", 8080))
    return parser


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def _config(args: argparse.Namespace) -> APIServerConfig:
    from svcnet.apiserver.server import APIServerConfig

    return APIServerConfig(data_dir=args.data_dir, bind_address=args.bind_address, port=args.port,
                           service_cidr=args.service_cluster_ip_range, node_port_range=args.service_node_port_range,
                           insecure_http=args.insecure_http, store_url=args.store)


async def _run_controllers(args: argparse.Namespace) -> int:
    from svcnet.client import Client, load_kubeconfig
    from svcnet.controllers.manager import CONTROLLERS, ManagerConfig, run_all

    only = [name for name in args.controllers.split(",") if name]
    unknown = sorted(set(only) - set(CONTROLLERS))
    if unknown:
        print(f"svcnet: unknown controllers {', '.join(unknown)} (known: {', '.join(CONTROLLERS)})", file=sys.stderr)
        return 2
    config = ManagerConfig(workers=args.workers, cluster_cidr=args.cluster_cidr,
                           node_cidr_mask_size=args.node_cidr_mask_size,
                           load_balancer_pool=tuple(args.load_balancer_pool))
    client = Client(load_kubeconfig(args.kubeconfig), field_manager="svcnet-controller-manager")
    print(f"svcnet controller-manager: watching {client.config.server}", flush=True)
    await _until_signalled(asyncio.ensure_future(run_all(client, config, only)))
    await client.close()
    return 0


async def _until_signalled(task: asyncio.Future[object]) -> None:
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await asyncio.wait([task, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _run_proxy(args: argparse.Namespace) -> int:
    from svcnet.client import Client, load_kubeconfig
    from svcnet.proxy.server import ProxyConfig, ProxyServer

    if args.mode == "ipvs":
        from svcnet.proxy import ipvs

        try:
            args.mode, message = ipvs.resolve_mode(args.ipvs_strict, ipvs.kernel_has_ipvs())
        except ValueError as exc:
            print(f"svcnet proxy: {exc}", file=sys.stderr)
            return 1
        print(f"svcnet proxy: {message}", file=sys.stderr, flush=True)
        if args.mode == "ipvs" and args.scheduler not in ipvs.SCHEDULERS:
            print(f"svcnet proxy: ipvs mode: unknown scheduler {args.scheduler!r} (one of "
                  f"{', '.join(ipvs.SCHEDULERS)})", file=sys.stderr)
            return 1
    config = ProxyConfig(node_name=args.hostname_override,
                         node_ips=tuple(ip for ip in args.node_ip.split(",") if ip), mode=args.mode,
                         scheduler=args.scheduler, min_sync_period=args.min_sync_period,
                         sync_period=args.sync_period, connect_timeout=args.connect_timeout,
                         metrics_address=args.metrics_bind_address, healthz_address=args.healthz_bind_address,
                         netns=args.netns, cluster_cidr=args.cluster_cidr)
    client = Client(load_kubeconfig(args.kubeconfig), field_manager="svcnet-proxy")
    server = ProxyServer(client, config)
    print(f"svcnet proxy ({config.mode}) on {config.node_name}: watching {client.config.server}", flush=True)
    await _until_signalled(asyncio.ensure_future(server.run()))
    await client.close()
    return 0


async def _proxy_show(args: argparse.Namespace) -> int:
    import aiohttp

    from svcnet.proxy import show
    from svcnet.proxy.server import FORWARDING_PATH

    host, port = args.metrics_bind_address
    url = f"http://{host}:{port}{FORWARDING_PATH}"
    try:
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            listed = await response.json()
    except (aiohttp.ClientError, OSError) as exc:
        print(f"svcnet: no proxy answers at {url} ({exc}); pass its --metrics-bind-address", file=sys.stderr)
        return 1
    if args.output == "json":
        print(json.dumps(listed, indent=2))
        return 0
    print(show.format_table(show.from_json(listed)), end="")
    return 0


async def _run_dns(args: argparse.Namespace) -> int:
    from svcnet.client import Client, load_kubeconfig
    from svcnet.dns.forward import parse_upstream, upstreams_from_resolv_conf
    from svcnet.dns.server import DNSConfig, DNSServer

    if args.upstream is None:
        upstreams = upstreams_from_resolv_conf()
    else:
        upstreams = [parse_upstream(u) for u in args.upstream if u != "none"]
    config = DNSConfig(listen=args.listen, domain=args.domain.strip("."), ttl=args.ttl, upstreams=tuple(upstreams),
                       metrics_address=args.metrics_bind_address, health_address=args.health_bind_address)
    client = Client(load_kubeconfig(args.kubeconfig), field_manager="svcnet-dns")
    server = DNSServer(client, config)
    print(f"svcnet dns: {config.domain} on {config.listen[0]}:{config.listen[1]}, watching {client.config.server}",
          flush=True)
    await _until_signalled(asyncio.ensure_future(server.run()))
    await client.close()
    return 0


def _up_preflight(args: argparse.Namespace) -> int:
    """0, or the exit status after saying why `svcnet up` cannot start here (before it starts anything)."""
    from svcnet.cluster import up

    if args.netns:
        if os.geteuid() != 0:
            print("svcnet up --netns needs root (network namespaces, veths, routes)", file=sys.stderr)
            return 2
        if args.service_cluster_ip_range == "127.96.0.0/12":
            args.service_cluster_ip_range = "10.96.0.0/12"
    if args.proxy_mode != "userspace" and not args.netns:
        print(f"svcnet up: --proxy-mode {args.proxy_mode} needs --netns (the rules go in node namespaces)",
              file=sys.stderr)
        return 2
    if args.proxy_mode == "ipvs":
        from svcnet.proxy import ipvs

        args.proxy_mode, message = ipvs.resolve_mode(False, ipvs.kernel_has_ipvs())
        print(f"svcnet up: {message}", file=sys.stderr, flush=True)
    if not args.netns:
        privilege = up.read_port_privilege()
        check = up.check_ports(privilege, up.loopback_ports(args.port, args.service_node_port_range))
        if check.blocked:
            print(up.render_port_problem(check, privilege), file=sys.stderr)
            return 2
        if check.note:
            print(f"svcnet up: note: {check.note}", file=sys.stderr, flush=True)
    try:
        args.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"svcnet up: cannot create the data directory {args.data_dir} ({exc.strerror}); "
              "pass --data-dir DIR", file=sys.stderr)
        return 2
    return 0


async def _run_up(args: argparse.Namespace) -> int:
    from svcnet.cluster.up import POD_CIDR, Up, UpConfig

    if refused := _up_preflight(args):
        return refused
    up = Up(UpConfig(api=_config(args), node_name=args.node_name, netns_nodes=args.nodes if args.netns else 0,
                     proxy_mode=args.proxy_mode),
            say=lambda line: print(line, flush=True))
    dns_ip, pods = up.config.dns_service_ip, "10.244.0.0/16" if args.netns else POD_CIDR
    print(f"svcnet up: starting in {args.data_dir}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    try:
        await up.start()
        print(f"\nexport KUBECONFIG={up.api.kubeconfig_path}", flush=True)
        where = "every node's address" if args.netns else "127.0.0.1"
        print(f"cluster DNS {dns_ip} (try: dig @{dns_ip} kubernetes.default.svc.cluster.local"
              f"{' from svcnet exec node-1 --' if args.netns else ''})\n"
              f"services {args.service_cluster_ip_range}, pods {pods}, LoadBalancer {up.lb_pool}, node ports "
              f"{args.service_node_port_range[0]}-{args.service_node_port_range[1]} on {where}", flush=True)
        print(f"ingress {up.ingress_address}:80 and :443 (IngressClass and GatewayClass svcnet; try: curl "
              f"--resolve HOST:80:{up.ingress_address} http://HOST/{' from svcnet exec client --' if args.netns else ''})",
              flush=True)
        waiting = asyncio.ensure_future(up.wait())
        await asyncio.wait([waiting, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
        if waiting.done():
            waiting.result()
        waiting.cancel()
    except (RuntimeError, TimeoutError) as exc:
        print(f"svcnet up: {exc}", file=sys.stderr)
        await up.stop()
        return 1
    print("svcnet up: shutting down", flush=True)
    await up.stop()
    return 0


def _exec(args: argparse.Namespace) -> int:
    try:
        state = json.loads((args.data_dir / "up.json").read_text())
    except (OSError, ValueError):
        print(f"svcnet exec: no running `svcnet up` in {args.data_dir}", file=sys.stderr)
        return 1
    netns = state.get("nodes", {}).get(args.node) or (state.get("client_netns") if args.node == "client" else "")
    if not netns:
        known = ", ".join([*state.get("nodes", {}), "client"] if state.get("nodes") else [])
        print(f"svcnet exec: no node {args.node!r} (nodes: {known or 'none: this cluster runs in loopback mode'})",
              file=sys.stderr)
        return 1
    cmd = args.cmd
    if not cmd:
        print("usage: svcnet exec NODE -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    from svcnet.tools import which

    os.execv(which("ip"), ["ip", "netns", "exec", netns, *cmd])
    return 1


async def _status(args: argparse.Namespace) -> int:
    from svcnet.cluster.up import status

    rows = await status(args.data_dir)
    if not rows:
        print(f"svcnet status: no running `svcnet up` in {args.data_dir}", file=sys.stderr)
        return 1
    for name, healthy, where in rows:
        print(f"{name:<20} {'ok' if healthy else 'NOT OK':<7} {where}")
    return 0 if all(healthy for _, healthy, _ in rows) else 1


async def _run_node(args: argparse.Namespace) -> int:
    from svcnet.client import Client, load_kubeconfig
    from svcnet.node.agent import NodeAgent, NodeConfig

    config = NodeConfig(name=args.name, node_ip=args.node_ip,
                        data_dir=args.data_dir or default_data_dir() / f"node-{args.name}",
                        kubelet_port=args.kubelet_port, pod_cidr=args.pod_cidr,
                        cluster_dns=tuple(s for s in args.cluster_dns.split(",") if s),
                        cluster_domain=args.cluster_domain, max_pods=args.max_pods,
                        restart_backoff=args.restart_backoff, image_catalog=args.image_catalog,
                        runtime=args.runtime, node_netns=args.node_netns)
    client = Client(load_kubeconfig(args.kubeconfig), field_manager="svcnet-node")
    try:
        agent = NodeAgent(client, config)
    except ValueError as exc:
        print(f"svcnet: {exc}", file=sys.stderr)
        return 2
    print(f"svcnet node {config.name}: watching {client.config.server}", flush=True)
    await _until_signalled(asyncio.ensure_future(agent.run()))
    await client.close()
    return 0


async def _run(args: argparse.Namespace) -> int:
    if args.command == "controller-manager":
        return await _run_controllers(args)
    if args.command == "node":
        return await _run_node(args)
    if args.command == "dns":
        return await _run_dns(args)
    if args.command == "ingress":
        from svcnet.cli import ingress as ingress_cli

        return await ingress_cli.run(args, _until_signalled)
    if args.command == "proxy":
        return await (_proxy_show(args) if args.action == "show" else _run_proxy(args))
    if args.command == "up":
        return await _run_up(args)
    if args.command == "demo":
        from svcnet.cluster import demo

        return await demo.run(args)
    if args.command == "doctor":
        from svcnet.cluster import doctor_gather

        return await doctor_gather.run(args)
    if args.command == "status":
        return await _status(args)
    from svcnet.apiserver.server import APIServer

    server = APIServer(_config(args))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    print(f"svcnet {args.command}: API server at {server.url}", flush=True)
    print(f"export KUBECONFIG={server.kubeconfig_path}", flush=True)
    print(f"service range {args.service_cluster_ip_range}, node ports "
          f"{args.service_node_port_range[0]}-{args.service_node_port_range[1]}", flush=True)
    await stop.wait()
    print("svcnet: shutting down", flush=True)
    await server.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command: list[str] = []
    exec_only = "exec" in argv[:2]
    if exec_only and "--" in argv:  # `svcnet exec NODE [--data-dir D] -- CMD...`: CMD is not ours to parse
        command = argv[argv.index("--") + 1:]
        argv = argv[:argv.index("--")]
    args = build_parser(exec_only).parse_args(argv)
    if args.command == "exec":
        args.cmd = command or args.cmd
        return _exec(args)
    from svcnet.client.config import ConfigError  # the client package: not needed by `exec`
    quiet = args.command in ("up", "demo")  # these print their own progress; components say only what is wrong
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING if quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    try:
        return asyncio.run(_run(args))
    except (OSError, StoreError, ConfigError) as exc:
        print(f"svcnet: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
