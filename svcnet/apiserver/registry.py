"""The object lifecycle on top of the store: create, read, list, update, patch, delete and watch.

This is the only module that turns API objects into store keys and back. Invariants:
- `metadata.resourceVersion` is never stored; it is the key's mod_revision, set on every read.
- A write is validated whole before it reaches the store; a rejected write changes nothing (allocations taken for it
  are released again).
- Updates are optimistic: a stale resourceVersion is a 409 Conflict; patches retry internally on conflict.
- Objects are stored, validated and defaulted in their storage version; a patch sent to a legacy version
  (`served`) is applied to the object converted to that version and converted back before anything else.
- Admission (kube's DefaultIngressClass) runs on create after defaulting, before validation.
- Deleting an object with finalizers (or a pod on a node, gracefully) only sets deletionTimestamp; the object goes
  when its last finalizer is removed (or the node agent confirms the pod is gone). A namespace is kept (phase
  Terminating) while its spec.finalizers is non-empty too: the namespace controller empties its content, then
  spec.finalizers through /finalize.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import logging
import secrets
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from svcnet.api import admission, conversion, defaults, errors, patch, schema, selectors, ssa, validation
from svcnet.api.jsontree import clone
from svcnet.api.resources import ResourceInfo
from svcnet.apiserver import codec, services, strategies
from svcnet.store.base import (
    CompactedError,
    ConflictError,
    Event,
    EventType,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    Store,
)

log = logging.getLogger(__name__)
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"
_INGRESS_CLASSES = "/registry/networking.k8s.io/ingressclasses/"
_PATCH_RETRIES = 16


def rfc3339(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class WriteOptions:
    dry_run: bool = False
    field_manager: str = ""
    field_validation: str = "Strict"  # Strict | Warn | Ignore
    force: bool = False


@dataclass(slots=True)
class WriteResult:
    obj: dict[str, Any]
    created: bool = False
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ListOptions:
    label_selector: str = ""
    field_selector: str = ""
    limit: int = 0
    continue_token: str = ""
    resource_version: str = ""
    resource_version_match: str = ""


@dataclass(frozen=True, slots=True)
class DeleteOptions:
    propagation_policy: str = ""
    grace_period_seconds: int | None = None
    precondition_uid: str = ""
    precondition_rv: str = ""
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class Filter:
    """Label and field selector, parsed once."""

    kind: str
    labels: Any = None
    fields: Any = None

    @classmethod
    def parse(cls, kind: str, label_selector: str, field_selector: str) -> Filter:
        try:
            labels = selectors.parse_label_selector(label_selector) if label_selector else None
            fields = selectors.parse_field_selector(field_selector) if field_selector else None
            if fields is not None:
                selectors.field_selector_matches(fields, kind, {"metadata": {}})
        except selectors.SelectorError as exc:
            raise errors.bad_request(str(exc)) from None
        return cls(kind, labels, fields)

    @property
    def empty(self) -> bool:
        return self.labels is None and self.fields is None

    def matches(self, obj: dict[str, Any]) -> bool:
        if self.labels is not None and not self.labels.matches(obj.get("metadata", {}).get("labels") or {}):
            return False
        return self.fields is None or selectors.field_selector_matches(self.fields, self.kind, obj)


class Registry:
    def __init__(self, store: Store, net: validation.NetworkConfig, allocator: services.ServiceAllocator,
                 clock: Callable[[], datetime.datetime] | None = None) -> None:
        self.store = store
        self.net = net
        self.services = services.ServiceHooks(allocator)
        self.clock = clock or (lambda: datetime.datetime.now(datetime.UTC))

    def now(self) -> str:
        return rfc3339(self.clock())

    # ---- reading -------------------------------------------------------------------------------------------

    @staticmethod
    def decode(kv: KeyValue) -> dict[str, Any]:
        obj: dict[str, Any] = orjson.loads(kv.value)
        obj.setdefault("metadata", {})["resourceVersion"] = str(kv.mod_revision)
        return obj

    async def _read(self, info: ResourceInfo, namespace: str, name: str) -> tuple[dict[str, Any], KeyValue]:
        kv = await self.store.get(info.key(namespace, name))
        if kv is None:
            raise errors.not_found(info.plural, name, info.group)
        return self.decode(kv), kv

    async def get(self, info: ResourceInfo, namespace: str, name: str) -> dict[str, Any]:
        return (await self._read(info, namespace, name))[0]

    async def list(self, info: ResourceInfo, namespace: str | None, opts: ListOptions) -> dict[str, Any]:
        kvs, list_meta = await self._list_kvs(info, namespace, opts)
        return {"kind": info.list_kind, "apiVersion": info.api_version, "metadata": list_meta,
                "items": [self.decode(kv) for kv in kvs]}

    async def list_json(self, info: ResourceInfo, namespace: str | None, opts: ListOptions) -> bytes:
        """The same list, encoded: stored bytes are spliced, not decoded and re-encoded (the hot path of
        large lists)."""
        kvs, list_meta = await self._list_kvs(info, namespace, opts)
        head = json.dumps({"kind": info.list_kind, "apiVersion": info.api_version, "metadata": list_meta},
                          separators=(",", ":")).encode()
        return head[:-1] + b',"items":[' + b",".join(stamped(kv) for kv in kvs) + b"]}"

    async def _list_kvs(self, info: ResourceInfo, namespace: str | None,
                        opts: ListOptions) -> tuple[list[KeyValue], dict[str, Any]]:
        flt = Filter.parse(info.kind, opts.label_selector, opts.field_selector)
        revision, start_after = self._list_start(opts)
        found: list[KeyValue] = []
        more = True
        try:
            while more and (opts.limit <= 0 or len(found) < opts.limit):
                want = 0 if opts.limit <= 0 else max(opts.limit - len(found), 1)
                result = await self.store.range(info.prefix(namespace), revision, start_after, want)
                revision, more = result.revision, result.more
                for kv in result.kvs:
                    start_after = kv.key
                    if flt.empty or flt.matches(self.decode(kv)):
                        found.append(kv)
                if opts.limit <= 0:
                    break
        except CompactedError as exc:
            raise errors.gone(f"The resourceVersion for the provided list is too old ({exc.requested}); "
                              "start a new list without the continue parameter.") from None
        list_meta: dict[str, Any] = {"resourceVersion": str(revision)}
        if more and opts.limit > 0:
            list_meta["continue"] = _encode_continue(revision, start_after)
        return found, list_meta

    @staticmethod
    def _list_start(opts: ListOptions) -> tuple[int, str]:
        if opts.continue_token:
            return _decode_continue(opts.continue_token)
        rv = opts.resource_version
        if rv and rv != "0" and opts.resource_version_match == "Exact":
            return _parse_rv(rv), ""
        return 0, ""

    # ---- creating ------------------------------------------------------------------------------------------

    async def create(self, info: ResourceInfo, namespace: str, obj: dict[str, Any],
                     opts: WriteOptions) -> WriteResult:
        obj = self._check_identity(info, namespace, obj, None)
        meta = obj["metadata"]
        if meta.get("resourceVersion"):
            raise errors.bad_request("resourceVersion should not be set on objects to be created")
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(secrets.choice(_NAME_CHARS) for _ in range(5))
        warnings = check_fields(info, obj, opts)
        if info.namespaced:
            await self._check_namespace(namespace, info, obj.get("metadata", {}).get("name", ""))
        obj = strategies.prepare_for_create(info, obj)
        obj = defaults.apply_defaults(info.kind, obj)
        obj = await self._admit(info, obj)
        self._validate(info, obj, None)
        meta = obj["metadata"]
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = self.now()
        obj = ssa.update_managed_fields(None, obj, opts.field_manager or "unknown", "Update", self.now(), info.kind)
        return WriteResult(await self._store_new(info, namespace, obj, opts), created=True, warnings=warnings)

    async def _admit(self, info: ResourceInfo, obj: dict[str, Any]) -> dict[str, Any]:
        """Mutating admission on create: an Ingress without a class gets the default IngressClass."""
        if info.kind != "Ingress" or not admission.needs_ingress_class(obj):
            return obj
        classes = await self.store.range(_INGRESS_CLASSES)
        return admission.default_ingress_class(obj, [self.decode(kv) for kv in classes.kvs])

    async def _store_new(self, info: ResourceInfo, namespace: str, obj: dict[str, Any],
                         opts: WriteOptions) -> dict[str, Any]:
        name = obj["metadata"]["name"]
        async with self.services.allocating(info, None, obj, opts.dry_run) as obj:
            if opts.dry_run:
                if await self.store.get(info.key(namespace, name)) is not None:
                    raise errors.already_exists(info.plural, name, info.group)
                return obj
            try:
                kv = await self.store.create(info.key(namespace, name), _encode(obj))
            except KeyExistsError:
                raise errors.already_exists(info.plural, name, info.group) from None
        return self.decode(kv)

    async def _check_namespace(self, namespace: str, info: ResourceInfo, name: str = "") -> None:
        kv = await self.store.get(f"/registry/namespaces/{namespace}")
        if kv is None:
            raise errors.not_found("namespaces", namespace)
        ns = json.loads(kv.value)
        if ns.get("metadata", {}).get("deletionTimestamp") and info.kind != "Event":
            raise errors.APIError(403, "Forbidden",
                                  f'{info.plural} "{name}" is forbidden: unable to create new content in namespace '
                                  f"{namespace} because it is being terminated", kind=info.plural)

    def to_storage(self, info: ResourceInfo, served: ResourceInfo, namespace: str, obj: dict[str, Any],
                   name: str | None) -> dict[str, Any]:
        """`obj`, sent to the `served` version of `info`'s kind, checked against that version and converted to
        `info`'s (the storage version)."""
        obj = self._check_identity(served, namespace, obj, name)
        return obj if served is info else self._check_identity(info, namespace,
                                                                conversion.convert(obj, info.api_version), name)

    def _check_identity(self, info: ResourceInfo, namespace: str, obj: dict[str, Any],
                        name: str | None) -> dict[str, Any]:
        obj = clone(obj)
        kind, api_version = obj.get("kind"), obj.get("apiVersion")
        if (kind and kind != info.kind) or (api_version and api_version != info.api_version):
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API version "
                f"({info.api_version})" if api_version != info.api_version else
                f"the kind in the data ({kind}) does not match the expected kind ({info.kind})")
        obj["kind"], obj["apiVersion"] = info.kind, info.api_version
        meta = obj.get("metadata")
        if meta is None:
            meta = obj["metadata"] = {}
        if not isinstance(meta, dict):
            raise errors.bad_request("metadata must be an object")
        if info.namespaced:
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise errors.bad_request("the namespace of the provided object does not match the namespace "
                                         "sent on the request")
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        if name is not None:
            if meta.get("name") and meta["name"] != name:
                raise errors.bad_request(f"the name of the object ({meta['name']}) does not match the name on "
                                         f"the URL ({name})")
            meta["name"] = name
        if not meta.get("name") and not meta.get("generateName"):
            raise errors.invalid_object(info.kind, "", [errors.required("metadata.name",
                                                                        "name or generateName is required")],
                                        info.group)
        return obj

    def _validate(self, info: ResourceInfo, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        causes = validation.validate(info.kind, obj, old, self.net)
        if causes:
            raise errors.invalid_object(info.kind, obj["metadata"].get("name", ""), causes, info.group)

    # ---- updating ------------------------------------------------------------------------------------------

    async def update(self, info: ResourceInfo, namespace: str, name: str, obj: dict[str, Any],
                     opts: WriteOptions, subresource: str = "") -> WriteResult:
        obj = self._check_identity(info, namespace, obj, name)
        kv = await self.store.get(info.key(namespace, name))
        if kv is None:
            if info.kind in strategies.CREATE_ON_UPDATE and not subresource:
                obj["metadata"].pop("resourceVersion", None)
                return await self.create(info, namespace, obj, opts)
            raise errors.not_found(info.plural, name, info.group)
        old = self.decode(kv)
        wanted_rv = obj["metadata"].get("resourceVersion")
        if wanted_rv and wanted_rv != old["metadata"]["resourceVersion"]:
            raise self._stale(info, name)
        return await self._write_update(info, kv, old, obj, opts, subresource, "Update")

    def _stale(self, info: ResourceInfo, name: str) -> errors.APIError:
        return errors.conflict(info.plural, name, "the object has been modified; please apply your changes to "
                               "the latest version and try again", info.group)

    async def _write_update(self, info: ResourceInfo, kv: KeyValue, old: dict[str, Any], new: dict[str, Any],
                            opts: WriteOptions, subresource: str, operation: str) -> WriteResult:
        warnings = check_fields(info, new, opts)
        # kube defaults on decode, before the strategy compares specs: a write that only leaves out defaulted
        # fields (a merge patch replacing a list with its undefaulted self) changes nothing, generation included
        new = defaults.apply_defaults(info.kind, new)
        new = strategies.prepare_for_update(info, new, old, subresource)
        new = defaults.apply_defaults(info.kind, new)
        new = self.services.keep_allocations(info, new, old)
        self._validate(info, new, old)
        if operation == "Update":
            new = ssa.update_managed_fields(old, new, opts.field_manager or "unknown", "Update", self.now(),
                                            info.kind)
        if _same(new, old):
            return WriteResult(old, warnings=warnings)
        new["metadata"].pop("resourceVersion", None)
        if self._finalized(new):
            return WriteResult(await self._remove(info, kv, opts.dry_run), warnings=warnings)
        async with self.services.allocating(info, old, new, opts.dry_run) as new:
            if opts.dry_run:
                return WriteResult(new, warnings=warnings)
            try:
                written = await self.store.update(kv.key, _encode(new), kv.mod_revision)
            except ConflictError:
                raise self._stale(info, new["metadata"]["name"]) from None
        return WriteResult(self.decode(written), warnings=warnings)

    @staticmethod
    def _finalized(obj: dict[str, Any]) -> bool:
        meta = obj["metadata"]
        return bool(meta.get("deletionTimestamp")) and not meta.get("finalizers") and \
            meta.get("deletionGracePeriodSeconds", 0) == 0 and not _namespace_finalizers(obj)

    async def patch(self, info: ResourceInfo, namespace: str, name: str, content_type: str, body: bytes,
                    opts: WriteOptions, subresource: str = "", served: ResourceInfo | None = None) -> WriteResult:
        """`served`: the (legacy) version the patch is written against, when it is not `info`'s."""
        media = patch.media_type(content_type)
        is_apply = media == patch.APPLY_PATCH
        if info.custom and media == patch.STRATEGIC_MERGE_PATCH:  # as for CRDs: no Go struct, no patch strategy
            raise patch.unsupported_patch_type(content_type, custom=True)
        view = served or info
        for _ in range(_PATCH_RETRIES):
            kv = await self.store.get(info.key(namespace, name))
            if kv is None:
                if is_apply and not subresource:
                    return await self._apply_create(info, namespace, name, body, opts, view)
                raise errors.not_found(view.plural, name, view.group)
            old = self.decode(kv)
            live = conversion.convert(old, view.api_version)
            if is_apply:
                new = self._apply(view, live, body, opts)
            else:
                new = patch.apply_patch(content_type, live, body, info.kind)
            new = self.to_storage(info, view, namespace, new, name)
            wanted_rv = new["metadata"].get("resourceVersion")
            if wanted_rv and wanted_rv != old["metadata"]["resourceVersion"]:
                raise self._stale(info, name)
            new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
            try:
                op = "Apply" if is_apply else "Update"
                return await self._write_update(info, kv, old, new, opts, subresource, op)
            except errors.APIError as exc:
                if exc.code == 409 and exc.reason == "Conflict" and not wanted_rv:
                    continue
                raise
        raise self._stale(info, name)

    def _apply(self, info: ResourceInfo, live: dict[str, Any] | None, body: bytes,
               opts: WriteOptions) -> dict[str, Any]:
        if not opts.field_manager:
            raise errors.bad_request("PATCH, application/apply-patch+yaml requires the fieldManager parameter")
        applied = ssa.decode_apply_body(body)
        return ssa.apply(live, applied, opts.field_manager, opts.force, self.now(), info.kind)

    async def _apply_create(self, info: ResourceInfo, namespace: str, name: str, body: bytes,
                            opts: WriteOptions, view: ResourceInfo) -> WriteResult:
        obj = self.to_storage(info, view, namespace, self._apply(view, None, body, opts), name)
        managed = obj["metadata"].get("managedFields")
        result = await self.create(info, namespace, obj, WriteOptions(opts.dry_run, "", opts.field_validation))
        if managed is not None and not opts.dry_run:  # keep the Apply ownership, not the create's Update entry
            result = await self._restore_managed(info, result.obj, managed)
        return result

    async def _restore_managed(self, info: ResourceInfo, obj: dict[str, Any],
                               managed: list[dict[str, Any]]) -> WriteResult:
        obj = clone(obj)
        rv = int(obj["metadata"].pop("resourceVersion"))
        obj["metadata"]["managedFields"] = managed
        key = info.key(obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        written = await self.store.update(key, _encode(obj), rv)
        return WriteResult(self.decode(written), created=True)

    # ---- deleting ------------------------------------------------------------------------------------------

    async def delete(self, info: ResourceInfo, namespace: str, name: str,
                     opts: DeleteOptions) -> tuple[dict[str, Any], bool]:
        """Returns (object, gone): gone is False when deletion only started (finalizers, grace period)."""
        obj, kv = await self._read(info, namespace, name)
        meta = obj["metadata"]
        if opts.precondition_uid and opts.precondition_uid != meta.get("uid"):
            raise errors.conflict(info.plural, name, f"Precondition failed: UID in precondition: "
                                  f"{opts.precondition_uid}, UID in object meta: {meta.get('uid')}", info.group)
        if opts.precondition_rv and opts.precondition_rv != meta["resourceVersion"]:
            raise errors.conflict(info.plural, name, f"Precondition failed: ResourceVersion in precondition: "
                                  f"{opts.precondition_rv}, ResourceVersion in object meta: "
                                  f"{meta['resourceVersion']}", info.group)
        marked = self._mark_deleting(info, obj, opts)
        if marked is None:
            return await self._remove(info, kv, opts.dry_run), True
        if opts.dry_run:
            return marked, False
        marked["metadata"].pop("resourceVersion", None)
        try:
            written = await self.store.update(kv.key, _encode(marked), kv.mod_revision)
        except ConflictError:
            raise self._stale(info, name) from None
        return self.decode(written), False

    def _mark_deleting(self, info: ResourceInfo, obj: dict[str, Any],
                       opts: DeleteOptions) -> dict[str, Any] | None:
        """The object with deletion started, or None when it can go at once."""
        obj = clone(obj)
        meta = obj["metadata"]
        finalizers = list(meta.get("finalizers") or [])
        policy = opts.propagation_policy
        if policy == "Orphan" and "orphan" not in finalizers:
            finalizers.append("orphan")
        elif policy == "Foreground" and "foregroundDeletion" not in finalizers:
            finalizers.append("foregroundDeletion")
        grace = self._grace_period(info, obj, opts)
        if info.kind == "Namespace":
            obj.setdefault("status", {})["phase"] = "Terminating"
            grace, finalizers = 0, finalizers or []
            meta.setdefault("deletionTimestamp", self.now())
            meta["deletionGracePeriodSeconds"] = 0
            meta["finalizers"] = finalizers
            return obj if finalizers or _namespace_finalizers(obj) else None
        if not finalizers and grace == 0:
            return None
        if finalizers:
            meta["finalizers"] = finalizers
        if not meta.get("deletionTimestamp") or grace < meta.get("deletionGracePeriodSeconds", 0):
            meta["deletionTimestamp"] = rfc3339(self.clock() + datetime.timedelta(seconds=grace))
            meta["deletionGracePeriodSeconds"] = grace
        return obj

    @staticmethod
    def _grace_period(info: ResourceInfo, obj: dict[str, Any], opts: DeleteOptions) -> int:
        if info.kind != "Pod":
            return 0
        spec, status = obj.get("spec", {}), obj.get("status", {})
        if not spec.get("nodeName") or status.get("phase") in ("Succeeded", "Failed"):
            return 0
        if opts.grace_period_seconds is not None:
            return max(opts.grace_period_seconds, 0)
        return int(spec.get("terminationGracePeriodSeconds", 30))

    async def _remove(self, info: ResourceInfo, kv: KeyValue, dry_run: bool) -> dict[str, Any]:
        obj = self.decode(kv)
        if dry_run:
            return obj
        try:
            gone = await self.store.delete(kv.key, kv.mod_revision)
        except ConflictError:
            raise self._stale(info, obj["metadata"]["name"]) from None
        except KeyNotFoundError:
            raise errors.not_found(info.plural, obj["metadata"]["name"], info.group) from None
        await self.services.release(info, obj)
        return self.decode(gone)

    async def delete_collection(self, info: ResourceInfo, namespace: str | None, list_opts: ListOptions,
                                opts: DeleteOptions) -> dict[str, Any]:
        listed = await self.list(info, namespace, list_opts)
        deleted = []
        for item in listed["items"]:
            meta = item["metadata"]
            try:
                obj, _ = await self.delete(info, meta.get("namespace", ""), meta["name"], opts)
                deleted.append(obj)
            except errors.APIError as exc:
                if exc.code != 404:
                    raise
        listed["items"] = deleted
        return listed

    async def close(self) -> None:
        """Nothing runs in the background any more (namespace deletion is the namespace controller's job)."""

    # ---- watching ------------------------------------------------------------------------------------------

    async def watch(self, info: ResourceInfo, namespace: str | None, flt: Filter,
                    resource_version: str) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """Yields (type, object). Unset or "0" resourceVersion starts with ADDED for every current object."""
        prefix = info.prefix(namespace)
        if resource_version in ("", "0"):
            listed = await self.store.range(prefix)
            for kv in listed.kvs:
                obj = self.decode(kv)
                if flt.matches(obj):
                    yield "ADDED", obj
            start = listed.revision + 1
        else:
            start = _parse_rv(resource_version) + 1
        async for event in self.store.watch(prefix, start):
            translated = _translate(event, flt, self.decode)
            if translated is not None:
                yield translated


def check_fields(info: ResourceInfo, obj: dict[str, Any], opts: WriteOptions) -> list[str]:
    """Type mismatches are always a 400 (as kube's decoder); for unknown fields, fieldValidation Strict rejects
    (400), Warn returns them as warnings, Ignore skips; unless rejected, unknown fields are dropped from `obj`."""
    unknown, mismatched = schema.check(info.kind, info.api_version, obj, prune=True)
    if mismatched:
        raise errors.bad_request(f'{info.kind} in version "{info.version}" cannot be handled as a {info.kind}: '
                                 f"{mismatched[0]}")
    if opts.field_validation == "Ignore" or not unknown:
        return []
    if opts.field_validation == "Strict":
        listed = ", ".join(f'unknown field "{f}"' for f in unknown)
        raise errors.bad_request(f"strict decoding error: {listed}")
    return [f'unknown field "{f}"' for f in unknown]


def _translate(event: Event, flt: Filter, decode: Callable[[KeyValue], dict[str, Any]]
               ) -> tuple[str, dict[str, Any]] | None:
    obj = decode(event.kv)
    if flt.empty:  # everything matches: no need to decode the previous value
        if event.type is EventType.DELETE:
            return "DELETED", obj
        return ("MODIFIED" if event.prev_kv is not None and not event.created else "ADDED"), obj
    if event.type is EventType.DELETE:
        return ("DELETED", obj) if flt.matches(obj) else None
    now_matches = flt.matches(obj)
    before = event.prev_kv is not None and not event.created and flt.matches(decode(event.prev_kv))
    if now_matches:
        return ("MODIFIED" if before else "ADDED"), obj
    return ("DELETED", obj) if before else None


def _namespace_finalizers(obj: dict[str, Any]) -> list[str]:
    """A namespace's spec.finalizers (kube's "kubernetes" token until the namespace controller is done)."""
    if obj.get("kind") != "Namespace":
        return []
    return list((obj.get("spec") or {}).get("finalizers") or [])


def _same(new: dict[str, Any], old: dict[str, Any]) -> bool:
    def without_rv(obj: dict[str, Any]) -> dict[str, Any]:
        meta = {k: v for k, v in obj["metadata"].items() if k not in ("resourceVersion", "managedFields")}
        return {**obj, "metadata": meta}

    return without_rv(new) == without_rv(old) and \
        new["metadata"].get("managedFields") == old["metadata"].get("managedFields")


_STORED_HEAD = b'{"apiVersion":'
_METADATA = b'"metadata":{'


def _encode(obj: dict[str, Any]) -> bytes:
    """Stored form: apiVersion, kind and metadata first (so `stamped` can find the top-level metadata), no
    resourceVersion (it is the key's mod_revision)."""
    metadata = {k: v for k, v in obj["metadata"].items() if k != "resourceVersion"}
    ordered = {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"), "metadata": metadata,
               **{k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}}
    return codec.encode(ordered)


def stamped(kv: KeyValue) -> bytes:
    """The stored object's JSON with its resourceVersion, by splicing the bytes. apiVersion and kind are strings
    (quotes inside them are escaped), so the first `"metadata":{` is the top-level one."""
    value = kv.value
    at = value.find(_METADATA) if value.startswith(_STORED_HEAD) else -1
    if at < 0:
        return json.dumps(Registry.decode(kv), separators=(",", ":")).encode()
    end = at + len(_METADATA)
    rv = b'"resourceVersion":"%d"' % kv.mod_revision
    return value[:end] + rv + (b"" if value[end:end + 1] == b"}" else b",") + value[end:]


def _parse_rv(rv: str) -> int:
    try:
        value = int(rv)
    except ValueError:
        raise errors.bad_request(f'invalid resource version "{rv}"') from None
    if value < 0:
        raise errors.bad_request(f'invalid resource version "{rv}"')
    return value


def _encode_continue(revision: int, start_after: str) -> str:
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": revision, "start": start_after}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_continue(token: str) -> tuple[int, str]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        return int(data["rv"]), str(data["start"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise errors.bad_request("continue key is not valid: incorrect encoded start resourceVersion") from None
