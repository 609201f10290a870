"""etcd v3 backend of the Store protocol, over etcd's JSON gRPC-gateway (`/v3/kv/*`, `/v3/watch`) with aiohttp.

Mapping (the revision is etcd's own global revision, so several apiservers can share one etcd):
- create = txn `create_revision(key) == 0` then put; update = txn `version(key) > 0 && mod_revision(key) == N`
  then put; delete = txn on the same guards then delete. A failed txn reads the key in its else-branch, in the same
  transaction, so the error (KeyExistsError / KeyNotFoundError / ConflictError with `current`) is exact.
- The compacted revision lives in the key `compact_rev_key` (decimal text), as kube-apiserver keeps it: compact
  bumps it with a txn on its version, then asks etcd to compact. etcd still serves reads *at* its compacted
  revision; this backend refuses them like the others (`revision <= compacted` raises CompactedError), using the
  newest compacted revision it has seen.
- A watch is one streaming POST per watcher (its own connection pool, so watches never starve requests). etcd
  replays history and follows live writes in one stream (no gap, no duplicate). If the connection drops, the watch
  resumes from the next revision on the next endpoint; a cancel with `compact_revision` raises CompactedError.
- Only requests that never reached a server (connect errors) are retried on another endpoint: a write is never
  sent twice.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import aiohttp
import orjson

from svcnet.store.base import (
    CompactedError,
    ConflictError,
    Event,
    EventType,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    RangeResult,
    StoreError,
)

COMPACT_KEY = "compact_rev_key"
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=30, connect=5)
WATCH_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=5, sock_read=None)
Json = dict[str, Any]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _key(key: str) -> str:
    return _b64(key.encode())


def _prefix_end(prefix: bytes) -> bytes:
    """etcd's range end for a prefix: the prefix with its last byte below 0xff incremented; b"\\0" = no end."""
    stripped = prefix.rstrip(b"\xff")
    return stripped[:-1] + bytes([stripped[-1] + 1]) if stripped else b"\0"


def _kv(raw: Json) -> KeyValue:
    return KeyValue(base64.b64decode(raw["key"]).decode(), base64.b64decode(raw.get("value", "")),
                    int(raw.get("create_revision", 0)), int(raw.get("mod_revision", 0)))


def _event(raw: Json) -> Event:
    prev = _kv(raw["prev_kv"]) if "prev_kv" in raw else None
    if raw.get("type") == "DELETE":
        kv = _kv(raw["kv"])
        tombstone = KeyValue(kv.key, prev.value if prev else b"", prev.create_revision if prev else 0,
                             kv.mod_revision)
        return Event(EventType.DELETE, tombstone, prev)
    kv = _kv(raw["kv"])
    return Event(EventType.PUT, kv, prev, created=kv.create_revision == kv.mod_revision)


def _compare(key: str, target: str, result: str, value: int) -> Json:
    field = {"CREATE": "create_revision", "MOD": "mod_revision", "VERSION": "version"}[target]
    return {"key": _key(key), "target": target, "result": result, field: str(value)}


def _exists(key: str) -> Json:
    return _compare(key, "VERSION", "GREATER", 0)


