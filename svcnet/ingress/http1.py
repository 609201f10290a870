"""HTTP/1.1 glue for the ingress proxy: the pure, per-request checks and byte builders around `httptools`.

`httptools` (llhttp) tokenises messages and already refuses most smuggling vectors (Content-Length together with
Transfer-Encoding, duplicate or malformed Content-Length, a request Transfer-Encoding that does not end in
`chunked`, obs-fold, whitespace before the colon, CR/LF/NUL in names, values and the target, bad chunk sizes).
This module adds what llhttp leaves to the application: one Host (required in HTTP/1.1), Transfer-Encoding exactly
`chunked`, origin-form targets (plus `*` for OPTIONS and absolute-form, normalised), no dot segments, encoded
slashes, backslashes or NUL in the path after percent-decoding, and the 32 KiB header section limit.

Responses: `scan_response_head` takes the raw head llhttp has accepted and finds the framing and hop-by-hop
headers with one regular-expression pass over it (no callback per header); the other lines are passed on as sent.

Nothing here does I/O; `scan_request` and `scan_response_head` run once per request and must stay cheap: one pass
over the headers, fast paths for the common (clean) target.

Invariants:
- every rejection is a `Rejected(status, reason)`; the proxy answers it and closes the connection;
- the forwarded header list never contains hop-by-hop headers, Expect, or the X-Forwarded-* / X-Real-IP headers
  that the proxy sets itself; framing (Content-Length or `Transfer-Encoding: chunked`) is re-added by the proxy.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote_to_bytes

MAX_HEADER_BYTES = 32 * 1024
IDEMPOTENT = frozenset({b"GET", b"HEAD", b"OPTIONS", b"PUT", b"DELETE", b"TRACE"})
HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer",
                        b"transfer-encoding", b"upgrade"})
_SET_BY_PROXY = frozenset({b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"x-forwarded-port",
                           b"x-real-ip", b"expect"})
_DROP = HOP_BY_HOP | _SET_BY_PROXY
_HOST_CHARS = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._:[]~!$&'()*+,;="
_BAD_ESCAPES = (b"%2f", b"%5c", b"%00")
_TARGET_TO_CHECK = re.compile(rb"[%#\\]|/\.")  # anything check_path / _check_target must look at closely


class Rejected(Exception):
    """A request the proxy refuses; `status` is 400, 413, 431 or 505."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason


class RequestHead:
    """What the proxy needs from one request head (built once per request, hot path: the class attributes are the
    defaults, so that a plain request sets only what it has)."""

    authority = b""  # Host (or the absolute-form authority), as sent
    content_length = -1  # -1: none
    chunked = False
    continue_ = False  # Expect: 100-continue
    upgrade = b""  # the Upgrade value when Connection lists "upgrade"
    xff = b""  # the client's X-Forwarded-For
    target = b""  # request target to send upstream
    path = "/"  # percent-decoded, for the route lookup
    query = ""

    def __init__(self, lookup_headers: Mapping[str, str]) -> None:
        self.forward: list[bytes] = []  # header lines "Name: value\r\n" to pass on
        self.lookup_headers = lookup_headers


