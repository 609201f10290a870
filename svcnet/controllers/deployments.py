"""What a Deployment must do to its ReplicaSets in one sync — pure, mirroring kube's deployment controller.

Theory of operation: `plan_sync(deployment, replica_sets, pods_by_rs, now)` replays kube's `syncDeployment` on
working copies of the objects and records every write it would make, in order, as actions (create / update /
delete a ReplicaSet, record an event), plus the Deployment's new annotations and status when they differ. The
shell applies the actions in order and stops at the first failure; the next sync recomputes everything.

Invariants (kube's):
- the *new* ReplicaSet is the oldest owned set whose pod template equals the Deployment's, ignoring the
  `pod-template-hash` label; every other owned set is *old*. A new set is named `<deployment>-<hash>`, where the
  hash is a stable short alphanumeric digest of the template (and `status.collisionCount`), and carries the hash in
  its labels, selector and template labels;
- revisions: the new set's `deployment.kubernetes.io/revision` is one more than the highest old revision, so
  reusing an old set (a rollback: the template went back to an old set's) bumps that set's revision and keeps its
  former ones in `revision-history`; the Deployment carries the new set's revision;
- RollingUpdate: total `spec.replicas` over all sets never exceeds `replicas + maxSurge` (percent rounds up);
  old sets are scaled down only while the available pods stay at least `replicas - maxUnavailable` (percent rounds
  down; if both resolve to 0, maxUnavailable is 1). Recreate: old sets go to 0 and their pods must be gone before
  the new set is scaled up. Availability is read from the sets' `status.availableReplicas`, which the ReplicaSet
  controller derives from the pods' Ready condition and `minReadySeconds`;
- a changed `spec.replicas` (sets' `desired-replicas` annotation differs) or a paused Deployment only scales,
  proportionally over the active sets, and never creates a new set;
- old sets beyond `revisionHistoryLimit` that have no replicas are deleted, oldest revision first;
- status: counts summed from the sets' status; Available and Progressing conditions with kube's reasons; a
  rollout that made no progress for `progressDeadlineSeconds` gets Progressing=False ProgressDeadlineExceeded.
"""

from __future__ import annotations

import copy
import datetime
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

Obj = dict[str, Any]

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
HASH_LABEL = "pod-template-hash"
_NOT_COPIED = frozenset({"kubectl.kubernetes.io/last-applied-configuration", REVISION, REVISION_HISTORY,
                         DESIRED_REPLICAS, MAX_REPLICAS, "deprecated.deployment.rollback.to"})
_SAFE_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"  # kube's rand.SafeEncodeString alphabet: no vowels, no 0/1/3
AVAILABLE = "Available"
PROGRESSING = "Progressing"
REPLICA_FAILURE = "ReplicaFailure"


class Reason(StrEnum):
    NEW_RS_CREATED = "NewReplicaSetCreated"
    FOUND_NEW_RS = "FoundNewReplicaSet"
    RS_UPDATED = "ReplicaSetUpdated"
    NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
    TIMED_OUT = "ProgressDeadlineExceeded"
    PAUSED = "DeploymentPaused"
    RESUMED = "DeploymentResumed"
    MIN_AVAILABLE = "MinimumReplicasAvailable"
    MIN_UNAVAILABLE = "MinimumReplicasUnavailable"


# ---- what a sync asks the shell to do ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreateReplicaSet:
    replica_set: Obj


@dataclass(frozen=True, slots=True)
class UpdateReplicaSet:
    """A full-object update (PUT) of a set read from the cache: its resourceVersion guards against stale reads."""
    replica_set: Obj


@dataclass(frozen=True, slots=True)
class DeleteReplicaSet:
    name: str
    uid: str


@dataclass(frozen=True, slots=True)
class RecordEvent:
    event_type: str
    reason: str
    message: str


Action = CreateReplicaSet | UpdateReplicaSet | DeleteReplicaSet | RecordEvent


@dataclass(frozen=True, slots=True)
class Plan:
    actions: tuple[Action, ...] = ()
    annotations: dict[str, str] | None = None  # the Deployment's annotations, when they must change
    status: Obj | None = None  # the Deployment's status, when it must change
    requeue_after: float | None = None  # seconds until the progress deadline must be checked again


