"""svcnet.api.protobuf: real kubectl bodies (golden files captured by capture_kubectl_pb.py) must decode to what the
same command prints with `--dry-run=client -o json`; hand-built bodies pin the edge cases; broken bodies only ever
raise ProtobufError."""

from __future__ import annotations

import contextlib
import copy
import json
import random
from pathlib import Path
from typing import Any

import pytest

from svcnet.api.protobuf import MAGIC, ProtobufError, decode_message, decode_object, read_varint

GOLDEN = Path(__file__).resolve().parent / "golden"
PAIRS = sorted(p.stem for p in GOLDEN.glob("*.pb") if (GOLDEN / f"{p.stem}.json").exists()
               and p.stem not in ("job", "cronjob"))


def _golden(name: str) -> bytes:
    return (GOLDEN / f"{name}.pb").read_bytes()


# ---- a tiny encoder for hand-built bodies ---------------------------------------------------------------------

def varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        out.append((value & 0x7F) | (0x80 if value > 0x7F else 0))
        value >>= 7
        if not value:
            return bytes(out)


def vf(number: int, value: int) -> bytes:
    return varint(number << 3) + varint(value)


def lf(number: int, payload: bytes | str) -> bytes:
    data = payload.encode() if isinstance(payload, str) else payload
    return varint(number << 3 | 2) + varint(len(data)) + data


def entry(number: int, key: str, value: bytes | str) -> bytes:
    return lf(number, lf(1, key) + lf(2, value))


def envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    return MAGIC + lf(1, lf(1, api_version) + lf(2, kind)) + lf(2, raw) + lf(3, "") + lf(4, "")


# ---- real kubectl bodies --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", PAIRS)
def test_kubectl_body_decodes_to_its_dry_run_json(name: str) -> None:
    expected = json.loads((GOLDEN / f"{name}.json").read_text())
    assert decode_object(_golden(name)) == expected


def test_golden_set_covers_the_generators() -> None:
    for name in ("deployment", "deployment_zero", "service_clusterip", "service_nodeport", "configmap",
                 "configmap_binary", "secret_generic", "namespace", "serviceaccount", "ingress"):
        assert name in PAIRS


def test_zero_replicas_is_kept_but_zero_status_is_not() -> None:
    obj = decode_object(_golden("deployment_zero"))
    assert obj["spec"]["replicas"] == 0
    assert obj["status"] == {}
    assert obj["metadata"] == {"name": "zero", "labels": {"app": "zero"}, "creationTimestamp": None}


def test_debug_copy_round_trips_a_rich_pod_spec() -> None:
    """`kubectl debug --copy-to` reads the served pod into Go types and POSTs the copy as protobuf."""
    source = json.loads((GOLDEN / "debug_copy.source.json").read_text())
    obj = decode_object(_golden("debug_copy"))
    assert obj["metadata"] == {"name": "rich-copy", "namespace": "default", "annotations": {"note": "hi"},
                               "creationTimestamp": None}
    spec = copy.deepcopy(obj["spec"])
    debug = spec["containers"].pop()
    assert debug == {"name": "dbg", "image": "busybox", "resources": {}, "terminationMessagePolicy": "File"}
    assert spec == source["spec"]


def test_debug_node_pod() -> None:
    obj = decode_object(_golden("debug_node"))
    assert obj["spec"]["volumes"] == [{"name": "host-root", "hostPath": {"path": "/"}}]
    assert obj["spec"]["tolerations"] == [{"operator": "Exists"}]
    assert (obj["spec"]["hostPID"], obj["spec"]["nodeName"], obj["status"]) == (True, "n1", {})


@pytest.mark.parametrize("name", ["job", "cronjob"])
def test_kinds_outside_the_tables_are_unsupported(name: str) -> None:
    with pytest.raises(ProtobufError, match="unsupported kind"):
        decode_object(_golden(name))


def test_non_object_messages_are_not_kinds() -> None:
    with pytest.raises(ProtobufError, match="unsupported kind"):
        decode_object(envelope("v1", "PodSpec", b""))
    with pytest.raises(ProtobufError, match="unsupported kind"):
        decode_object(envelope("apps/v2", "Deployment", b""))


# ---- hand-built bodies ----------------------------------------------------------------------------------------

def _time(seconds: int, nanos: int = 0) -> bytes:
    return vf(1, seconds) + (vf(2, nanos) if nanos else b"")


