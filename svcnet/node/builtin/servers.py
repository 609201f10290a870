"""The built-in "images" of the process runtime: tiny servers that start in milliseconds (standard library only).

- `http PORT`: nginx's role — serves files from $SVCNET_HTML_DIR (index.html for `/`), whose index.html the
  runtime seeds with the pod's IP, so a curl loop over a service shows which pod answered;
- `kubia PORT`: luksa/kubia's answer, `You've hit <hostname>`;
- `tcp-echo PORT`, `udp-echo PORT`: echo servers.
Every server binds $POD_IP (the pod's own address), never 0.0.0.0; on SIGTERM it keeps serving for a
second (lame duck), then stops accepting, finishes the requests in progress and exits.
"""

from __future__ import annotations

import os
import signal
import socket
import socketserver
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, HTTPServer, SimpleHTTPRequestHandler
from pathlib import Path
from typing import Any


def _address(port: int) -> tuple[str, int]:
    return os.environ.get("POD_IP", "127.0.0.1"), port


class _Files(SimpleHTTPRequestHandler):
    server_version = "svcnet-http/1"

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, directory=os.environ.get("SVCNET_HTML_DIR", "."), **kwargs)  # type: ignore[arg-type]

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 — the stdlib's name
        sys.stdout.write(f'{self.client_address[0]} - "{self.requestline}" {args[1] if len(args) > 1 else ""}\n')
        sys.stdout.flush()


class _Kubia(_Files):
    def do_GET(self) -> None:  # noqa: N802 — the stdlib's name
        body = f"You've hit {socket.gethostname() if not os.environ.get('HOSTNAME') else os.environ['HOSTNAME']}\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())


class _TCPEcho(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


class _UDPEcho(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        data, sock = self.request
        sock.sendto(data, self.client_address)


class _ThreadingTCP(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


class _GracefulHTTP(HTTPServer):
    """Each connection handled on a pool of threads (a new thread per connection, as ThreadingHTTPServer does,
    cost ~350 µs of CPU per request, more than the request itself); server_close() waits for the requests in
    progress."""

    POOL = 64  # connections served at once; more wait for a free thread

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self.pool = ThreadPoolExecutor(self.POOL, thread_name_prefix="http")

    def process_request(self, request: Any, client_address: Any) -> None:
        self.pool.submit(self._handle, request, client_address)

    def _handle(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)

    def server_close(self) -> None:
        super().server_close()
        self.pool.shutdown(wait=True)


LAME_DUCK_SECONDS = float(os.environ.get("SVCNET_LAME_DUCK_SECONDS", "1"))


def _serve(server: socketserver.BaseServer) -> None:
    """Serve until SIGTERM; then keep serving for LAME_DUCK_SECONDS (while the endpoint's removal reaches every
    proxy, as the preStop-sleep advice for Kubernetes apps goes), stop accepting, finish the requests in progress
    and exit — so a pod leaving a Service drops no request."""
    def stop_later() -> None:
        time.sleep(LAME_DUCK_SECONDS)
        server.shutdown()

    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=stop_later, daemon=True).start())
    try:
        server.serve_forever()
    finally:
        server.server_close()


def main(argv: list[str]) -> int:
    if len(argv) != 2 or not argv[1].isdigit():
        print("usage: servers (http|kubia|tcp-echo|udp-echo) PORT", file=sys.stderr)
        return 2
    kind, port = argv[0], int(argv[1])
    address = _address(port)
    if kind == "http":
        html = Path(os.environ.get("SVCNET_HTML_DIR", "."))
        print(f"serving {html} on {address[0]}:{port}", flush=True)
        _serve(_GracefulHTTP(address, _Files))
    elif kind == "kubia":
        print(f"Kubia server starting on {address[0]}:{port}...", flush=True)
        _serve(_GracefulHTTP(address, _Kubia))
    elif kind == "tcp-echo":
        print(f"tcp echo on {address[0]}:{port}", flush=True)
        _serve(_ThreadingTCP(address, _TCPEcho))
    elif kind == "udp-echo":
        print(f"udp echo on {address[0]}:{port}", flush=True)
        _serve(socketserver.UDPServer(address, _UDPEcho))
    else:
        print(f"unknown built-in server {kind!r}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
