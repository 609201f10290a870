"""The kubelet API over a stand-in ContainerAccess: real CRI log files in tmp_path, real processes for exec/attach.

Pure pieces (option parsing, timestamp formatting, rendering, status) are tables; the HTTP side runs an aiohttp test
server and speaks the v5.channel.k8s.io framing as kubectl does.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from multidict import MultiDict

from svcnet.api import errors
from svcnet.node import crilog, kubelet_api
from svcnet.node.access import ContainerRef
from tests.unit.node.standin import StandinAccess

NOW = datetime.datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=datetime.UTC)
V5 = "v5.channel.k8s.io"
DEADLINE = 15.0


# ---- pure -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("stamp", "printed"), [
    pytest.param("2026-01-02T03:04:05.123456000Z", "2026-01-02T03:04:05.123456Z", id="trailing-zeros"),
    pytest.param("2026-01-02T03:04:05.000000000Z", "2026-01-02T03:04:05Z", id="whole-second"),
    pytest.param("2026-01-02T03:04:05.100000001Z", "2026-01-02T03:04:05.100000001Z", id="nanos"),
    pytest.param("2026-01-02T03:04:05Z", "2026-01-02T03:04:05Z", id="no-fraction"),
])
def test_format_timestamp(stamp: str, printed: str) -> None:
    assert kubelet_api.format_timestamp(stamp) == printed


@pytest.mark.parametrize(("query", "expected"), [
    pytest.param({}, kubelet_api.LogOptions(), id="defaults"),
    pytest.param({"follow": "true", "previous": "1", "timestamps": ""},
                 kubelet_api.LogOptions(follow=True, previous=True, timestamps=True), id="bools"),
    pytest.param({"follow": "false", "timestamps": "F"}, kubelet_api.LogOptions(), id="false-bools"),
    pytest.param({"tailLines": "0", "limitBytes": "7"}, kubelet_api.LogOptions(tail_lines=0, limit_bytes=7),
                 id="ints"),
    pytest.param({"sinceSeconds": "5"}, kubelet_api.LogOptions(since=NOW - datetime.timedelta(seconds=5)),
                 id="since-seconds"),
    pytest.param({"sinceTime": "2026-01-02T03:00:00Z"},
                 kubelet_api.LogOptions(since=datetime.datetime(2026, 1, 2, 3, 0, tzinfo=datetime.UTC)),
                 id="since-time"),
])
def test_parse_log_options(query: dict[str, str], expected: kubelet_api.LogOptions) -> None:
    assert kubelet_api.parse_log_options(query, NOW) == expected


@pytest.mark.parametrize(("query", "message"), [
    pytest.param({"tailLines": "-1"}, "tailLines: Invalid value: -1: must be greater than or equal to 0", id="tail"),
    pytest.param({"limitBytes": "0"}, "limitBytes: Invalid value: 0: must be greater than or equal to 1",
                 id="limit"),
    pytest.param({"tailLines": "x"}, 'invalid value for tailLines: "x": must be an integer', id="not-int"),
    pytest.param({"sinceSeconds": "1", "sinceTime": "2026-01-02T03:00:00Z"},
                 "at most one of sinceTime or sinceSeconds may be specified", id="both-since"),
    pytest.param({"sinceTime": "yesterday"}, 'invalid value for sinceTime: "yesterday": must be an RFC 3339 time',
                 id="bad-time"),
])
def test_parse_log_options_rejects(query: dict[str, str], message: str) -> None:
    with pytest.raises(errors.APIError) as caught:
        kubelet_api.parse_log_options(query, NOW)
    assert (caught.value.code, caught.value.message) == (400, message)


@pytest.mark.parametrize(("query", "exec_", "expected"), [
    pytest.param([("command", "echo"), ("command", "a b"), ("stdout", "true")], True,
                 kubelet_api.StreamOptions(("echo", "a b"), False, True, False, False), id="argv"),
    pytest.param([("stdin", "true"), ("stdout", "true"), ("tty", "true")], False,
                 kubelet_api.StreamOptions((), True, True, False, True), id="attach-tty"),
])
def test_parse_stream_options(query: list[tuple[str, str]], exec_: bool,
                              expected: kubelet_api.StreamOptions) -> None:
    assert kubelet_api.parse_stream_options(MultiDict(query), exec_) == expected


@pytest.mark.parametrize(("query", "message"), [
    pytest.param([("stdout", "true")], "you must specify at least one command for the container", id="no-command"),
    pytest.param([("command", "ls")], "you must specify at least 1 of stdin, stdout, stderr", id="no-streams"),
])
def test_parse_stream_options_rejects(query: list[tuple[str, str]], message: str) -> None:
    with pytest.raises(errors.APIError, match=message):
        kubelet_api.parse_stream_options(MultiDict(query), True)


@pytest.mark.parametrize(("code", "status"), [
    pytest.param(0, {"metadata": {}, "status": "Success"}, id="success"),
    pytest.param(3, {"metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
                     "message": "command terminated with non-zero exit code: exit status 3",
                     "details": {"causes": [{"reason": "ExitCode", "message": "3"}]}}, id="exit-3"),
])
def test_exit_status(code: int, status: dict[str, Any]) -> None:
    assert kubelet_api.exit_status(code) == status


def _records(*lines: tuple[int, str, bytes]) -> list[crilog.Record]:
    data = b"".join(crilog.format_record(s, t, NOW + datetime.timedelta(seconds=sec)) for sec, s, t in lines)
    return kubelet_api.parse_records(data)


@pytest.mark.parametrize(("opts", "output"), [
    pytest.param(kubelet_api.LogOptions(), b"a\nbc\nd\n", id="plain-and-partial"),
    pytest.param(kubelet_api.LogOptions(limit_bytes=4), b"a\nbc", id="limit"),
    pytest.param(kubelet_api.LogOptions(since=NOW + datetime.timedelta(seconds=2)), b"d\n", id="since"),
    pytest.param(kubelet_api.LogOptions(timestamps=True, since=NOW + datetime.timedelta(seconds=2)),
                 b"2026-01-02T03:04:07.123456Z d\n", id="timestamps"),
])
def test_renderer(opts: kubelet_api.LogOptions, output: bytes) -> None:
    records = _records((0, "stdout", b"a\nb"), (1, "stderr", b"c\n"), (2, "stdout", b"d\n"))
    assert kubelet_api.LogRenderer(opts).render(records) == output


@pytest.mark.parametrize(("lines", "count", "expected"), [
    pytest.param(5, 2, [b"3", b"4"], id="two"),
    pytest.param(5, 9, [b"0", b"1", b"2", b"3", b"4"], id="more-than-there-are"),
    pytest.param(5, 0, [], id="zero"),
    pytest.param(0, 3, [], id="empty-file"),
    pytest.param(20000, 1, [b"19999"], id="across-blocks"),
])
def test_tail_offset(tmp_path: Path, lines: int, count: int, expected: list[bytes]) -> None:
    path = tmp_path / "0.log"
    path.write_bytes(b"".join(crilog.format_record("stdout", f"{i}\n".encode(), NOW) for i in range(lines)))
    with path.open("rb") as f:
        offset = kubelet_api._tail_offset(f, count)
    rest = path.read_bytes()[offset:]
    assert [r.text for r in kubelet_api.parse_records(rest)] == expected


# ---- HTTP: logs -----------------------------------------------------------------------------------------------

@pytest.fixture
def access(tmp_path: Path) -> StandinAccess:
    return StandinAccess(tmp_path)


@pytest.fixture
async def base(access: StandinAccess) -> AsyncIterator[str]:
    server = TestServer(kubelet_api.make_app(access), host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=DEADLINE)) as session:
        yield session


def _logs_container(access: StandinAccess) -> ContainerRef:
    ref = access.add("ns", "p", "c", runs=2)
    access.write(ref, "stdout", b"old run\n", NOW, run=0)
    for i in range(4):
        access.write(ref, "stdout" if i % 2 else "stderr", f"line {i}\n".encode(), NOW + datetime.timedelta(i))
    return ref


@pytest.mark.parametrize(("query", "body"), [
    pytest.param({}, "line 0\nline 1\nline 2\nline 3\n", id="all"),
    pytest.param({"tailLines": "2"}, "line 2\nline 3\n", id="tail"),
    pytest.param({"limitBytes": "9"}, "line 0\nli", id="limit"),
    pytest.param({"previous": "true"}, "old run\n", id="previous"),
    pytest.param({"tailLines": "1", "timestamps": "true"}, "2026-01-05T03:04:05.123456Z line 3\n", id="timestamps"),
    pytest.param({"sinceTime": "2026-01-04T00:00:00Z"}, "line 2\nline 3\n", id="since-time"),
    pytest.param({"sinceSeconds": "60"}, "", id="since-seconds-all-old"),
])
async def test_logs(access: StandinAccess, base: str, http: aiohttp.ClientSession, query: dict[str, str],
                    body: str) -> None:
    _logs_container(access)
    async with http.get(f"{base}/containerLogs/ns/p/c", params=query) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        assert await response.text() == body


@pytest.mark.parametrize(("path", "query", "code", "message"), [
    pytest.param("/containerLogs/ns/p/nope", {}, 404, 'container "nope" not found in pod "ns/p"', id="unknown"),
    pytest.param("/containerLogs/ns/q/c", {"previous": "true"}, 400,
                 'previous terminated container "c" in pod "q" not found', id="no-previous"),
    pytest.param("/containerLogs/ns/p/c", {"tailLines": "-3"}, 400,
                 "tailLines: Invalid value: -3: must be greater than or equal to 0", id="bad-tail"),
    pytest.param("/exec/ns/p/c", {"command": "ls", "stdout": "1"}, 400, kubelet_api.WEBSOCKET_REQUIRED,
                 id="exec-without-websocket"),
    pytest.param("/exec/ns/p/nope", {"command": "ls", "stdout": "1"}, 404,
                 'container "nope" not found in pod "ns/p"', id="exec-unknown"),
    pytest.param("/exec/ns/stopped/c", {"command": "ls", "stdout": "1"}, 400,
                 'container "c" in pod "stopped" is not running', id="exec-stopped"),
    pytest.param("/nowhere", {}, 404, "Not Found", id="no-route"),
])
async def test_errors_are_statuses(access: StandinAccess, base: str, http: aiohttp.ClientSession, path: str,
                                   query: dict[str, str], code: int, message: str) -> None:
    _logs_container(access)
    access.add("ns", "q", "c")
    access.add("ns", "stopped", "c", running=False)
    async with http.post(base + path, params=query, headers={"Upgrade": "SPDY/3.1", "Connection": "Upgrade"}) \
            if path.startswith("/exec") else http.get(base + path, params=query) as response:
        status = await response.json()
    assert (response.status, status["kind"], status["code"], status["message"]) == (code, "Status", code, message)


async def test_logs_follow_streams_until_the_container_stops(access: StandinAccess, base: str,
                                                            http: aiohttp.ClientSession) -> None:
    ref = access.add("ns", "p", "c")
    access.write(ref, "stdout", b"first\n")
    async with http.get(f"{base}/containerLogs/ns/p/c", params={"follow": "true"}) as response:
        assert await response.content.readline() == b"first\n"
        access.write(ref, "stdout", b"second\n")
        assert await response.content.readline() == b"second\n"
        access.write(ref, "stderr", b"last words\n")
        access.stop(ref)
        assert await response.content.read() == b"last words\n"  # ends: read() returns at EOF


# ---- HTTP: exec and attach ------------------------------------------------------------------------------------

@dataclass
class Outcome:
    stdout: bytes
    stderr: bytes
    status: dict[str, Any]
    protocol: str | None


async def _session(http: aiohttp.ClientSession, url: str, query: Sequence[tuple[str, str]],
                   messages: Sequence[bytes] = ()) -> Outcome:
    """One websocket session as kubectl runs it: send `messages` (channel byte + payload), collect the rest."""
    out = {1: b"", 2: b""}
    status: dict[str, Any] = {}
    async with http.ws_connect(url, params=list(query), protocols=[V5]) as ws:
        for message in messages:
            await ws.send_bytes(message)
        async with asyncio.timeout(DEADLINE):
            async for msg in ws:
                assert msg.type == aiohttp.WSMsgType.BINARY
                channel, payload = msg.data[0], msg.data[1:]
                if channel == 3:
                    status = json.loads(payload)
                else:
                    out[channel] += payload
        return Outcome(out[1], out[2], status, ws.protocol)


def _exec_query(*argv: str, stdin: bool = False, tty: bool = False) -> list[tuple[str, str]]:
    query = [("command", a) for a in argv] + [("stdout", "true")]
    query += [("stdin", "true")] if stdin else []
    query += [("tty", "true")] if tty else [("stderr", "true")]
    return query


async def test_exec_separates_streams_and_reports_the_exit_code(access: StandinAccess, base: str,
                                                               http: aiohttp.ClientSession) -> None:
    access.add("ns", "p", "c")
    outcome = await _session(http, f"{base}/exec/ns/p/c",
                             _exec_query("sh", "-c", 'echo out; echo "$GREETING" >&2; pwd >&2; exit 3'))
    assert outcome.protocol == V5
    assert outcome.stdout == b"out\n"
    assert outcome.stderr == f"hello from c\n{access.root}\n".encode()
    assert outcome.status == kubelet_api.exit_status(3)


async def test_exec_stdin_until_close(access: StandinAccess, base: str, http: aiohttp.ClientSession) -> None:
    access.add("ns", "p", "c")
    outcome = await _session(http, f"{base}/exec/ns/p/c", _exec_query("cat", stdin=True),
                             [b"\x00hello ", b"\x00world\n", b"\xff\x00"])
    assert (outcome.stdout, outcome.stderr, outcome.status) == (b"hello world\n", b"", {"metadata": {},
                                                                                       "status": "Success"})


async def test_exec_missing_command_is_exit_127(access: StandinAccess, base: str,
                                                http: aiohttp.ClientSession) -> None:
    access.add("ns", "p", "c")
    outcome = await _session(http, f"{base}/exec/ns/p/c", _exec_query("no-such-command-xyz"))
    assert outcome.stderr == b'exec: "no-such-command-xyz": executable file not found in $PATH\n'
    assert outcome.status == kubelet_api.exit_status(127)


async def test_exec_tty_is_a_terminal_that_honours_resize(access: StandinAccess, base: str,
                                                         http: aiohttp.ClientSession) -> None:
    access.add("ns", "p", "c")
    script = 'read line; tty; stty size; echo err >&2; echo "got $line"; exit 4'  # reads first: resized by then
    outcome = await _session(http, f"{base}/exec/ns/p/c", _exec_query("sh", "-c", script, stdin=True, tty=True),
                             [b'\x04{"Width":100,"Height":30}\n', b"\x00typed\n"])
    lines = outcome.stdout.decode().replace("\r", "").splitlines()
    assert lines[0] == "typed"  # the terminal echoes input
    assert lines[1].startswith("/dev/pts/")
    assert lines[2:] == ["30 100", "err", "got typed"]  # stderr is merged into stdout
    assert (outcome.stderr, outcome.status) == (b"", kubelet_api.exit_status(4))


async def test_exec_process_dies_with_the_session(access: StandinAccess, base: str, http: aiohttp.ClientSession,
                                                  tmp_path: Path) -> None:
    access.add("ns", "p", "c")
    query = _exec_query("sh", "-c", "echo $$; exec sleep 300")
    async with http.ws_connect(f"{base}/exec/ns/p/c", params=query, protocols=[V5]) as ws:
        msg = await asyncio.wait_for(ws.receive(), DEADLINE)
        pid = int(msg.data[1:])
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while _alive(pid):
        assert loop.time() < deadline, f"exec'd process {pid} outlived its session"
        await asyncio.sleep(0.02)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False
    finally:
        with __import__("contextlib").suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


async def test_exec_rejects_a_websocket_without_channel_protocol(access: StandinAccess, base: str,
                                                                 http: aiohttp.ClientSession) -> None:
    access.add("ns", "p", "c")
    with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
        async with http.ws_connect(f"{base}/exec/ns/p/c", params=_exec_query("true"), protocols=["chat"]):
            pass
    assert caught.value.status == 400


async def test_attach_relays_the_main_process(access: StandinAccess, base: str,
                                              http: aiohttp.ClientSession) -> None:
    ref = access.add("ns", "p", "c", stdin_once=True)
    process = await access.start_process(ref, "sh", "-c", 'cat; echo "done" >&2')
    query = [("stdin", "true"), ("stdout", "true"), ("stderr", "true")]
    outcome = await _session(http, f"{base}/attach/ns/p/c", query, [b"\x00piped\n", b"\xff\x00"])
    assert (outcome.stdout, outcome.stderr, outcome.status) == (b"piped\n", b"done\n", {"metadata": {},
                                                                                       "status": "Success"})
    assert await asyncio.wait_for(process.wait(), DEADLINE) == 0


@pytest.mark.parametrize(("exc", "message", "code"), [
    pytest.param(FileNotFoundError(2, "No such file or directory", "nsenter"),
                 b'exec: "nsenter": executable file not found in $PATH\n', 127, id="not-found"),
    pytest.param(PermissionError(13, "Permission denied", "/bin/x"), b'exec: "nsenter": Permission denied\n', 126,
                 id="not-executable"),
    pytest.param(FileNotFoundError(2, "No such file or directory", "/work"),
                 b'chdir to cwd ("/work") set in config.json failed: No such file or directory\n', 126,
                 id="missing-cwd"),
])
def test_spawn_error(exc: OSError, message: bytes, code: int) -> None:
    assert kubelet_api.spawn_error(exc, ["nsenter", "-t", "1", "ls"], "/work") == (message, code)
