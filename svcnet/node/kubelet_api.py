"""The node agent's kubelet-style HTTP API: container logs, exec and attach, for the API server to proxy to.

Paths (as the kubelet's):
- `GET /containerLogs/{namespace}/{pod}/{container}?follow&previous&tailLines&sinceSeconds&sinceTime&timestamps&
  limitBytes` — plain text, chunked; the options are applied here, over the CRI-format files of
  `svcnet.node.crilog`. `follow` streams new records until the container stops running (or a newer run's file
  appears), then ends.
- `GET|POST /exec/{namespace}/{pod}/{container}?command=..&command=..&stdin&stdout&stderr&tty` and
  `/attach/{namespace}/{pod}/{container}?stdin&stdout&stderr&tty` — the WebSocket remotecommand protocol
  (`v5.channel.k8s.io`, also `v4.channel.k8s.io`): each binary message is one channel byte and its payload. Client →
  server: 0 stdin, 4 resize (`{"Width":w,"Height":h}`), 255 + channel = close that channel (v5; 255 0 closes stdin).
  Server → client: 1 stdout, 2 stderr (merged into 1 with a tty), then exactly one status JSON on 3 (`Success`, or
  `Failure` with an `ExitCode` cause) and a close. SPDY is not spoken: such a request gets a 400 Status saying so,
  after the same validation, so a client that falls back to SPDY still sees the precise error.

Invariants: every error is a Kubernetes `Status` (404 unknown pod/container, 400 bad parameters), never a traceback;
validation and the container lookup happen before the upgrade; an exec'd process never outlives its session (its
process group is killed when the client goes away); the exec runs `[*ref.exec_prefix, *command]` with `ref.env` and
`ref.cwd`, a tty one under a real PTY (it becomes the controlling terminal; resizes are applied with TIOCSWINSZ).

Security: there is no authentication yet (a follow-up). Whoever reaches this port can run commands in every pod on
the node, so the agent must listen only on loopback or a node-internal address that only the API server reaches.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import enum
import fcntl
import json
import logging
import os
import re
import struct
import sys
import termios
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from aiohttp import WSMsgType, web

from svcnet.api import errors
from svcnet.node import crilog
from svcnet.node.access import ContainerAccess, ContainerRef

log = logging.getLogger(__name__)

PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
WEBSOCKET_REQUIRED = ("exec and attach need a WebSocket upgrade with subprotocol v5.channel.k8s.io; SPDY is not "
                      "supported (kubectl 1.30 and later use WebSocket by default)")
FOLLOW_POLL_SECONDS = 0.1   # how often `follow` looks for new records when the file is quiet
OUTPUT_GRACE_SECONDS = 2.0  # after an exec'd process exits, how long its output may still drain
READ_BLOCK = 64 * 1024
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Channel(enum.IntEnum):
    STDIN = 0
    STDOUT = 1
    STDERR = 2
    ERROR = 3
    RESIZE = 4
    CLOSE = 255


# ---- options (pure) -----------------------------------------------------------------------------------------

def _bool(query: Mapping[str, str], name: str) -> bool:
    """kube's query conversion: absent is false; "0", "f" and "false" (any case) are false; anything else true."""
    raw = query.get(name)
    return raw is not None and raw.lower() not in ("0", "f", "false")


def _int(query: Mapping[str, str], name: str, minimum: int) -> int | None:
    raw = query.get(name)
    if raw in (None, ""):
        return None
    try:
        value = int(raw)
    except ValueError:
        raise errors.bad_request(f'invalid value for {name}: "{raw}": must be an integer') from None
    if value < minimum:
        raise errors.bad_request(f"{name}: Invalid value: {value}: must be greater than or equal to {minimum}")
    return value


_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")


