"""pods/log, pods/exec and pods/attach: validate like kube-apiserver, then proxy to the node agent of the pod's node.

The node agent serves the kubelet's paths (`svcnet.node.kubelet_api`) on the Node's InternalIP and
`status.daemonEndpoints.kubeletEndpoint.Port` (10250 when unset), plain HTTP for now: it must only listen on
loopback or a node-internal network, and authenticating the API server to it is a follow-up.

- Logs are streamed through: one chunk written (and flushed) per chunk received, so `kubectl logs -f` follows.
- exec/attach: a WebSocket upgrade is relayed message by message (client ws ↔ node agent ws, with the subprotocol
  the node agent chose). Any other request (kubectl's SPDY fallback POST) is forwarded as a plain request, so the
  node agent's precise error Status (unknown container, not running, websocket required) reaches the user.
- Errors are `APIError`s before anything is streamed; a node agent's non-2xx answer is relayed as a Status.

Kube's order is kept: pod (404), container name (400 `container x is not valid for pod y`, or the list to choose
from), then the node: exec/attach without one is 400 `pod x does not have a host assigned`; logs without one are
an empty 200, as kube-apiserver answers for a pod that is not scheduled yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import aiohttp
from aiohttp import web
from yarl import URL

from svcnet.api import annotations, errors, resources
from svcnet.apiserver import paths
from svcnet.apiserver.registry import Registry

KUBELET_DEFAULT_PORT = 10250
CONNECT_TIMEOUT = 10.0
CLOSE_TIMEOUT = 10.0
MAX_ERROR_BODY = 64 * 1024
LOG_PARAMS = ("follow", "previous", "tailLines", "sinceSeconds", "sinceTime", "timestamps", "limitBytes")
STREAM_PARAMS = ("command", "stdin", "stdout", "stderr", "tty")
_KUBELET_PATHS = {"log": "containerLogs", "exec": "exec", "attach": "attach"}


# ---- pure: what to call --------------------------------------------------------------------------------------

def resolve_container(pod: dict[str, Any], requested: str) -> str:
    """The container the request is about, validated against the pod spec as kube-apiserver does."""
    spec, name = pod.get("spec") or {}, pod["metadata"]["name"]
    containers = [c.get("name", "") for c in spec.get("containers") or []]
    others = [c.get("name", "") for key in ("initContainers", "ephemeralContainers") for c in spec.get(key) or []]
    if not requested:
        if len(containers) == 1:
            return containers[0]
        message = f"a container name must be specified for pod {name}, choose one of: [{' '.join(containers)}]"
        if spec.get("initContainers"):
            inits = " ".join(c.get("name", "") for c in spec["initContainers"])
            message += f" or one of the init containers: [{inits}]"
        raise errors.bad_request(message)
    if requested not in containers + others:
        raise errors.bad_request(f"container {requested} is not valid for pod {name}")
    return requested




def node_address(node: dict[str, Any]) -> tuple[str, int]:
    """(address, kubelet port) of a Node: its `svcnet.io/kubelet-address` annotation when the agent serves its API
    elsewhere than on the InternalIP (a node that is a network namespace), else the InternalIP; 503 without one."""
    annotated = (node.get("metadata", {}).get("annotations") or {}).get(annotations.KUBELET_ADDRESS, "")
    status = node.get("status") or {}
    port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port") or KUBELET_DEFAULT_PORT
    if annotated:
        return annotated, int(port)
    addresses = [a.get("address", "") for a in status.get("addresses") or [] if a.get("type") == "InternalIP"]
    if not addresses or not addresses[0]:
        known = [f"{a.get('type')}:{a.get('address')}" for a in status.get("addresses") or []]
        raise errors.APIError(503, "ServiceUnavailable",
                              f'node "{node["metadata"]["name"]}" has no InternalIP address; known addresses: '
                              f"{known}")
    return addresses[0], int(port)


def kubelet_url(host: str, port: int, subresource: str, namespace: str, pod: str, container: str,
                query: Any) -> URL:
    """The node agent URL for the subresource, with only the parameters that belong to it."""
    allowed = LOG_PARAMS if subresource == "log" else STREAM_PARAMS
    params = [(k, v) for k, v in query.items() if k in allowed]
    return URL.build(scheme="http", host=host, port=port,
                     path=f"/{_KUBELET_PATHS[subresource]}/{namespace}/{pod}/{container}").with_query(params)


# ---- I/O ------------------------------------------------------------------------------------------------------

async def serve(request: web.Request, registry: Registry, target: paths.Target) -> web.StreamResponse:
    """Handle pods/{log,exec,attach} for the pod named by `target`."""
    namespace = target.namespace or ""
    pod = await registry.get(target.info, namespace, target.name)
    container = resolve_container(pod, request.query.get("container", ""))
    node_name = (pod.get("spec") or {}).get("nodeName")
    if not node_name:
        if target.subresource == "log":
            return web.Response(body=b"", content_type="text/plain")
        raise errors.bad_request(f"pod {target.name} does not have a host assigned")
    nodes = resources.lookup("", "v1", "nodes")
    assert nodes is not None
    host, port = node_address(await registry.get(nodes, "", node_name))
    url = kubelet_url(host, port, target.subresource, namespace, target.name, container, request.query)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT)
    async with aiohttp.ClientSession(timeout=timeout, auto_decompress=False) as session:
        try:
            if target.subresource == "log":
                return await _logs(request, session, url)
            if _is_websocket(request):
                return await _websocket(request, session, url)
            return await _forward(request, session, url)
        except (TimeoutError, aiohttp.ClientConnectorError, aiohttp.ServerDisconnectedError) as exc:
            raise errors.APIError(503, "ServiceUnavailable",
                                  f'error dialing backend: node "{node_name}" ({host}:{port}): {exc}') from None


def _is_websocket(request: web.Request) -> bool:
    return (request.method == "GET" and request.headers.get("Upgrade", "").lower() == "websocket"
            and "upgrade" in request.headers.get("Connection", "").lower())


async def _upstream_error(response: aiohttp.ClientResponse) -> errors.APIError:
    """The node agent's error answer as an APIError (its Status when it sent one)."""
    body = await response.content.read(MAX_ERROR_BODY)
    with contextlib.suppress(ValueError, UnicodeDecodeError):
        status = json.loads(body)
        if isinstance(status, dict) and status.get("kind") == "Status" and status.get("message"):
            return errors.APIError(response.status, status.get("reason") or "InternalError", status["message"])
    text = body.decode(errors="replace").strip() or response.reason or "error"
    return errors.APIError(response.status, "InternalError" if response.status >= 500 else "BadRequest", text)