def test_object_meta_fields() -> None:
    owner = lf(5, "apps/v1") + lf(1, "ReplicaSet") + lf(3, "rs") + lf(4, "u-1") + vf(6, 1) + vf(7, 0)
    meta = (lf(1, "p") + lf(2, "") + lf(3, "ns") + lf(4, "") + lf(5, "uid-1") + lf(6, "7") + vf(7, 0)
            + lf(8, _time(1767323045)) + lf(9, _time(1767323046, 5)) + vf(10, 0)
            + entry(11, "app", "x") + entry(12, "note", "") + lf(13, owner) + lf(14, "f1") + lf(14, "f2"))
    obj = decode_object(envelope("v1", "Pod", lf(1, meta)))
    assert obj == {"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "p", "namespace": "ns", "uid": "uid-1", "resourceVersion": "7",
        "creationTimestamp": "2026-01-02T03:04:05Z", "deletionTimestamp": "2026-01-02T03:04:06Z",
        "deletionGracePeriodSeconds": 0, "labels": {"app": "x"}, "annotations": {"note": ""},
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u-1",
                             "controller": True, "blockOwnerDeletion": False}],
        "finalizers": ["f1", "f2"]}}


def test_int_or_string_and_negative_int32() -> None:
    rolling = lf(1, vf(1, 0) + vf(2, 0) + lf(3, "")) + lf(2, vf(1, 1) + vf(2, 0) + lf(3, "25%"))
    spec = vf(1, 2) + lf(4, lf(1, "RollingUpdate") + lf(2, rolling)) + vf(5, -1)
    obj = decode_object(envelope("apps/v1", "Deployment", lf(2, spec)))
    assert obj["spec"] == {"replicas": 2, "minReadySeconds": -1,
                           "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0,
                                                                                   "maxSurge": "25%"}}}


def test_unknown_fields_are_skipped_and_packed_repeated_is_read() -> None:
    unknown = vf(900, 5) + lf(901, b"\xff\xfe") + varint(902 << 3 | 5) + b"1234" + varint(903 << 3 | 1) + b"8" * 8
    security = lf(4, varint(4000) + varint(4001)) + vf(4, 4002)  # packed, then unpacked, supplementalGroups
    spec = lf(14, security) + unknown + lf(2, lf(1, "c") + lf(2, "img") + unknown)
    obj = decode_object(envelope("v1", "Pod", unknown + lf(2, spec)))
    assert obj["spec"] == {"securityContext": {"supplementalGroups": [4000, 4001, 4002]},
                           "containers": [{"name": "c", "image": "img"}]}


def test_secret_bytes_maps_and_quantities() -> None:
    secret = entry(2, "k", b"\x00\xff") + lf(2, lf(1, "empty")) + lf(3, "Opaque") + vf(5, 0)
    assert decode_object(envelope("v1", "Secret", secret)) == {
        "apiVersion": "v1", "kind": "Secret", "data": {"k": "AP8=", "empty": ""}, "type": "Opaque",
        "immutable": False}
    resources = entry(1, "cpu", lf(1, "500m")) + entry(2, "memory", b"")
    container = lf(1, "c") + lf(8, resources)
    obj = decode_object(envelope("v1", "Pod", lf(2, lf(2, container))))
    assert obj["spec"]["containers"][0]["resources"] == {"limits": {"cpu": "500m"}, "requests": {"memory": "0"}}


def test_micro_time_and_raw_extension() -> None:
    lease = lf(1, "holder") + vf(2, 15) + lf(4, _time(1767323045, 123456789))
    assert decode_object(envelope("coordination.k8s.io/v1", "Lease", lf(2, lease)))["spec"] == {
        "holderIdentity": "holder", "leaseDurationSeconds": 15, "renewTime": "2026-01-02T03:04:05.123456Z"}
    revision = lf(2, lf(1, '{"spec":{"a":1}}')) + vf(3, 0)
    assert decode_object(envelope("apps/v1", "ControllerRevision", revision)) == {
        "apiVersion": "apps/v1", "kind": "ControllerRevision", "data": {"spec": {"a": 1}}, "revision": 0}


def test_service_keeps_required_zero_port_but_drops_omitempty_zeros() -> None:
    port = lf(1, "") + lf(2, "TCP") + vf(3, 0) + lf(4, vf(1, 0) + vf(2, 0) + lf(3, "")) + vf(5, 0)
    spec = lf(1, port) + lf(3, "") + lf(4, "ClusterIP")
    obj = decode_object(envelope("v1", "Service", lf(2, spec) + lf(3, lf(1, b""))))
    assert obj["spec"] == {"ports": [{"protocol": "TCP", "port": 0, "targetPort": 0}], "type": "ClusterIP"}
    assert obj["status"] == {"loadBalancer": {}}