class LazyHeaders(Mapping[str, str]):
    """Request headers by lower-case name (repeated ones joined by ", "), decoded only if a route asks."""

    __slots__ = ("_dict", "raw")

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self.raw = raw
        self._dict: dict[str, str] | None = None

    def _build(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, value in self.raw:
            key, text = name.decode("latin-1").lower(), value.decode("latin-1")
            out[key] = out[key] + ", " + text if key in out else text
        self._dict = out
        return out

    def __getitem__(self, key: str) -> str:
        return (self._dict if self._dict is not None else self._build())[key]

    def get(self, key: str, default: Any = None) -> Any:
        return (self._dict if self._dict is not None else self._build()).get(key, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict if self._dict is not None else self._build())

    def __len__(self) -> int:
        return len(self._dict if self._dict is not None else self._build())


def scan_request(method: bytes, url: bytes, http11: bool, headers: list[tuple[bytes, bytes]]) -> RequestHead:
    """Check a parsed request head and sort its headers; raises `Rejected`."""
    head = RequestHead(LazyHeaders(headers))
    forward = head.forward
    host: bytes | None = None
    connection = b""
    upgrade = b""
    for name, value in headers:
        lname = name.lower()
        if lname not in _DROP:
            if lname == b"host":
                if host is not None:
                    raise Rejected(400, "several Host headers")
                host = value
            elif lname == b"content-length":
                head.content_length = int(value)  # llhttp allows digits only, and only one header
            forward.append(name + b": " + value + b"\r\n")
        elif lname == b"transfer-encoding":
            if value.lower() != b"chunked":
                raise Rejected(400, "Transfer-Encoding other than chunked")
            head.chunked = True
        elif lname == b"connection":
            connection = value.lower()
        elif lname == b"upgrade":
            upgrade = value
        elif lname == b"x-forwarded-for":
            head.xff = value if not head.xff else head.xff + b", " + value
        elif lname == b"expect":
            if value.lower() != b"100-continue":
                raise Rejected(417, "unsupported Expect")
            head.continue_ = http11
    if connection and connection not in (b"keep-alive", b"close"):
        _apply_connection_tokens(head, connection, upgrade)
    if url[:1] == b"/" and _TARGET_TO_CHECK.search(url) is None:  # the common, clean origin-form target
        head.target = url
        path, _, query = url.partition(b"?")
        head.path = path.decode("latin-1")
        if query:
            head.query = query.decode("latin-1")
    else:
        _check_target(head, method, url)
    if head.authority:  # absolute-form: its authority wins over Host (RFC 9112 3.2.2)
        _replace_host(head)
    elif host is not None:
        head.authority = _check_host(host)
    elif http11:
        raise Rejected(400, "missing Host header")
    return head


def _apply_connection_tokens(head: RequestHead, connection: bytes, upgrade: bytes) -> None:
    tokens = {t.strip() for t in connection.split(b",")}
    if b"upgrade" in tokens and upgrade:
        head.upgrade = upgrade
    listed = tokens - {b"keep-alive", b"close", b"upgrade", b""}
    if listed:
        head.forward = [line for line in head.forward if line.split(b":", 1)[0].lower() not in listed]


def _check_target(head: RequestHead, method: bytes, url: bytes) -> None:
    if url[:1] != b"/":
        if url == b"*" and method == b"OPTIONS":
            head.target = url
            return
        scheme, sep, rest = url.partition(b"://")
        if not sep or scheme.lower() not in (b"http", b"https"):
            raise Rejected(400, "request target is not origin-form")
        slash = min((i for i in (rest.find(b"/"), rest.find(b"?")) if i >= 0), default=len(rest))
        head.authority = _check_host(rest[:slash])
        url = rest[slash:] if rest[slash:slash + 1] == b"/" else b"/" + rest[slash:]
    if b"#" in url:
        raise Rejected(400, "fragment in request target")
    raw_path, _, query = url.partition(b"?")
    head.target = url
    head.query = query.decode("latin-1")
    head.path = check_path(raw_path)


def _replace_host(head: RequestHead) -> None:
    head.forward = [line for line in head.forward if line[:5].lower() != b"host:"]
    head.forward.append(b"Host: " + head.authority + b"\r\n")
    raw = head.lookup_headers.raw  # type: ignore[attr-defined]
    head.lookup_headers = LazyHeaders([(n, v) for n, v in raw if n.lower() != b"host"] + [(b"Host", head.authority)])


def _check_host(host: bytes) -> bytes:
    if not host or host.translate(None, _HOST_CHARS):  # "@" (userinfo) is not among the allowed characters
        raise Rejected(400, "invalid Host")
    return host


def check_path(raw: bytes) -> str:
    """The percent-decoded path for routing; rejects traversal, encoded separators, NUL and bad escapes."""
    if b"%" not in raw and b"/." not in raw and b"\\" not in raw:
        return raw.decode("latin-1") if not raw.isascii() else raw.decode("ascii")
    if b"\\" in raw:
        raise Rejected(400, "backslash in path")
    if b"%" in raw:
        lower = raw.lower()
        if any(bad in lower for bad in _BAD_ESCAPES):
            raise Rejected(400, "encoded slash, backslash or NUL in path")
        _check_escapes(raw)
        raw = unquote_to_bytes(raw)
    for segment in raw.split(b"/"):
        if segment in (b".", b".."):
            raise Rejected(400, "dot segment in path")
    return raw.decode("utf-8", "surrogateescape")


def _check_escapes(raw: bytes) -> None:
    hexdigits = b"0123456789abcdefABCDEF"
    i = raw.find(b"%")
    while i >= 0:
        pair = raw[i + 1:i + 3]
        if len(pair) != 2 or pair.translate(None, hexdigits):
            raise Rejected(400, "invalid percent-encoding in path")
        i = raw.find(b"%", i + 3)


def modify_headers(lines: list[bytes], set_: tuple[tuple[str, str], ...], add: tuple[tuple[str, str], ...],
                   remove: tuple[str, ...]) -> list[bytes]:
    """Gateway API RequestHeaderModifier on forward lines; framing and hop-by-hop headers cannot be touched."""
    protected = HOP_BY_HOP | {b"content-length"}
    drop = {n.lower().encode("latin-1") for n in remove} | {n.lower().encode("latin-1") for n, _ in set_}
    drop -= protected
    out = [line for line in lines if line.split(b":", 1)[0].lower() not in drop]
    for name, value in (*set_, *add):
        if name.lower().encode("latin-1") not in protected:
            out.append(header_line(name, value))
    return out


def header_line(name: str, value: str) -> bytes:
    line = f"{name}: {value}\r\n".encode("latin-1", "replace")
    if line.count(b"\r") != 1 or line.count(b"\n") != 1 or b"\0" in line:
        raise ValueError(f"header {name!r} has CR, LF or NUL")  # the compiler validates; defence in depth
    return line


class BadResponse(ValueError):
    """A backend response head the proxy will not pass on (answered 502, or the connection is aborted)."""


class ResponseHead:
    """What the proxy needs from one response head (a plain slotted class: built once per response, hot path)."""

    __slots__ = ("chunked", "headers", "length", "upgrade")

    def __init__(self, headers: bytes, length: bool, chunked: bool, upgrade: bytes) -> None:
        self.headers = headers  # the header lines to pass on, each ending in CRLF, hop-by-hop ones removed
        self.length = length  # a Content-Length header is among them
        self.chunked = chunked  # Transfer-Encoding ends in "chunked" (the body is chunked on the wire)
        self.upgrade = upgrade  # the Upgrade value, as sent


# The response headers the proxy acts on, matched at line starts in the lower-cased head. Everything else is
# copied byte for byte, which is safe because llhttp (strict mode) has already refused the head unless every line
# ends in CRLF, no name has whitespace before its colon, no value holds CR, LF, NUL or other controls, there is no
# obs-fold, at most one Content-Length and not both Content-Length and Transfer-Encoding (test_proxy pins this).
_RESPONSE_FRAMING = re.compile(  # groups: 1 content-length, 2 transfer-encoding, 3 upgrade; factored by first letter
    rb"\r\n(?:co(?:(ntent-length)|nnection)|t(?:e|railer|(ransfer-encoding))|keep-alive|proxy-connection|(upgrade)):")


def scan_response_head(raw: bytes) -> ResponseHead:
    """Sort a response head llhttp has accepted (status line through the empty line), with one regular-expression
    pass instead of a callback per header: hop-by-hop lines are cut out, everything else is passed on as sent."""
    lowered = raw.lower()
    pos = start = lowered.find(b"\r\n") + 2
    length = chunked = False
    upgrade = b""
    kept = None
    for match in _RESPONSE_FRAMING.finditer(lowered, start - 2):
        which = match.lastindex
        if which == 1:
            length = True
            continue
        line_end = lowered.find(b"\r\n", match.end())
        if which == 2:
            chunked = lowered[match.end():line_end].rstrip(b" \t").endswith(b"chunked")
        elif which == 3:
            upgrade = raw[match.end():line_end].strip(b" \t")
        if kept is None:
            kept = [raw[start:match.start() + 2]]
        else:
            kept.append(raw[pos:match.start() + 2])
        pos = line_end + 2
    if kept is None:
        return ResponseHead(raw[start:-2], length, chunked, upgrade)
    kept.append(raw[pos:-2])
    return ResponseHead(b"".join(kept), length, chunked, upgrade)


STATUS_LINES = {s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n".encode() for s in HTTPStatus}


def status_line(status: int) -> bytes:
    line = STATUS_LINES.get(status)
    return line if line is not None else b"HTTP/1.1 %d \r\n" % status


def error_body(status: int) -> bytes:
    """nginx's error page text (ingress-nginx's default backend answers 404 with its own one-liner)."""
    if status == 404:
        return b"default backend - 404"
    phrase = HTTPStatus(status).phrase if status in STATUS_LINES else ""
    return (f"<html>\r\n<head><title>{status} {phrase}</title></head>\r\n<body>\r\n"
            f"<center><h1>{status} {phrase}</h1></center>\r\n<hr><center>svcnet</center>\r\n"
            "</body>\r\n</html>\r\n").encode()


def local_response(status: int, close: bool, head_only: bool = False, extra: bytes = b"") -> bytes:
    body = error_body(status) if status >= 400 else b""
    content_type = b"text/plain" if status == 404 else b"text/html"
    parts = [status_line(status), b"Server: svcnet\r\n", extra]
    if body:
        parts.append(b"Content-Type: " + content_type + b"\r\n")
    parts.append(b"Content-Length: %d\r\n" % len(body))
    if close:
        parts.append(b"Connection: close\r\n")
    parts.append(b"\r\n")
    if not head_only:
        parts.append(body)
    return b"".join(parts)