async def _logs(request: web.Request, session: aiohttp.ClientSession, url: URL) -> web.StreamResponse:
    async with session.get(url) as upstream:
        if upstream.status != 200:
            raise await _upstream_error(upstream)
        response = web.StreamResponse(headers={"Content-Type": upstream.headers.get("Content-Type", "text/plain")})
        await response.prepare(request)
        try:
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
        except (ConnectionResetError, aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError):
            pass  # the client went away, or the node agent did: the response just ends
        return response


async def _forward(request: web.Request, session: aiohttp.ClientSession, url: URL) -> web.Response:
    """A non-websocket exec/attach request (SPDY fallback): the node agent answers it with a Status."""
    async with session.request(request.method, url, headers={"Accept": "application/json"}) as upstream:
        if upstream.status < 400:
            raise errors.bad_request("exec and attach need a WebSocket upgrade (v5.channel.k8s.io)")
        raise await _upstream_error(upstream)


async def _websocket(request: web.Request, session: aiohttp.ClientSession, url: URL) -> web.StreamResponse:
    offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
    try:
        upstream = await session.ws_connect(url, protocols=offered, max_msg_size=0, compress=0, autoping=True)
    except aiohttp.WSServerHandshakeError as exc:
        raise errors.APIError(exc.status if exc.status >= 400 else 502, "BadRequest" if exc.status < 500 else
                              "InternalError", f"unable to upgrade connection: node agent answered {exc.status}"
                              ) from None
    async with upstream:
        downstream = web.WebSocketResponse(protocols=(upstream.protocol,) if upstream.protocol else (),
                                           max_msg_size=0, compress=False, timeout=CLOSE_TIMEOUT)
        await downstream.prepare(request)
        await _relay(downstream, upstream)
    return downstream


async def _pump(source: Any, sink: Any) -> None:
    """Copy messages until `source` closes (or `sink` can no longer be written)."""
    with contextlib.suppress(ConnectionResetError, aiohttp.ClientError):
        async for msg in source:
            if msg.type == aiohttp.WSMsgType.BINARY:
                await sink.send_bytes(msg.data)
            elif msg.type == aiohttp.WSMsgType.TEXT:
                await sink.send_str(msg.data)


async def _relay(downstream: web.WebSocketResponse, upstream: aiohttp.ClientWebSocketResponse) -> None:
    """Relay both ways; when one side closes, close the other (with the node agent's close code)."""
    to_node = asyncio.ensure_future(_pump(downstream, upstream))
    to_client = asyncio.ensure_future(_pump(upstream, downstream))
    try:
        done, _ = await asyncio.wait({to_node, to_client}, return_when=asyncio.FIRST_COMPLETED)
        if to_client in done:
            await downstream.close(code=upstream.close_code or aiohttp.WSCloseCode.OK)
        else:
            await upstream.close()
        await asyncio.wait({to_node, to_client}, timeout=CLOSE_TIMEOUT)
    finally:
        for task in (to_node, to_client):
            task.cancel()
        await asyncio.gather(to_node, to_client, return_exceptions=True)
