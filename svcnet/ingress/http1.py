"""HTTP/1.1 glue for the ingress proxy: the pure, per-request checks and byte builders around `httptools`.

`httptools` (llhttp) tokenises messages and already refuses most smuggling vectors (Content-Length together with
Transfer-Encoding, duplicate or malformed Content-Length, a request Transfer-Encoding that does not end in
`chunked`, obs-fold, whitespace before the colon, CR/LF/NUL in names, values and the target, bad chunk sizes).
This module adds what llhttp leaves to the application: one Host (required in HTTP/1.1), Transfer-Encoding exactly
`chunked`, origin-form targets (plus `*` for OPTIONS and absolute-form, normalised), no dot segments, encoded
slashes, backslashes or NUL in the path after percent-decoding, and the 32 KiB header section limit.

Responses: `scan_response_head` takes the raw head llhttp has accepted and cuts out the hop-by-hop headers with one
regular-expression `split` of it (no callback per header); the other lines are passed on as sent.

Nothing here does I/O; `scan_request` and `scan_response_head` run once per request and must stay cheap: one pass
over the headers, fast paths for the common (clean) target.

Invariants:
- every rejection is a `Rejected(status, reason)`; the proxy answers it and closes the connection;
- the forwarded header list never contains hop-by-hop headers, Expect, or the X-Forwarded-* / X-Real-IP headers
  that the proxy sets itself; framing (Content-Length or `Transfer-Encoding: chunked`) is re-added by the proxy.
"""

from __future__ import annotations

import re
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
_PLAIN_TARGET = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/-_~?=&+,;:!$'()*@"  # none of those


