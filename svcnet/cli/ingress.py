"""`svcnet ingress`: run the ingress / Gateway API controller against any Kubernetes API server."""

from __future__ import annotations

import argparse
import socket
import sys
from typing import Any


def register(subparsers: Any) -> argparse.ArgumentParser:
    from svcnet.ingress.common import Config

    defaults = Config()
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "ingress", help="run the ingress controller (Ingress and Gateway API HTTPRoute)")
    parser.add_argument("--kubeconfig", default=None, help="default: $KUBECONFIG, then ~/.kube/config")
    parser.add_argument("--bind-address", default="0.0.0.0", help="where the HTTP(S) listeners bind")
    parser.add_argument("--publish-address", default="",
                        help="the IP or hostname written to status (default: --bind-address, or this host's address "
                        "when that is 0.0.0.0)")
    parser.add_argument("--http-port", type=int, default=defaults.http_port, help="the Ingress HTTP port")
    parser.add_argument("--https-port", type=int, default=defaults.https_port, help="the Ingress HTTPS port")
    parser.add_argument("--watch-ingress-without-class", action="store_true",
                        help="also serve Ingresses that name no class")
    parser.add_argument("--create-classes", action="store_true",
                        help="create the IngressClass (default class) and GatewayClass named svcnet if missing")
    parser.add_argument("--health-bind-address", default="127.0.0.1:10254", help="/healthz and /metrics")
    parser.add_argument("--max-body-size", type=int, default=1 << 20, help="bytes; 0: unlimited (413 above)")
    parser.add_argument("--netns", default="", help="root: listen and connect inside this network namespace")
    return parser


def controller_config(args: argparse.Namespace) -> Any:
    from svcnet.ingress.common import Config
    from svcnet.ingress.controller import ControllerConfig
    from svcnet.ingress.proxy import IngressConfig

    host, _, port = args.health_bind_address.rpartition(":")
    routes = Config(address=args.publish_address or _publishable(args.bind_address), http_port=args.http_port,
                    https_port=args.https_port, watch_ingress_without_class=args.watch_ingress_without_class)
    server = IngressConfig(bind_address=args.bind_address, max_body_size=args.max_body_size,
                           netns=args.netns or None)
    return ControllerConfig(routes=routes, server=server, health_address=(host, int(port)))


def _publishable(bind_address: str) -> str:
    """The address to write to status when none is given: the bind address, or this host's for a wildcard."""
    if bind_address not in ("0.0.0.0", "::", ""):
        return bind_address
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"


async def run(args: argparse.Namespace, until_signalled: Any) -> int:
    import asyncio

    from svcnet.client import Client, load_kubeconfig
    from svcnet.ingress import routes
    from svcnet.ingress.controller import IngressController, ensure_classes

    try:
        config = controller_config(args)
        routes.compile_routes({}, config.routes)  # checks the configuration before anything starts
    except (ValueError, routes.ConfigError) as exc:
        print(f"svcnet ingress: {exc}", file=sys.stderr)
        return 2
    client = Client(load_kubeconfig(args.kubeconfig), field_manager="svcnet-ingress")
    if args.create_classes:
        await ensure_classes(client)
    controller = IngressController(client, config)
    print(f"svcnet ingress: HTTP :{args.http_port}, HTTPS :{args.https_port} on {args.bind_address}, "
          f"watching {client.config.server}", flush=True)
    await until_signalled(asyncio.ensure_future(controller.run()))
    await client.close()
    return 0