class EtcdStore:
    def __init__(self, endpoints: Sequence[str]) -> None:
        if not endpoints:
            raise StoreError("no etcd endpoints")
        self._endpoints = list(endpoints)
        self._session = aiohttp.ClientSession(timeout=REQUEST_TIMEOUT,
                                              connector=aiohttp.TCPConnector(limit=64))
        self._watch_session = aiohttp.ClientSession(timeout=WATCH_TIMEOUT,
                                                    connector=aiohttp.TCPConnector(limit=0))
        self._compacted = 0

    @classmethod
    async def open(cls, endpoints: Sequence[str]) -> EtcdStore:
        """`endpoints` are base URLs (`http://127.0.0.1:2379`); fails with StoreError if none answers."""
        store = cls(endpoints)
        try:
            await store.compacted_revision()
        except BaseException:
            await store.close()
            raise
        return store

    # ---- transport -----------------------------------------------------------------------------------------

    async def _call(self, path: str, body: Json) -> Json:
        """POST to the first endpoint that accepts a connection; etcd errors become StoreError."""
        last: Exception | None = None
        for _ in range(len(self._endpoints)):
            endpoint = self._endpoints[0]
            try:
                async with self._session.post(endpoint + path, data=orjson.dumps(body)) as resp:
                    payload: Json = orjson.loads(await resp.read())
            except aiohttp.ClientConnectorError as exc:
                last = exc
                self._endpoints.append(self._endpoints.pop(0))
                continue
            except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError) as exc:
                raise StoreError(f"etcd {endpoint}{path}: {exc!r}") from exc
            if "error" in payload:
                raise self._error(str(payload.get("message") or payload["error"]), body)
            return payload
        raise StoreError(f"no etcd endpoint reachable ({', '.join(self._endpoints)}): {last!r}")

    def _error(self, message: str, body: Json) -> StoreError:
        if "required revision has been compacted" in message:
            requested = int(body.get("revision", 0))
            self._compacted = max(self._compacted, requested)
            return CompactedError(requested, self._compacted)
        return StoreError(f"etcd: {message}")

    async def _txn(self, compare: list[Json], success: Json, failure_key: str) -> Json:
        body = {"compare": compare, "success": [success], "failure": [{"request_range": {"key": _key(failure_key)}}]}
        return await self._call("/v3/kv/txn", body)

    # ---- reads ---------------------------------------------------------------------------------------------

    def _check_revision(self, revision: int) -> None:
        if revision and revision <= self._compacted:
            raise CompactedError(revision, self._compacted)

    async def _range(self, body: Json, revision: int) -> Json:
        self._check_revision(revision)
        if revision:
            body["revision"] = str(revision)
        return await self._call("/v3/kv/range", body)

    async def get(self, key: str, revision: int = 0) -> KeyValue | None:
        kvs = (await self._range({"key": _key(key)}, revision)).get("kvs", [])
        return _kv(kvs[0]) if kvs else None

    async def range(self, prefix: str, revision: int = 0, start_after: str = "", limit: int = 0) -> RangeResult:
        start, end = prefix.encode(), _prefix_end(prefix.encode())
        if start_after and start_after >= prefix:
            start = start_after.encode() + b"\0"
        body: Json = {"key": _b64(start), "range_end": _b64(end)}
        if limit:
            body["limit"] = str(limit)
        if end != b"\0" and start >= end:
            self._check_revision(revision)
            return RangeResult([], revision or await self.current_revision(), False)
        payload = await self._range(body, revision)
        kvs = [_kv(raw) for raw in payload.get("kvs", [])]
        return RangeResult(kvs, revision or int(payload["header"]["revision"]), bool(payload.get("more")))

    async def count(self, prefix: str) -> int:
        raw = prefix.encode()
        payload = await self._range({"key": _b64(raw), "range_end": _b64(_prefix_end(raw)), "count_only": True}, 0)
        return int(payload.get("count", 0))

    async def current_revision(self) -> int:
        payload = await self._call("/v3/kv/range", {"key": _key(COMPACT_KEY), "count_only": True})
        return int(payload["header"]["revision"])

    async def _compact_record(self) -> tuple[int, int]:
        """(version of the compact key, compacted revision it records)."""
        kvs = (await self._call("/v3/kv/range", {"key": _key(COMPACT_KEY)})).get("kvs", [])
        if not kvs:
            return 0, 0
        return int(kvs[0].get("version", 0)), int(base64.b64decode(kvs[0].get("value", "")) or b"0")

    async def compacted_revision(self) -> int:
        _, revision = await self._compact_record()
        self._compacted = max(self._compacted, revision)
        return self._compacted

    # ---- writes --------------------------------------------------------------------------------------------

    async def create(self, key: str, value: bytes) -> KeyValue:
        put = {"request_put": {"key": _key(key), "value": _b64(value)}}
        payload = await self._txn([_compare(key, "CREATE", "EQUAL", 0)], put, key)
        if not payload.get("succeeded"):
            raise KeyExistsError(key)
        revision = int(payload["header"]["revision"])
        return KeyValue(key, value, revision, revision)

    def _failure(self, key: str, payload: Json) -> StoreError:
        kvs = payload["responses"][0]["response_range"].get("kvs", [])
        return ConflictError(key, _kv(kvs[0])) if kvs else KeyNotFoundError(key)

    async def update(self, key: str, value: bytes, expected_mod_revision: int) -> KeyValue:
        guard = [_exists(key), _compare(key, "MOD", "EQUAL", expected_mod_revision)]
        put = {"request_put": {"key": _key(key), "value": _b64(value), "prev_kv": True}}
        payload = await self._txn(guard, put, key)
        if not payload.get("succeeded"):
            raise self._failure(key, payload)
        prev = _kv(payload["responses"][0]["response_put"]["prev_kv"])
        return KeyValue(key, value, prev.create_revision, int(payload["header"]["revision"]))

    async def delete(self, key: str, expected_mod_revision: int = 0) -> KeyValue:
        guard = [_exists(key)]
        if expected_mod_revision:
            guard.append(_compare(key, "MOD", "EQUAL", expected_mod_revision))
        request = {"request_delete_range": {"key": _key(key), "prev_kv": True}}
        payload = await self._txn(guard, request, key)
        if not payload.get("succeeded"):
            raise self._failure(key, payload)
        prev = _kv(payload["responses"][0]["response_delete_range"]["prev_kvs"][0])
        return KeyValue(key, prev.value, prev.create_revision, int(payload["header"]["revision"]))

    async def compact(self, revision: int) -> None:
        """Record the compaction in `compact_rev_key` (guarded by its version), then compact etcd."""
        revision = min(revision, await self.current_revision())
        version, done = await self._compact_record()
        if revision <= done:
            self._compacted = max(self._compacted, done)
            return
        put = {"request_put": {"key": _key(COMPACT_KEY), "value": _b64(str(revision).encode())}}
        payload = await self._txn([_compare(COMPACT_KEY, "VERSION", "EQUAL", version)], put, COMPACT_KEY)
        if not payload.get("succeeded"):
            await self.compacted_revision()  # another apiserver compacted meanwhile
            return
        with contextlib.suppress(CompactedError):  # etcd was already compacted further
            await self._call("/v3/kv/compaction", {"revision": str(revision)})
        self._compacted = max(self._compacted, revision)

    # ---- watch ---------------------------------------------------------------------------------------------

    async def watch(self, prefix: str, start_revision: int) -> AsyncIterator[Event]:
        self._check_revision(start_revision)
        next_revision = start_revision
        failures = 0
        while True:
            try:
                async for event in self._watch_once(prefix, next_revision):
                    failures = 0
                    next_revision = event.kv.mod_revision + 1
                    yield event
                raise StoreError("etcd ended the watch stream")
            except (aiohttp.ClientError, TimeoutError, ValueError, StoreError) as exc:
                if isinstance(exc, CompactedError):
                    raise
                failures += 1
                if failures > len(self._endpoints):
                    raise StoreError(f"etcd watch on {prefix!r} lost: {exc!r}") from exc
                self._endpoints.append(self._endpoints.pop(0))

    async def _watch_once(self, prefix: str, start_revision: int) -> AsyncIterator[Event]:
        raw = prefix.encode()
        request = {"create_request": {"key": _b64(raw), "range_end": _b64(_prefix_end(raw)),
                                      "start_revision": str(start_revision), "prev_kv": True}}
        url = self._endpoints[0] + "/v3/watch"
        async with self._watch_session.post(url, data=orjson.dumps(request)) as resp:
            async for message in _json_lines(resp.content):
                if "error" in message:
                    raise StoreError(f"etcd watch: {message['error']}")
                result: Json = message.get("result", {})
                if result.get("canceled"):
                    raise self._cancelled(result, start_revision)
                for raw_event in result.get("events", []):
                    yield _event(raw_event)

    def _cancelled(self, result: Json, start_revision: int) -> StoreError:
        compacted = int(result.get("compact_revision", 0))
        if compacted:
            self._compacted = max(self._compacted, compacted)
            return CompactedError(start_revision, compacted)
        return StoreError(f"etcd cancelled the watch: {result.get('cancel_reason', 'no reason given')}")

    async def close(self) -> None:
        await self._session.close()
        await self._watch_session.close()


async def _json_lines(stream: aiohttp.StreamReader) -> AsyncIterator[Json]:
    """Newline-delimited JSON messages of any size."""
    pending: list[bytes] = []
    async for chunk in stream.iter_any():
        if b"\n" not in chunk:
            pending.append(chunk)
            continue
        *lines, rest = (b"".join(pending) + chunk).split(b"\n")
        pending = [rest]
        for line in lines:
            if line.strip():
                yield orjson.loads(line)