# ---- numbers: surge and unavailability ---------------------------------------------------------------------------


def scaled_value(value: int | str | None, total: int, round_up: bool) -> int:
    """kube's GetScaledValueFromIntOrPercent: an int as is, "N%" of `total` rounded up or down."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    text = value.strip()
    if not text.endswith("%"):
        return int(text)
    percent = int(text[:-1])
    return -(-percent * total // 100) if round_up else percent * total // 100


def _replicas(obj: Obj) -> int:
    value = (obj.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)


def _rolling(deploy: Obj) -> Obj | None:
    strategy = (deploy.get("spec") or {}).get("strategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return None
    return strategy.get("rollingUpdate") or {}


def resolve_fenceposts(deploy: Obj) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) as numbers of pods; never both 0."""
    rolling = _rolling(deploy) or {}
    desired = _replicas(deploy)
    surge = scaled_value(rolling.get("maxSurge"), desired, round_up=True)
    unavailable = scaled_value(rolling.get("maxUnavailable"), desired, round_up=False)
    return (surge, 1) if surge == 0 and unavailable == 0 else (surge, unavailable)


def max_surge(deploy: Obj) -> int:
    return resolve_fenceposts(deploy)[0] if _rolling(deploy) is not None else 0


def max_unavailable(deploy: Obj) -> int:
    desired = _replicas(deploy)
    if _rolling(deploy) is None or desired == 0:
        return 0
    return min(resolve_fenceposts(deploy)[1], desired)


# ---- templates, hashes, revisions ---------------------------------------------------------------------------------


def _normalized(value: Any) -> Any:
    """Semantic equality as kube's: null, empty maps and empty lists equal absence."""
    if isinstance(value, dict):
        items = {k: _normalized(v) for k, v in value.items()}
        return {k: v for k, v in items.items() if v is not None and v != {} and v != []}
    if isinstance(value, list):
        return [_normalized(v) for v in value]
    return value


def _without_hash(template: Obj | None) -> Any:
    template = copy.deepcopy(template or {})
    ((template.get("metadata") or {}).get("labels") or {}).pop(HASH_LABEL, None)
    return _normalized(template)


def equal_ignore_hash(a: Obj | None, b: Obj | None) -> bool:
    return bool(_without_hash(a) == _without_hash(b))


def compute_hash(template: Obj, collision_count: int | None = None) -> str:
    """A stable short alphanumeric name suffix: FNV-1a (32 bit) of the canonical template, as kube's ComputeHash."""
    data = json.dumps(_normalized(template), sort_keys=True, separators=(",", ":")).encode()
    if collision_count is not None:
        data += int(collision_count).to_bytes(4, "little")
    digest = 0x811C9DC5
    for byte in data:
        digest = ((digest ^ byte) * 0x01000193) & 0xFFFFFFFF
    return "".join(_SAFE_ALPHANUMS[ord(c) % len(_SAFE_ALPHANUMS)] for c in str(digest))


def _annotations(obj: Obj) -> dict[str, str]:
    annotations: dict[str, str] = obj.setdefault("metadata", {}).setdefault("annotations", {})
    return annotations