def parse_time(text: str) -> datetime.datetime | None:
    """An RFC 3339 time with up to nanoseconds (truncated to microseconds), or None."""
    match = _TIME.match(text)
    if not match:
        return None
    base, frac, zone = match.groups()
    micro = (frac or "")[:6].ljust(6, "0")
    return datetime.datetime.fromisoformat(f"{base}.{micro}{'+00:00' if zone == 'Z' else zone}")


def format_timestamp(stamp: str) -> str:
    """A CRI record time the way kubelet prints it (Go's RFC3339Nano: trailing zeros of the fraction dropped)."""
    head, dot, rest = stamp.partition(".")
    if not dot or not rest.endswith("Z"):
        return stamp
    frac = rest[:-1].rstrip("0")
    return f"{head}.{frac}Z" if frac else f"{head}Z"


@dataclass(frozen=True, slots=True)
class LogOptions:
    follow: bool = False
    previous: bool = False
    tail_lines: int | None = None
    since: datetime.datetime | None = None
    timestamps: bool = False
    limit_bytes: int | None = None


def parse_log_options(query: Mapping[str, str], now: datetime.datetime) -> LogOptions:
    since_seconds = _int(query, "sinceSeconds", 1)
    since_time = query.get("sinceTime") or ""
    if since_seconds is not None and since_time:
        raise errors.bad_request("at most one of sinceTime or sinceSeconds may be specified")
    since = now - datetime.timedelta(seconds=since_seconds) if since_seconds is not None else None
    if since_time:
        since = parse_time(since_time)
        if since is None:
            raise errors.bad_request(f'invalid value for sinceTime: "{since_time}": must be an RFC 3339 time')
    return LogOptions(follow=_bool(query, "follow"), previous=_bool(query, "previous"),
                      tail_lines=_int(query, "tailLines", 0), since=since, timestamps=_bool(query, "timestamps"),
                      limit_bytes=_int(query, "limitBytes", 1))


@dataclass(frozen=True, slots=True)
class StreamOptions:
    command: tuple[str, ...]
    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool


def parse_stream_options(query: Any, exec_: bool) -> StreamOptions:
    """exec/attach options; `query` is a multi-dict (`command` repeats). With a tty, stderr goes to stdout."""
    command = tuple(query.getall("command", [])) if exec_ else ()
    if exec_ and not command:
        raise errors.bad_request("you must specify at least one command for the container")
    opts = StreamOptions(command, _bool(query, "stdin"), _bool(query, "stdout"), _bool(query, "stderr"),
                         _bool(query, "tty"))
    if not (opts.stdin or opts.stdout or opts.stderr):
        raise errors.bad_request("you must specify at least 1 of stdin, stdout, stderr")
    return opts