class Rejected(Exception):
    """A request the proxy refuses; `status` is 400, 413, 431 or 505."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason


class RequestHead:
    """One request head: what the parser delivered (`method`, `url`, `http11`, `headers`) and what `scan_request`
    found. The proxy's per-request object derives from it, so a request costs one object (hot path: the class
    attributes are the defaults, so that a plain request sets only what it has). It is also the header view the
    route lookup reads (`get`: lower-case name → value, repeated ones joined by ", ", decoded only if asked)."""

    method = b"GET"
    url = b""
    http11 = True
    authority = b""  # Host (or the absolute-form authority), as sent
    content_length = -1  # -1: none
    chunked = False
    continue_ = False  # Expect: 100-continue
    upgrade = b""  # the Upgrade value when Connection lists "upgrade"
    xff = b""  # the client's X-Forwarded-For
    target = b""  # request target to send upstream
    path = "/"  # percent-decoded, for the route lookup
    query = ""
    forward: list[bytes]  # header lines "Name: value\r\n" to pass on (set by scan_request)
    _by_name: dict[str, str] | None = None

    def __init__(self, method: bytes = b"GET", url: bytes = b"", http11: bool = True,
                 headers: list[tuple[bytes, bytes]] | None = None) -> None:
        self.method = method
        self.url = url
        self.http11 = http11
        self.headers: list[tuple[bytes, bytes]] = headers if headers is not None else []

    def get(self, key: str, default: Any = None) -> Any:
        """The request header `key` (lower case) for route matching, or `default`."""
        by_name = self._by_name
        if by_name is None:
            by_name = {}
            for name, value in self.headers:
                lname, text = name.decode("latin-1").lower(), value.decode("latin-1")
                by_name[lname] = by_name[lname] + ", " + text if lname in by_name else text
            self._by_name = by_name
        return by_name.get(key, default)


def scan_request(head: RequestHead) -> None:
    """Check a parsed request head (`method`, `url`, `http11`, `headers`) and fill in the rest; raises `Rejected`."""
    head.forward = forward = []
    host: bytes | None = None
    connection = b""
    upgrade = b""
    for name, value in head.headers:
        lname = name.lower()
        if lname not in _DROP:
            if lname == b"host":
                if host is not None:
                    raise Rejected(400, "several Host headers")
                host = value
            elif lname == b"content-length":
                head.content_length = int(value)  # llhttp allows digits only, and only one header
            forward.append(b"%b: %b\r\n" % (name, value))
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
            head.continue_ = head.http11
    if connection and connection not in (b"keep-alive", b"close"):
        _apply_connection_tokens(head, connection, upgrade)
    url = head.url
    if url[:1] == b"/" and (not url.translate(None, _PLAIN_TARGET) or _TARGET_TO_CHECK.search(url) is None):
        # the common, clean origin-form target (the first test is a cheaper subset of the second)
        head.target = url
        path, _, query = url.partition(b"?")
        head.path = path.decode("latin-1")
        if query:
            head.query = query.decode("latin-1")
    else:
        _check_target(head, head.method, url)
    if head.authority:  # absolute-form: its authority wins over Host (RFC 9112 3.2.2)
        _replace_host(head)
    elif host is not None:
        if not host or host.translate(None, _HOST_CHARS):  # _check_host, inline (hot path)
            raise Rejected(400, "invalid Host")
        head.authority = host
    elif head.http11:
        raise Rejected(400, "missing Host header")


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
    head.headers = [(n, v) for n, v in head.headers if n.lower() != b"host"] + [(b"Host", head.authority)]
    head._by_name = None


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


# What the proxy needs from one response head (a plain tuple: built once per response, hot path):
# (headers: the header lines to pass on, each ending in CRLF, hop-by-hop ones removed;
#  length: a Content-Length header is among them;
#  chunked: Transfer-Encoding ends in "chunked" (the body is chunked on the wire);
#  upgrade: the Upgrade value, as sent)
ResponseHead = tuple[bytes, bool, bool, bytes]

# The response headers the proxy cuts out, matched at line starts in the lower-cased head, each with its whole line
# but not the CRLF that ends it. Everything else is copied byte for byte, which is safe because llhttp (strict mode)
# has already refused the head unless every line ends in CRLF, no name has whitespace before its colon, no value
# holds CR, LF, NUL or other controls, there is no obs-fold, at most one Content-Length and not both Content-Length
# and Transfer-Encoding (test_proxy pins this).
_HOP_LINE = re.compile(  # one group: `split` returns kept and cut pieces alternately
    rb"(\r\n(?:co(?:nnection)|t(?:e|railer|ransfer-encoding)|keep-alive|proxy-connection|upgrade):[^\r]*)")
_T, _U = ord("t"), ord("u")
_T_OR_U = (_T, _U)


def scan_response_head(raw: bytes) -> ResponseHead:
    """Sort a response head llhttp has accepted (status line through the empty line) with one `split` by a regular
    expression instead of a callback per header: hop-by-hop lines are cut out, everything else is passed on as sent.
    The pieces are cut from the lower-cased head; their lengths give the offsets to cut the head as sent."""
    lowered = raw.lower()
    length = lowered.find(b"\r\ncontent-length:") >= 0
    pieces = _HOP_LINE.split(lowered)
    start = lowered.find(b"\r\n") + 2  # after the status line
    if len(pieces) == 1:  # nothing to cut
        return raw[start:-2], length, False, b""
    if len(pieces) == 3 and pieces[1][2] not in _T_OR_U:  # only Connection (or Keep-Alive), the common case
        cut = len(pieces[0])  # the CRLF before the cut line
        after = cut + len(pieces[1])  # the CRLF after it
        return raw[start:cut] + raw[after:-2] if cut >= start else raw[after + 2:-2], length, False, b""
    chunked = False
    upgrade = b""
    kept = []
    pos = end = 0
    for i in range(1, len(pieces), 2):  # pieces: kept, cut, kept, cut, ..., kept
        end += len(pieces[i - 1])
        kept.append(raw[pos:end])
        line = pieces[i]  # "\r\nname:value"
        if line[2] == _T and line.startswith(b"\r\ntransfer-encoding:"):
            chunked = line.rstrip(b" \t").endswith(b"chunked")
        elif line[2] == _U:
            upgrade = raw[end + 10:end + len(line)].strip(b" \t")
        pos = end = end + len(line)
    kept.append(raw[pos:-2])
    head = b"".join(kept)
    return head[head.find(b"\r\n") + 2:], length, chunked, upgrade


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