def revision_of(obj: Obj) -> int:
    try:
        return int(((obj.get("metadata") or {}).get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def _creation_key(rs: Obj) -> tuple[str, str]:
    meta = rs.get("metadata") or {}
    return meta.get("creationTimestamp") or "", meta.get("name", "")


def _count(rs: Obj | None, field: str) -> int:
    return int(((rs or {}).get("status") or {}).get(field) or 0) if rs is not None else 0


def _active(rss: list[Obj]) -> list[Obj]:
    return [rs for rs in rss if _replicas(rs) > 0]


def find_new_replica_set(deploy: Obj, replica_sets: list[Obj]) -> Obj | None:
    template = (deploy.get("spec") or {}).get("template")
    return next((rs for rs in sorted(replica_sets, key=_creation_key)
                 if equal_ignore_hash((rs.get("spec") or {}).get("template"), template)), None)


# ---- annotations on ReplicaSets ---------------------------------------------------------------------------------


def set_replicas_annotations(rs: Obj, desired: int, most: int) -> bool:
    annotations = _annotations(rs)
    wanted = {DESIRED_REPLICAS: str(desired), MAX_REPLICAS: str(most)}
    changed = any(annotations.get(k) != v for k, v in wanted.items())
    annotations.update(wanted)
    return changed


def _copy_deployment_annotations(deploy: Obj, rs: Obj) -> bool:
    annotations = _annotations(rs)
    changed = False
    for key, value in ((deploy.get("metadata") or {}).get("annotations") or {}).items():
        if key not in _NOT_COPIED and annotations.get(key) != value:
            annotations[key] = value
            changed = True
    return changed


def set_new_rs_annotations(deploy: Obj, rs: Obj, revision: str, exists: bool) -> bool:
    """kube's SetNewReplicaSetAnnotations: copied annotations, the revision (and the revisions it replaces)."""
    changed = _copy_deployment_annotations(deploy, rs)
    annotations = _annotations(rs)
    had = REVISION in annotations
    old = revision_of(rs)
    if old < int(revision):
        annotations[REVISION] = revision
        changed = True
        if had:
            history = annotations.get(REVISION_HISTORY)
            annotations[REVISION_HISTORY] = f"{history},{old}" if history else str(old)
    if not exists:
        desired = _replicas(deploy)
        changed = set_replicas_annotations(rs, desired, desired + max_surge(deploy)) or changed
    return changed


# ---- conditions and status --------------------------------------------------------------------------------------


def rfc3339(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text[:19]).replace(tzinfo=datetime.UTC)


def new_condition(kind: str, status: str, reason: str, message: str, stamp: str) -> Obj:
    return {"type": kind, "status": status, "lastUpdateTime": stamp, "lastTransitionTime": stamp,
            "reason": str(reason), "message": message}


def get_condition(status: Obj, kind: str) -> Obj | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") == kind), None)


def set_condition(status: Obj, condition: Obj) -> None:
    """Same status and reason: keep the old one. Same status: keep its lastTransitionTime."""
    current = get_condition(status, condition["type"])
    if current is not None and current.get("status") == condition["status"] and \
            current.get("reason") == condition["reason"]:
        return
    if current is not None and current.get("status") == condition["status"]:
        condition = {**condition, "lastTransitionTime": current.get("lastTransitionTime")}
    remove_condition(status, condition["type"])
    status["conditions"] = [*(status.get("conditions") or []), condition]


def remove_condition(status: Obj, kind: str) -> None:
    status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != kind]


def calculate_status(all_rss: list[Obj], new_rs: Obj | None, deploy: Obj, stamp: str) -> Obj:
    available = sum(_count(rs, "availableReplicas") for rs in all_rss)
    counts = {
        "replicas": sum(_count(rs, "replicas") for rs in all_rss),
        "updatedReplicas": _count(new_rs, "replicas"),
        "readyReplicas": sum(_count(rs, "readyReplicas") for rs in all_rss),
        "availableReplicas": available,
        "unavailableReplicas": max(sum(_replicas(rs) for rs in all_rss) - available, 0),
    }
    old = deploy.get("status") or {}
    status: Obj = {"observedGeneration": (deploy.get("metadata") or {}).get("generation", 1),
                   **{k: v for k, v in counts.items() if v}}  # zero counts are omitted, as kube's JSON
    if old.get("collisionCount") is not None:
        status["collisionCount"] = old["collisionCount"]
    status["conditions"] = copy.deepcopy(old.get("conditions") or [])
    if available >= _replicas(deploy) - max_unavailable(deploy):
        set_condition(status, new_condition(AVAILABLE, "True", Reason.MIN_AVAILABLE,
                                            "Deployment has minimum availability.", stamp))
    else:
        set_condition(status, new_condition(AVAILABLE, "False", Reason.MIN_UNAVAILABLE,
                                            "Deployment does not have minimum availability.", stamp))
    return status


def deployment_complete(deploy: Obj, status: Obj) -> bool:
    desired = _replicas(deploy)
    return status.get("updatedReplicas", 0) == desired and status.get("replicas", 0) == desired and \
        status.get("availableReplicas", 0) == desired and \
        status.get("observedGeneration", 0) >= (deploy.get("metadata") or {}).get("generation", 1)


def deployment_progressing(deploy: Obj, status: Obj) -> bool:
    old = deploy.get("status") or {}

    def stale(s: Obj) -> int:
        return int(s.get("replicas", 0)) - int(s.get("updatedReplicas", 0))

    return status.get("updatedReplicas", 0) > old.get("updatedReplicas", 0) or stale(status) < stale(old) or \
        status.get("readyReplicas", 0) > old.get("readyReplicas", 0) or \
        status.get("availableReplicas", 0) > old.get("availableReplicas", 0)


def progress_deadline(deploy: Obj) -> int | None:
    value = (deploy.get("spec") or {}).get("progressDeadlineSeconds")
    return None if value is None or value == 2**31 - 1 else int(value)


def deployment_timed_out(deploy: Obj, status: Obj, now: datetime.datetime) -> bool:
    deadline = progress_deadline(deploy)
    condition = get_condition(status, PROGRESSING)
    if deadline is None or condition is None or condition.get("reason") == Reason.NEW_RS_AVAILABLE:
        return False
    if condition.get("reason") == Reason.TIMED_OUT:
        return True
    since = str(condition.get("lastUpdateTime") or "")
    return bool(since) and _parse_time(since) + datetime.timedelta(seconds=deadline) < now


def _replica_failure(all_rss: list[Obj], new_rs: Obj | None) -> Obj | None:
    """The new set's ReplicaFailure condition, else an old one's, as a Deployment condition."""
    for rs in ([new_rs] if new_rs is not None else []) + all_rss:
        for c in (rs.get("status") or {}).get("conditions") or []:
            if c.get("type") == REPLICA_FAILURE:
                return {"type": REPLICA_FAILURE, "status": c.get("status"), "reason": c.get("reason", ""),
                        "message": c.get("message", ""), "lastUpdateTime": c.get("lastTransitionTime"),
                        "lastTransitionTime": c.get("lastTransitionTime")}
    return None


# ---- proportional scaling ---------------------------------------------------------------------------------------


def find_active_or_latest(new_rs: Obj | None, old_rss: list[Obj]) -> Obj | None:
    """The one active set, or the newest when none is active; None when several are active."""
    if new_rs is None and not old_rss:
        return None
    olds = sorted(old_rss, key=_creation_key, reverse=True)
    active = _active(olds + ([new_rs] if new_rs is not None else []))
    if not active:
        return new_rs if new_rs is not None else olds[0]
    return active[0] if len(active) == 1 else None


def is_saturated(deploy: Obj, rs: Obj | None) -> bool:
    if rs is None:
        return False
    try:
        desired = int(_annotations(rs).get(DESIRED_REPLICAS, ""))
    except ValueError:
        return False
    wanted = _replicas(deploy)
    return _replicas(rs) == wanted and desired == wanted and _count(rs, "availableReplicas") == wanted


def _fraction(rs: Obj, deploy: Obj) -> int:
    size = _replicas(rs)
    if _replicas(deploy) == 0:
        return -size
    most = _replicas(deploy) + max_surge(deploy)
    try:
        before = int(_annotations(rs).get(MAX_REPLICAS, "0"))
    except ValueError:
        before = 0
    if before == 0:
        before = int((deploy.get("status") or {}).get("replicas", 0))
        if before == 0:
            return size
    return int(size * most / before + 0.5) - size


def rs_proportion(rs: Obj, deploy: Obj, to_add: int, added: int) -> int:
    if _replicas(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    fraction, allowed = _fraction(rs, deploy), to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def new_rs_new_replicas(deploy: Obj, all_rss: list[Obj], new_rs: Obj) -> int:
    if _rolling(deploy) is None:
        return _replicas(deploy)
    most = _replicas(deploy) + max_surge(deploy)
    current = sum(_replicas(rs) for rs in all_rss)
    if current >= most:
        return _replicas(new_rs)
    return _replicas(new_rs) + min(most - current, _replicas(deploy) - _replicas(new_rs))


# ---- one sync ---------------------------------------------------------------------------------------------------


class _Sync:
    """One sync of one Deployment, as kube's syncDeployment; writes land in `actions` and in the working copies."""

    def __init__(self, deploy: Obj, replica_sets: list[Obj], pods_by_rs: dict[str, list[Obj]],
                 now: datetime.datetime) -> None:
        self.original = deploy
        self.d = copy.deepcopy(deploy)
        self.d.setdefault("status", {})
        self.rss = [copy.deepcopy(rs) for rs in replica_sets]
        self.pods_by_rs = pods_by_rs
        self.now = now
        self.stamp = rfc3339(now)
        self.actions: list[Action] = []
        self.requeue_after: float | None = None

    @property
    def replicas(self) -> int:
        return _replicas(self.d)

    def run(self) -> Plan:
        spec = self.d.get("spec") or {}
        selector = spec.get("selector") or {}
        if not selector.get("matchLabels") and not selector.get("matchExpressions"):
            self._event("Warning", "SelectingAll",
                        "This deployment is selecting all pods. A non-empty selector is required.")
            self.d["status"]["observedGeneration"] = self.d["metadata"].get("generation", 1)
        elif self.d["metadata"].get("deletionTimestamp"):
            self._sync_status(*self._new_and_old(create=False))
        else:
            self._check_paused_conditions()
            if spec.get("paused") or self._is_scaling_event():
                self._sync_scale()
            elif (spec.get("strategy") or {}).get("type") == "Recreate":
                self._rollout_recreate()
            else:
                self._rollout_rolling()
        return self._plan()

    def _plan(self) -> Plan:
        before = (self.original.get("metadata") or {}).get("annotations") or {}
        after = self.d["metadata"].get("annotations") or {}
        status = self.d["status"]
        return Plan(tuple(self.actions), after if after != before else None,
                    status if status != (self.original.get("status") or {}) else None, self.requeue_after)

    # -- writes -----------------------------------------------------------------------------------------------

    def _event(self, event_type: str, reason: str, message: str) -> None:
        self.actions.append(RecordEvent(event_type, reason, message))

    def _update(self, rs: Obj) -> None:
        self.actions.append(UpdateReplicaSet(copy.deepcopy(rs)))

    def _scale_replica_set(self, rs: Obj, size: int, operation: str = "") -> bool:
        """Set the size and the replicas annotations; an event when the size changed."""
        old = _replicas(rs)
        rs.setdefault("spec", {})["replicas"] = size
        annotated = set_replicas_annotations(rs, self.replicas, self.replicas + max_surge(self.d))
        if old == size and not annotated:
            return False
        self._update(rs)
        if old != size:
            operation = operation or ("up" if size > old else "down")
            self._event("Normal", "ScalingReplicaSet",
                        f"Scaled {operation} replica set {rs['metadata']['name']} to {size} from {old}")
        return old != size

    def _scale_and_record(self, rs: Obj, size: int) -> bool:
        return _replicas(rs) != size and self._scale_replica_set(rs, size)

    # -- the new set and revisions -----------------------------------------------------------------------------

    def _new_and_old(self, create: bool) -> tuple[Obj | None, list[Obj]]:
        new = find_new_replica_set(self.d, self.rss)
        olds = [rs for rs in self.rss if rs is not new]
        revision = str(max((revision_of(rs) for rs in olds), default=0) + 1)
        if new is not None:
            self._sync_existing_new(new, revision)
        elif create:
            new = self._create_new(olds, revision)
        return new, olds

    def _sync_existing_new(self, new: Obj, revision: str) -> None:
        changed = set_new_rs_annotations(self.d, new, revision, exists=True)
        min_ready = int((self.d.get("spec") or {}).get("minReadySeconds") or 0)
        if int(new["spec"].get("minReadySeconds") or 0) != min_ready:
            new["spec"]["minReadySeconds"] = min_ready
            changed = True
        if changed:
            self._update(new)
        self._set_revision(_annotations(new)[REVISION])
        if progress_deadline(self.d) is not None and get_condition(self.d["status"], PROGRESSING) is None:
            set_condition(self.d["status"], new_condition(PROGRESSING, "True", Reason.FOUND_NEW_RS,
                                                          f'Found new replica set "{new["metadata"]["name"]}"',
                                                          self.stamp))

    def _set_revision(self, revision: str) -> None:
        if _annotations(self.d).get(REVISION) != revision:
            _annotations(self.d)[REVISION] = revision

    def _create_new(self, olds: list[Obj], revision: str) -> Obj:
        rs = new_replica_set(self.d, self.stamp)
        rs["spec"]["replicas"] = new_rs_new_replicas(self.d, [*olds, rs], rs)
        set_new_rs_annotations(self.d, rs, revision, exists=False)
        self.rss.append(rs)
        created = copy.deepcopy(rs)
        del created["metadata"]["creationTimestamp"]  # the server's to set; kept on the working copy for sorting
        self.actions.append(CreateReplicaSet(created))
        name = rs["metadata"]["name"]
        if rs["spec"]["replicas"] > 0:
            self._event("Normal", "ScalingReplicaSet", f"Scaled up replica set {name} to {rs['spec']['replicas']}")
        self._set_revision(revision)
        if progress_deadline(self.d) is not None:
            set_condition(self.d["status"], new_condition(PROGRESSING, "True", Reason.NEW_RS_CREATED,
                                                          f'Created new replica set "{name}"', self.stamp))
        return rs

    # -- strategies -------------------------------------------------------------------------------------------

    def _rollout_rolling(self) -> None:
        new, olds = self._new_and_old(create=True)
        assert new is not None
        all_rss = [*olds, new]
        if not self._reconcile_new(all_rss, new) and not self._reconcile_old(all_rss, _active(olds), new) and \
                deployment_complete(self.d, self.d["status"]):
            self._cleanup(olds)
        self._sync_rollout_status(all_rss, new)

    def _reconcile_new(self, all_rss: list[Obj], new: Obj) -> bool:
        if _replicas(new) == self.replicas:
            return False
        if _replicas(new) > self.replicas:
            return self._scale_and_record(new, self.replicas)
        return self._scale_and_record(new, new_rs_new_replicas(self.d, all_rss, new))

    def _reconcile_old(self, all_rss: list[Obj], olds: list[Obj], new: Obj) -> bool:
        if sum(_replicas(rs) for rs in olds) == 0:
            return False
        min_available = self.replicas - max_unavailable(self.d)
        new_unavailable = _replicas(new) - _count(new, "availableReplicas")
        most_down = sum(_replicas(rs) for rs in all_rss) - min_available - new_unavailable
        if most_down <= 0:
            return False
        cleaned = self._cleanup_unhealthy(olds, most_down)
        return cleaned + self._scale_down_old_rolling(all_rss, olds) > 0

    def _cleanup_unhealthy(self, olds: list[Obj], most: int) -> int:
        """Scale down old sets' unavailable pods first, or they block the rollout."""
        total = 0
        for rs in sorted(olds, key=_creation_key):
            unhealthy = _replicas(rs) - _count(rs, "availableReplicas")
            if total >= most or unhealthy <= 0:
                continue
            down = min(most - total, unhealthy)
            self._scale_and_record(rs, _replicas(rs) - down)
            total += down
        return total

    def _scale_down_old_rolling(self, all_rss: list[Obj], olds: list[Obj]) -> int:
        min_available = self.replicas - max_unavailable(self.d)
        # A set's availableReplicas can lag behind a scale-down we just made: never count more than its size.
        available = sum(min(_count(rs, "availableReplicas"), _replicas(rs)) for rs in all_rss)
        total, wanted = 0, available - min_available
        for rs in sorted(olds, key=_creation_key):
            if total >= wanted or _replicas(rs) == 0:
                continue
            down = min(_replicas(rs), wanted - total)
            self._scale_and_record(rs, _replicas(rs) - down)
            total += down
        return total

    def _rollout_recreate(self) -> None:
        new, olds = self._new_and_old(create=False)
        scaled = any([self._scale_and_record(rs, 0) for rs in _active(olds)])
        if not scaled and not self._old_pods_running(new, olds):
            if new is None:
                new, olds = self._new_and_old(create=True)
            assert new is not None
            self._scale_and_record(new, self.replicas)
            if deployment_complete(self.d, self.d["status"]):
                self._cleanup(olds)
        self._sync_rollout_status([*olds, *([new] if new is not None else [])], new)

    def _old_pods_running(self, new: Obj | None, olds: list[Obj]) -> bool:
        if sum(_count(rs, "replicas") for rs in olds) > 0:
            return True
        new_uid = (new or {}).get("metadata", {}).get("uid")
        return any((pod.get("status") or {}).get("phase") not in ("Failed", "Succeeded")
                   for uid, pods in self.pods_by_rs.items() if uid != new_uid for pod in pods)

    # -- scaling and paused deployments -----------------------------------------------------------------------

    def _check_paused_conditions(self) -> None:
        if progress_deadline(self.d) is None:
            return
        current = get_condition(self.d["status"], PROGRESSING)
        if current is not None and current.get("reason") == Reason.TIMED_OUT:
            return
        paused_now = current is not None and current.get("reason") == Reason.PAUSED
        if (self.d.get("spec") or {}).get("paused") and not paused_now:
            set_condition(self.d["status"], new_condition(PROGRESSING, "Unknown", Reason.PAUSED,
                                                          "Deployment is paused", self.stamp))
        elif not (self.d.get("spec") or {}).get("paused") and paused_now:
            set_condition(self.d["status"], new_condition(PROGRESSING, "Unknown", Reason.RESUMED,
                                                          "Deployment is resumed", self.stamp))

    def _is_scaling_event(self) -> bool:
        new, olds = self._new_and_old(create=False)
        for rs in _active([*olds, *([new] if new is not None else [])]):
            desired = _annotations(rs).get(DESIRED_REPLICAS)
            if desired is not None and desired.isdigit() and int(desired) != self.replicas:
                return True
        return False

    def _sync_scale(self) -> None:
        new, olds = self._new_and_old(create=False)
        self._scale(new, olds)
        if (self.d.get("spec") or {}).get("paused"):
            self._cleanup(olds)
        self._sync_status(new, olds)

    def _scale(self, new: Obj | None, olds: list[Obj]) -> None:
        target = find_active_or_latest(new, olds)
        if target is not None:
            self._scale_and_record(target, self.replicas)
        elif is_saturated(self.d, new):
            for rs in _active(olds):
                self._scale_and_record(rs, 0)
        elif _rolling(self.d) is not None:
            self._scale_proportionally(_active([*olds, *([new] if new is not None else [])]))

    def _scale_proportionally(self, rss: list[Obj]) -> None:
        allowed = self.replicas + max_surge(self.d) if self.replicas > 0 else 0
        to_add = allowed - sum(_replicas(rs) for rs in rss)
        # Largest first; on ties newer first when growing, older first when shrinking.
        rss = sorted(sorted(rss, key=_creation_key, reverse=to_add > 0), key=lambda rs: -_replicas(rs))
        operation = "up" if to_add > 0 else "down" if to_add < 0 else ""
        sizes, added = [], 0
        for rs in rss:
            share = rs_proportion(rs, self.d, to_add, added)
            sizes.append(_replicas(rs) + share)
            added += share
        if rss and to_add:
            sizes[0] = max(sizes[0] + to_add - added, 0)  # leftovers go to the largest set
        for rs, size in zip(rss, sizes, strict=True):
            self._scale_replica_set(rs, size, operation)

    # -- history and status -----------------------------------------------------------------------------------

    def _cleanup(self, olds: list[Obj]) -> None:
        limit = (self.d.get("spec") or {}).get("revisionHistoryLimit")
        alive = [rs for rs in olds if not rs["metadata"].get("deletionTimestamp")]
        if limit is None or len(alive) <= limit:
            return
        for rs in sorted(alive, key=lambda r: (revision_of(r), *_creation_key(r)))[:len(alive) - limit]:
            meta = rs["metadata"]
            if _count(rs, "replicas") or _replicas(rs) or \
                    meta.get("generation", 1) > (rs.get("status") or {}).get("observedGeneration", 0):
                continue
            self.actions.append(DeleteReplicaSet(meta["name"], meta.get("uid", "")))
            self.rss.remove(rs)

    def _sync_status(self, new: Obj | None, olds: list[Obj]) -> None:
        self.d["status"] = calculate_status([*olds, *([new] if new is not None else [])], new, self.d, self.stamp)

    def _sync_rollout_status(self, all_rss: list[Obj], new: Obj | None) -> None:
        status = calculate_status(all_rss, new, self.d, self.stamp)
        current = get_condition(self.d["status"], PROGRESSING)
        if progress_deadline(self.d) is None:
            remove_condition(status, PROGRESSING)
        elif not (status.get("replicas", 0) == status.get("updatedReplicas", 0) and current is not None
                  and current.get("reason") == Reason.NEW_RS_AVAILABLE):
            self._estimate_progress(status, new, current)
        failure = _replica_failure(all_rss, new)
        if failure is not None:
            set_condition(status, failure)
        else:
            remove_condition(status, REPLICA_FAILURE)
        self.d["status"] = status
        self.requeue_after = self._stuck_requeue(status)

    def _estimate_progress(self, status: Obj, new: Obj | None, current: Obj | None) -> None:
        subject = f'ReplicaSet "{new["metadata"]["name"]}"' if new is not None else \
            f'Deployment "{self.d["metadata"]["name"]}"'
        if deployment_complete(self.d, status):
            set_condition(status, new_condition(PROGRESSING, "True", Reason.NEW_RS_AVAILABLE,
                                                f"{subject} has successfully progressed.", self.stamp))
        elif deployment_progressing(self.d, status):
            condition = new_condition(PROGRESSING, "True", Reason.RS_UPDATED, f"{subject} is progressing.",
                                      self.stamp)
            if current is not None:  # progress refreshes lastUpdateTime even when the reason stays
                if current.get("status") == "True":
                    condition["lastTransitionTime"] = current.get("lastTransitionTime")
                remove_condition(status, PROGRESSING)
            set_condition(status, condition)
        elif deployment_timed_out(self.d, status, self.now):
            set_condition(status, new_condition(PROGRESSING, "False", Reason.TIMED_OUT,
                                                f"{subject} has timed out progressing.", self.stamp))

    def _stuck_requeue(self, status: Obj) -> float | None:
        """When a rollout shows no progress, when to look again for its deadline."""
        deadline = progress_deadline(self.d)
        condition = get_condition(status, PROGRESSING) or {}
        since = condition.get("lastUpdateTime")
        if deadline is None or not since or deployment_complete(self.d, status) or \
                condition.get("reason") == Reason.TIMED_OUT:
            return None
        due = _parse_time(since) + datetime.timedelta(seconds=deadline)
        return max((due - self.now).total_seconds(), 0.0)


def new_replica_set(deploy: Obj, stamp: str) -> Obj:
    """The set for the Deployment's current template, with 0 replicas: named, labelled and selecting by hash."""
    meta, spec = deploy["metadata"], deploy.get("spec") or {}
    template = copy.deepcopy(spec.get("template") or {})
    digest = compute_hash(template, (deploy.get("status") or {}).get("collisionCount"))
    labels = {**((template.get("metadata") or {}).get("labels") or {}), HASH_LABEL: digest}
    template.setdefault("metadata", {})["labels"] = labels
    selector = copy.deepcopy(spec.get("selector") or {})
    selector["matchLabels"] = {**(selector.get("matchLabels") or {}), HASH_LABEL: digest}
    rs_spec: Obj = {"replicas": 0, "selector": selector, "template": template}
    if spec.get("minReadySeconds"):
        rs_spec["minReadySeconds"] = spec["minReadySeconds"]
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": f"{meta['name']}-{digest}", "namespace": meta.get("namespace", ""),
                         "labels": dict(labels), "creationTimestamp": stamp,
                         "ownerReferences": [controller_ref(deploy)]},
            "spec": rs_spec}


def controller_ref(deploy: Obj) -> Obj:
    meta = deploy["metadata"]
    return {"apiVersion": "apps/v1", "kind": "Deployment", "name": meta["name"], "uid": meta.get("uid", ""),
            "controller": True, "blockOwnerDeletion": True}


def plan_sync(deploy: Obj, replica_sets: list[Obj], pods_by_rs: dict[str, list[Obj]],
              now: datetime.datetime) -> Plan:
    """Everything one sync of `deploy` writes, given the sets it owns and their pods (keyed by the set's uid)."""
    return _Sync(deploy, replica_sets, pods_by_rs, now).run()