def exit_status(code: int) -> dict[str, Any]:
    """The channel-3 status for a process that exited with `code` (kubectl turns the cause into its rc)."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {"metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
            "message": f"command terminated with non-zero exit code: exit status {code}",
            "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}


# ---- logs: records to output (pure) ---------------------------------------------------------------------------

class LogRenderer:
    """Turns CRI records into `kubectl logs` output: `since` filter, timestamps, and the byte limit across the
    whole response (`done` once it is reached)."""

    def __init__(self, opts: LogOptions) -> None:
        self.opts = opts
        self.left = opts.limit_bytes

    @property
    def done(self) -> bool:
        return self.left is not None and self.left <= 0

    def render(self, records: list[crilog.Record]) -> bytes:
        out = bytearray()
        for record in records:
            if self.opts.since is not None:
                when = parse_time(record.timestamp)
                if when is not None and when < self.opts.since:
                    continue
            if self.opts.timestamps:
                out += format_timestamp(record.timestamp).encode() + b" "
            out += record.text if record.partial else record.text + b"\n"
        data = bytes(out)
        if self.left is not None:
            data = data[:self.left]
            self.left -= len(data)
        return data


def parse_records(data: bytes) -> list[crilog.Record]:
    """Records of complete lines (`data` must end at a line boundary); lines not in the format are skipped."""
    records = (crilog.parse_line(line) for line in data.split(b"\n") if line)
    return [r for r in records if r is not None]


# ---- logs: files (I/O) ----------------------------------------------------------------------------------------

def _log_file(ref: ContainerRef, previous: bool) -> Path | None:
    files = crilog.log_files(ref.log_dir)
    if previous:
        if len(files) < 2:
            raise errors.bad_request(f'previous terminated container "{ref.container}" in pod "{ref.pod}" '
                                     "not found")
        return files[-2]
    return files[-1] if files else None


def _tail_offset(f: IO[bytes], lines: int) -> int:
    """Where the last `lines` records of the file start (kubelet counts records, i.e. file lines)."""
    end = f.seek(0, os.SEEK_END)
    if lines == 0:
        return end
    pos, seen = end, 0
    while pos > 0:
        start = max(0, pos - READ_BLOCK)
        f.seek(start)
        block = f.read(pos - start)
        for i in range(len(block) - 1, -1, -1):
            if block[i] == 0x0A and start + i != end - 1:
                seen += 1
                if seen == lines:
                    return start + i + 1
        pos = start
    return 0


def _read_complete(f: IO[bytes], offset: int) -> tuple[bytes, int]:
    """Whole lines from `offset` (up to a block); a line still being written is left for the next read."""
    f.seek(offset)
    data = f.read(READ_BLOCK)
    cut = data.rfind(b"\n") + 1
    if cut == 0 and len(data) == READ_BLOCK:  # one record longer than a block: take it whole
        more = f.readline()
        data, cut = data + more, len(data) + len(more)
    return data[:cut], offset + cut


async def stream_logs(response: web.StreamResponse, access: ContainerAccess, ref: ContainerRef, path: Path,
                      opts: LogOptions) -> None:
    """Write the file's records as `opts` asks; with `follow`, keep going until the run is over and drained."""
    renderer = LogRenderer(opts)
    ended = not opts.follow
    with path.open("rb") as f:
        offset = _tail_offset(f, opts.tail_lines) if opts.tail_lines is not None else 0
        while not renderer.done:
            data, offset = _read_complete(f, offset)
            if data:
                out = renderer.render(parse_records(data))
                if out:
                    await response.write(out)
            elif ended:
                return
            elif not _still_current(access, ref, path):
                ended = True  # one more pass: what the run wrote last is still to be sent
            else:
                await asyncio.sleep(FOLLOW_POLL_SECONDS)


def _still_current(access: ContainerAccess, ref: ContainerRef, path: Path) -> bool:
    try:
        now = access.container(ref.namespace, ref.pod, ref.container)
    except LookupError:
        return False
    files = crilog.log_files(now.log_dir)
    return now.running and bool(files) and files[-1] == path


# ---- exec: a process with pipes or a PTY (I/O) -----------------------------------------------------------------

# Becomes session leader, takes the PTY on fd 0 as controlling terminal, then execs the command (no preexec_fn,
# which is unsafe in a threaded process). Exec failures are reported like runc does, rc 127/126.
_CTTY_HELPER = (
    "import fcntl,os,sys,termios\n"
    "os.setsid(); fcntl.ioctl(0, termios.TIOCSCTTY, 0)\n"
    "try: os.execvp(sys.argv[1], sys.argv[1:])\n"
    "except OSError as e:\n"
    "    sys.stderr.write(f'exec: \"{sys.argv[1]}\": {e.strerror}\\n')\n"
    "    sys.exit(127 if isinstance(e, FileNotFoundError) else 126)\n"
)