def test_read_varint() -> None:
    assert read_varint(b"\xac\x02", 0) == (300, 2)
    assert read_varint(varint(-1), 0) == ((1 << 64) - 1, 10)
    with pytest.raises(ProtobufError):
        read_varint(b"\xff" * 11, 0)
    with pytest.raises(ProtobufError):
        read_varint(b"\x80", 0)


# ---- malformed bodies -----------------------------------------------------------------------------------------

BAD_BODIES = {
    "empty": b"",
    "json": b'{"kind":"Pod"}',
    "wrong-magic": b"k8s\x01" + _golden("namespace")[4:],
    "magic-only": MAGIC,
    "no-type-meta": MAGIC + lf(2, b""),
    "garbage": MAGIC + bytes(range(256)),
    "huge-length": MAGIC + varint(1 << 3 | 2) + varint(1 << 62),
    "group-wire-type": envelope("v1", "Namespace", varint(1 << 3 | 3)),
    "field-zero": envelope("v1", "Namespace", vf(0, 1)),
    "bad-utf8": envelope("v1", "Namespace", lf(1, lf(1, b"\xff\xfe"))),
    "string-as-varint": envelope("v1", "Namespace", lf(1, vf(1, 5))),
    "message-as-varint": envelope("v1", "Namespace", vf(1, 5)),
    "inner-gzip": MAGIC + lf(1, lf(1, "v1") + lf(2, "Namespace")) + lf(2, b"") + lf(3, "gzip"),
    "time-out-of-range": envelope("v1", "Namespace", lf(1, lf(8, vf(1, 1 << 62)))),
    "raw-not-json": envelope("apps/v1", "ControllerRevision", lf(2, lf(1, "{nope"))),
    "map-entry-varint": envelope("v1", "Namespace", lf(1, vf(11, 3))),
}


@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_malformed_bodies_raise_protobuf_error(body: bytes) -> None:
    with pytest.raises(ProtobufError):
        decode_object(body)


def _decodes_or_rejects(body: bytes) -> None:
    with contextlib.suppress(ProtobufError):
        assert isinstance(decode_object(body), dict)


@pytest.mark.parametrize("name", ["deployment", "debug_copy", "service_nodeport", "secret_docker"])
def test_every_truncation_decodes_or_raises_protobuf_error(name: str) -> None:
    body = _golden(name)
    for end in range(len(body)):
        _decodes_or_rejects(body[:end])


def test_random_corruption_decodes_or_raises_protobuf_error() -> None:
    rng = random.Random(1234)
    bodies = [_golden(name) for name in PAIRS] + [_golden("debug_copy")]
    for _ in range(3000):
        body = bytearray(rng.choice(bodies))
        for _ in range(rng.randint(1, 4)):
            body[rng.randrange(4, len(body))] = rng.randrange(256)
        _decodes_or_rejects(bytes(body))
    for _ in range(500):
        _decodes_or_rejects(MAGIC + rng.randbytes(rng.randint(0, 200)))


def test_deep_nesting_is_bounded() -> None:
    body = envelope("apps/v1", "ControllerRevision", b"")
    for _ in range(200):  # a ControllerRevision whose data is another protobuf ControllerRevision, 200 deep
        body = envelope("apps/v1", "ControllerRevision", lf(2, lf(1, body)))
    with pytest.raises(ProtobufError, match="nested deeper"):
        decode_object(body)
    with pytest.raises(ProtobufError, match="nested deeper"):
        decode_message("k8s.io.api.core.v1.Pod", b"", depth=1000)


def test_shallow_nested_raw_extension_is_decoded() -> None:
    inner = envelope("v1", "ConfigMap", entry(2, "a", "b"))
    obj = decode_object(envelope("apps/v1", "ControllerRevision", lf(2, lf(1, inner))))
    assert obj["data"] == {"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "b"}}


def test_json_round_trip_of_every_golden() -> None:
    for name in PAIRS:
        obj: Any = decode_object(_golden(name))
        assert json.loads(json.dumps(obj)) == obj


@pytest.mark.parametrize("name", ["run", "run_full", "expose"])
def test_run_and_expose_send_json_not_protobuf(name: str) -> None:
    """Recorded finding: `kubectl run` and `kubectl expose` POST plain JSON, equal to their dry-run output."""
    assert not (GOLDEN / f"{name}.pb").exists()
    sent = json.loads((GOLDEN / f"{name}.body.json").read_text())
    assert sent == json.loads((GOLDEN / f"{name}.json").read_text())