@dataclass
class ExecProcess:
    process: asyncio.subprocess.Process
    stdin: asyncio.StreamWriter | None
    outputs: list[tuple[Channel, asyncio.StreamReader]]
    pty: int | None = None  # the PTY master, for resizes
    transports: tuple[asyncio.BaseTransport, ...] = ()  # the PTY's, closed at the end

    def close_stdin(self) -> None:
        if self.stdin is None:
            return
        if self.pty is not None:
            self.stdin.write(b"\x04")  # end of input for a reader on the terminal; the PTY stays open
            return
        self.stdin.close()
        self.stdin = None

    def resize(self, width: int, height: int) -> None:
        if self.pty is not None and width > 0 and height > 0:
            with contextlib.suppress(OSError):  # the PTY may be gone already
                fcntl.ioctl(self.pty, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))

    def kill(self) -> None:
        """Kill the process group (the process leads its own session); harmless once it has exited."""
        if self.process.returncode is not None:
            return
        try:
            os.killpg(self.process.pid, 9)
        except (ProcessLookupError, PermissionError):  # not yet its own group leader
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()

    def close(self) -> None:
        if self.stdin is not None:
            self.stdin.close()
        for transport in self.transports:
            transport.close()


async def start_pipes(argv: list[str], ref: ContainerRef, opts: StreamOptions) -> ExecProcess:
    pipe, null = asyncio.subprocess.PIPE, asyncio.subprocess.DEVNULL
    process = await asyncio.create_subprocess_exec(
        *argv, stdin=pipe if opts.stdin else null, stdout=pipe if opts.stdout else null,
        stderr=pipe if opts.stderr else null, env=ref.env, cwd=ref.cwd, start_new_session=True)
    outputs = [(c, r) for c, r in ((Channel.STDOUT, process.stdout), (Channel.STDERR, process.stderr))
               if r is not None]
    return ExecProcess(process, process.stdin, outputs)


async def start_pty(argv: list[str], ref: ContainerRef) -> ExecProcess:
    master, slave = os.openpty()
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-I", "-S", "-c", _CTTY_HELPER, *argv, stdin=slave, stdout=slave, stderr=slave,
            env=ref.env, cwd=ref.cwd)
    except BaseException:
        os.close(master)
        raise
    finally:
        os.close(slave)  # only the child holds the slave now, so reads end (EIO) when it and its children exit
    loop = asyncio.get_running_loop()
    write_fd = os.dup(master)
    reader = asyncio.StreamReader()
    read_transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader),
                                                     _fdopen(master, "rb"))
    transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, _fdopen(write_fd, "wb"))
    writer = asyncio.StreamWriter(transport, protocol, None, loop)  # type: ignore[arg-type]
    return ExecProcess(process, writer, [(Channel.STDOUT, reader)], pty=write_fd,
                       transports=(read_transport, transport))


def _fdopen(fd: int, mode: str) -> IO[bytes]:
    return os.fdopen(fd, mode, buffering=0)  # type: ignore[return-value]


def exit_code(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode  # killed by signal N: 128+N, as runtimes report


def spawn_error(exc: OSError, argv: list[str], cwd: str) -> tuple[bytes, int]:
    """runc-like message and exit code for a command that could not be started."""
    if exc.filename == cwd:
        return f'chdir to cwd ("{cwd}") set in config.json failed: {exc.strerror}\n'.encode(), 126
    if isinstance(exc, FileNotFoundError):
        return f'exec: "{argv[0]}": executable file not found in $PATH\n'.encode(), 127
    return f'exec: "{argv[0]}": {exc.strerror}\n'.encode(), 126


# ---- websocket sessions ---------------------------------------------------------------------------------------

class Session:
    """One exec/attach websocket: channel framing both ways; the status is sent once, at the end."""

    def __init__(self, ws: web.WebSocketResponse, opts: StreamOptions) -> None:
        self.ws = ws
        self.opts = opts

    async def send(self, channel: Channel, data: bytes) -> None:
        if channel == Channel.STDERR and self.opts.tty:
            channel = Channel.STDOUT
        wanted = self.opts.stdout if channel == Channel.STDOUT else self.opts.stderr
        if data and wanted and not self.ws.closed:
            with contextlib.suppress(ConnectionResetError):
                await self.ws.send_bytes(bytes([channel]) + data)

    async def finish(self, status: dict[str, Any]) -> None:
        if not self.ws.closed:
            with contextlib.suppress(ConnectionResetError):
                await self.ws.send_bytes(bytes([Channel.ERROR]) + json.dumps(status).encode())
        await self.ws.close()

    async def pump(self, channel: Channel, reader: asyncio.StreamReader) -> None:
        while True:
            try:
                data = await reader.read(READ_BLOCK)
            except OSError:  # EIO: the PTY's last slave closed
                return
            if not data:
                return
            await self.send(channel, data)

    async def receive(self, on_stdin: Callable[[bytes], Awaitable[None]], on_close_stdin: Callable[[], None],
                      on_resize: Callable[[int, int], None]) -> None:
        """Dispatch client messages until the client closes the websocket."""
        async for msg in self.ws:
            if msg.type != WSMsgType.BINARY or not msg.data:
                continue
            channel, payload = msg.data[0], msg.data[1:]
            if channel == Channel.STDIN and payload:
                await on_stdin(payload)
            elif channel == Channel.CLOSE and payload[:1] == bytes([Channel.STDIN]):
                on_close_stdin()
            elif channel == Channel.RESIZE:
                size = _parse_resize(payload)
                if size:
                    on_resize(*size)


def _parse_resize(payload: bytes) -> tuple[int, int] | None:
    try:
        size = json.loads(payload)
        return int(size.get("Width", 0)), int(size.get("Height", 0))
    except (ValueError, TypeError, AttributeError):
        return None


async def run_exec(session: Session, ref: ContainerRef) -> None:
    argv = [*ref.exec_prefix, *session.opts.command]
    try:
        proc = await (start_pty(argv, ref) if session.opts.tty else start_pipes(argv, ref, session.opts))
    except OSError as exc:
        message, code = spawn_error(exc, argv, ref.cwd)
        await session.send(Channel.STDERR, message)
        await session.finish(exit_status(code))
        return
    try:
        code = await _supervise(session, proc)
    finally:
        proc.kill()
        proc.close()
    if code is not None:
        await session.finish(exit_status(code))


async def _supervise(session: Session, proc: ExecProcess) -> int | None:
    """Relay until the process exits (its exit code) or the client goes away (None)."""
    async def on_stdin(data: bytes) -> None:
        if proc.stdin is not None:
            with contextlib.suppress(ConnectionResetError, BrokenPipeError):
                proc.stdin.write(data)
                await proc.stdin.drain()

    pumps = [asyncio.ensure_future(session.pump(c, r)) for c, r in proc.outputs]
    client = asyncio.ensure_future(session.receive(on_stdin, proc.close_stdin, proc.resize))
    waiter = asyncio.ensure_future(proc.process.wait())
    try:
        await asyncio.wait({waiter, client}, return_when=asyncio.FIRST_COMPLETED)
        if not waiter.done():
            return None
        if pumps:
            await asyncio.wait(pumps, timeout=OUTPUT_GRACE_SECONDS)
        return exit_code(waiter.result())
    finally:
        for task in (*pumps, client, waiter):
            task.cancel()
        await asyncio.gather(*pumps, client, waiter, return_exceptions=True)


async def run_attach(session: Session, access: ContainerAccess, ref: ContainerRef) -> None:
    stdin = access.stdin(ref) if session.opts.stdin else None

    async def on_stdin(data: bytes) -> None:
        if stdin is not None and not stdin.is_closing():
            with contextlib.suppress(ConnectionResetError, BrokenPipeError):
                stdin.write(data)
                await stdin.drain()

    def on_close_stdin() -> None:
        if stdin is not None and ref.stdin_once:
            stdin.close()

    async def relay_output() -> None:
        async for stream, chunk in access.output(ref):
            await session.send(Channel.STDERR if stream == "stderr" else Channel.STDOUT, chunk)

    output = asyncio.ensure_future(relay_output())
    client = asyncio.ensure_future(session.receive(on_stdin, on_close_stdin, lambda w, h: None))
    try:
        await asyncio.wait({output, client}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (output, client):
            task.cancel()
        await asyncio.gather(output, client, return_exceptions=True)
    if output.done() and not output.cancelled() and output.exception() is None:
        await session.finish(exit_status(0))  # the container's output ended: it exited


# ---- the application ------------------------------------------------------------------------------------------

def _is_websocket(request: web.Request) -> bool:
    return (request.method == "GET" and request.headers.get("Upgrade", "").lower() == "websocket"
            and "upgrade" in request.headers.get("Connection", "").lower())


def _offered_protocols(request: web.Request) -> list[str]:
    return [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]


class KubeletAPI:
    def __init__(self, access: ContainerAccess) -> None:
        self.access = access

    def _container(self, request: web.Request, must_run: bool = False) -> ContainerRef:
        info = request.match_info
        try:
            ref = self.access.container(info["namespace"], info["pod"], info["container"])
        except LookupError as exc:
            raise errors.APIError(404, "NotFound", str(exc.args[0]) if exc.args else str(exc)) from None
        if must_run and not ref.running:
            raise errors.bad_request(f'container "{ref.container}" in pod "{ref.pod}" is not running')
        return ref

    async def container_logs(self, request: web.Request) -> web.StreamResponse:
        opts = parse_log_options(request.query, datetime.datetime.now(datetime.UTC))
        ref = self._container(request)
        path = _log_file(ref, opts.previous)
        response = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
        await response.prepare(request)
        with contextlib.suppress(ConnectionResetError):
            if path is not None:
                await stream_logs(response, self.access, ref, path, opts)
            await response.write_eof()
        return response

    async def exec(self, request: web.Request) -> web.StreamResponse:
        return await self._stream(request, exec_=True)

    async def attach(self, request: web.Request) -> web.StreamResponse:
        return await self._stream(request, exec_=False)

    async def _stream(self, request: web.Request, exec_: bool) -> web.StreamResponse:
        opts = parse_stream_options(request.query, exec_)
        ref = self._container(request, must_run=True)
        if not _is_websocket(request):
            raise errors.bad_request(WEBSOCKET_REQUIRED)
        if not set(_offered_protocols(request)) & set(PROTOCOLS):
            raise errors.bad_request(f"unsupported websocket subprotocols {_offered_protocols(request)}; "
                                     f"supported: {list(PROTOCOLS)}")
        ws = web.WebSocketResponse(protocols=PROTOCOLS, max_msg_size=0, compress=False)
        await ws.prepare(request)
        session = Session(ws, opts)
        try:
            if exec_:
                await run_exec(session, ref)
            else:
                await run_attach(session, self.access, ref)
        except Exception:  # noqa: BLE001 — upgraded already: no Status possible, log and close
            log.exception("%s into %s/%s/%s failed", "exec" if exec_ else "attach", ref.namespace, ref.pod,
                          ref.container)
        if not ws.closed:
            await ws.close()
        return ws


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except errors.APIError as exc:
        return _status(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _status(errors.APIError(exc.status, exc.reason.replace(" ", ""), exc.reason))
    except Exception as exc:  # noqa: BLE001 — the boundary: log it, answer a Status, never a traceback
        log.exception("internal error serving %s %s", request.method, request.path)
        return _status(errors.internal(type(exc).__name__))


def _status(exc: errors.APIError) -> web.Response:
    return web.Response(body=json.dumps(exc.to_status()).encode(), status=exc.code,
                        content_type="application/json")


def make_app(access: ContainerAccess) -> web.Application:
    api = KubeletAPI(access)
    app = web.Application(middlewares=[_errors])
    app.router.add_get("/containerLogs/{namespace}/{pod}/{container}", api.container_logs)
    for path, handler in (("/exec", api.exec), ("/attach", api.attach)):
        route = path + "/{namespace}/{pod}/{container}"
        app.router.add_get(route, handler)
        app.router.add_post(route, handler)
    return app
