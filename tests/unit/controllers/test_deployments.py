"""Deployment rules as tables: fenceposts, rolling update steps, Recreate, rollback, history, scaling, status.

`simulate` stands in for the API server and the ReplicaSet controller: it applies a plan's actions to the
in-memory sets and then reports each set's pods as created (and, if `ready`, available).
"""

from __future__ import annotations

import copy
import datetime
from typing import Any

import pytest

from svcnet.controllers import deployments as dep

NOW = datetime.datetime(2026, 11, 22, 12, 0, 0, tzinfo=datetime.UTC)
STAMP = dep.rfc3339(NOW)
Obj = dict[str, Any]


def template(image: str = "nginx") -> Obj:
    return {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "nginx", "image": image}], "restartPolicy": "Always"}}


def deployment(replicas: int = 3, image: str = "nginx", surge: int | str = "25%", unavailable: int | str = "25%",
               strategy: str = "RollingUpdate", generation: int = 1, **spec: Any) -> Obj:
    strat: Obj = {"type": strategy}
    if strategy == "RollingUpdate":
        strat["rollingUpdate"] = {"maxSurge": surge, "maxUnavailable": unavailable}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "dev", "uid": "d-uid", "generation": generation},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}}, "template": template(image),
                     "strategy": strat, "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600, **spec},
            "status": {}}


def replica_set(deploy: Obj, image: str, replicas: int, revision: int, available: int | None = None,
                created: str = "2026-11-22T10:00:00Z") -> Obj:
    """A set as the controller made it for `image`, with `replicas` pods of which `available` are available."""
    rs = dep.new_replica_set({**deploy, "spec": {**deploy["spec"], "template": template(image)}}, created)
    rs["metadata"]["uid"] = f"uid-{rs['metadata']['name']}"
    rs["metadata"]["generation"] = 1
    rs["metadata"]["annotations"] = {dep.REVISION: str(revision), dep.DESIRED_REPLICAS: str(deploy["spec"]["replicas"])}
    rs["spec"]["replicas"] = replicas
    count = replicas if available is None else available
    rs["status"] = {"replicas": replicas, "readyReplicas": count, "availableReplicas": count,
                    "observedGeneration": 1}
    return rs


def sizes(rss: list[Obj], deploy: Obj) -> tuple[int, int]:
    """(new set's replicas, old sets' replicas)."""
    new = dep.find_new_replica_set(deploy, rss)
    return (new["spec"]["replicas"] if new else 0,
            sum(rs["spec"]["replicas"] for rs in rss if rs is not new))


def apply(plan: dep.Plan, deploy: Obj, rss: list[Obj]) -> tuple[Obj, list[Obj]]:
    """The API server: apply the plan's writes."""
    rss = [copy.deepcopy(rs) for rs in rss]
    for action in plan.actions:
        if isinstance(action, dep.CreateReplicaSet):
            rs = copy.deepcopy(action.replica_set)
            rs["metadata"].update(uid=f"uid-{rs['metadata']['name']}", creationTimestamp=STAMP, generation=1)
            rss.append(rs)
        elif isinstance(action, dep.UpdateReplicaSet):
            rss = [copy.deepcopy(action.replica_set) if rs["metadata"]["name"] == action.replica_set["metadata"]
                   ["name"] else rs for rs in rss]
        elif isinstance(action, dep.DeleteReplicaSet):
            rss = [rs for rs in rss if rs["metadata"]["name"] != action.name]
    deploy = copy.deepcopy(deploy)
    if plan.annotations is not None:
        deploy["metadata"]["annotations"] = plan.annotations
    if plan.status is not None:
        deploy["status"] = plan.status
    return deploy, rss


def settle(rss: list[Obj], ready: bool) -> bool:
    """The ReplicaSet controller: pods exist for every replica; they are available when `ready`."""
    before = [rs.get("status") for rs in rss]
    for rs in rss:
        size = rs["spec"]["replicas"]
        was = rs.get("status", {}).get("availableReplicas", 0)
        available = size if ready else min(was, size)
        rs["status"] = {"replicas": size, "readyReplicas": available, "availableReplicas": available,
                        "observedGeneration": rs["metadata"].get("generation", 1)}
    return before != [rs.get("status") for rs in rss]


def simulate(deploy: Obj, rss: list[Obj], steps: int = 30) -> tuple[Obj, list[Obj], list[tuple[int, int]]]:
    """Sync until nothing changes; returns the final objects and the (new, old) sizes after each sync."""
    seen: list[tuple[int, int]] = []
    floor = min(sum(rs.get("status", {}).get("availableReplicas", 0) for rs in rss),
                deploy["spec"]["replicas"] - dep.max_unavailable(deploy))
    for _ in range(steps):
        plan = dep.plan_sync(deploy, rss, {}, NOW)
        deploy, rss = apply(plan, deploy, rss)
        seen.append(sizes(rss, deploy))
        available = sum(rs["status"].get("availableReplicas", 0) for rs in rss if "status" in rs)
        assert available >= floor, "too few available"
        assert sum(rs["spec"]["replicas"] for rs in rss) <= deploy["spec"]["replicas"] + dep.max_surge(deploy)
        settled = settle(rss, ready=True)
        if not plan.actions and plan.status is None and plan.annotations is None and not settled:
            break
    return deploy, rss, seen


def events(plan: dep.Plan) -> list[str]:
    return [a.message for a in plan.actions if isinstance(a, dep.RecordEvent)]


def condition(deploy_or_status: Obj, kind: str) -> tuple[str, str]:
    status = deploy_or_status.get("status", deploy_or_status)
    found = dep.get_condition(status, kind) or {}
    return found.get("status", ""), found.get("reason", "")


# ---- numbers --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("replicas", "surge", "unavailable", "expected"), [
    pytest.param(4, "25%", "25%", (1, 1), id="defaults-4"),
    pytest.param(3, "25%", "25%", (1, 0), id="surge-rounds-up-unavailable-down"),
    pytest.param(10, "25%", "25%", (3, 2), id="defaults-10"),
    pytest.param(1, "10%", "10%", (1, 0), id="tiny-percent"),
    pytest.param(5, 0, 0, (0, 1), id="both-zero-means-unavailable-1"),
    pytest.param(5, 0, "10%", (0, 1), id="unavailable-rounds-to-zero"),
    pytest.param(5, 2, 3, (2, 3), id="ints"),
    pytest.param(2, 0, 5, (0, 2), id="unavailable-capped-at-replicas"),
])
def test_fenceposts(replicas: int, surge: int | str, unavailable: int | str, expected: tuple[int, int]) -> None:
    deploy = deployment(replicas, surge=surge, unavailable=unavailable)
    assert (dep.max_surge(deploy), dep.max_unavailable(deploy)) == expected


def test_recreate_has_no_fenceposts() -> None:
    deploy = deployment(3, strategy="Recreate")
    assert (dep.max_surge(deploy), dep.max_unavailable(deploy)) == (0, 0)


def test_hash_is_stable_short_alphanumeric_and_depends_on_collisions() -> None:
    first, again = dep.compute_hash(template()), dep.compute_hash(copy.deepcopy(template()))
    assert first == again and first.isalnum() and 1 <= len(first) <= 10
    assert dep.compute_hash(template("nginx:2")) != first
    assert dep.compute_hash(template(), 1) != first


# ---- a new Deployment -------------------------------------------------------------------------------------------


def test_new_deployment_creates_a_set_with_hash_label_revision_and_replicas_annotations() -> None:
    deploy = deployment(3)
    plan = dep.plan_sync(deploy, [], {}, NOW)
    creates = [a for a in plan.actions if isinstance(a, dep.CreateReplicaSet)]
    assert len(creates) == 1
    rs = creates[0].replica_set
    digest = dep.compute_hash(deploy["spec"]["template"])
    assert rs["metadata"]["name"] == f"web-{digest}"
    assert rs["metadata"]["labels"] == {"app": "web", "pod-template-hash": digest}
    assert rs["spec"]["selector"] == {"matchLabels": {"app": "web", "pod-template-hash": digest}}
    assert rs["spec"]["template"]["metadata"]["labels"]["pod-template-hash"] == digest
    assert rs["spec"]["replicas"] == 3
    assert rs["metadata"]["annotations"] == {dep.REVISION: "1", dep.DESIRED_REPLICAS: "3", dep.MAX_REPLICAS: "4"}
    assert rs["metadata"]["ownerReferences"] == [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                                                  "uid": "d-uid", "controller": True, "blockOwnerDeletion": True}]
    assert "creationTimestamp" not in rs["metadata"]
    assert events(plan) == [f"Scaled up replica set web-{digest} to 3"]
    assert plan.annotations == {dep.REVISION: "1"}
    assert plan.status is not None
    assert condition(plan.status, "Progressing") == ("True", "NewReplicaSetCreated")
    assert condition(plan.status, "Available") == ("False", "MinimumReplicasUnavailable")
    assert plan.status["observedGeneration"] == 1


def test_new_deployment_completes() -> None:
    deploy, rss, seen = simulate(deployment(3), [])
    assert seen[-1] == (3, 0)
    status = deploy["status"]
    assert {k: status.get(k) for k in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas")} == \
        {"replicas": 3, "updatedReplicas": 3, "readyReplicas": 3, "availableReplicas": 3}
    assert "unavailableReplicas" not in status
    assert condition(deploy, "Available") == ("True", "MinimumReplicasAvailable")
    assert condition(deploy, "Progressing") == ("True", "NewReplicaSetAvailable")
    assert dep.get_condition(status, "Progressing")["message"] == \
        f'ReplicaSet "{rss[0]["metadata"]["name"]}" has successfully progressed.'


# ---- rolling updates ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("replicas", "surge", "unavailable", "steps"), [
    pytest.param(4, 1, 1, [(1, 3), (2, 3), (2, 1), (4, 1), (4, 0)], id="surge1-unavailable1"),
    pytest.param(4, 0, 1, [(0, 3), (1, 3), (1, 2), (2, 2), (2, 1), (3, 1), (3, 0), (4, 0)], id="no-surge"),
    pytest.param(4, 1, 0, [(1, 4), (1, 3), (2, 3), (2, 2), (3, 2), (3, 1), (4, 1), (4, 0)], id="no-unavailable"),
    pytest.param(4, 4, 0, [(4, 4), (4, 0)], id="full-surge"),
    pytest.param(3, "25%", "25%", [(1, 3), (1, 2), (2, 2), (2, 1), (3, 1), (3, 0)], id="percent-3"),
    pytest.param(10, "50%", "50%", [(5, 5), (10, 5), (10, 0)], id="percent-10"),
    pytest.param(10, "25%", "25%", [(3, 8), (5, 8), (5, 3), (10, 3), (10, 0)], id="defaults-10"),
])
def test_rolling_update_steps(replicas: int, surge: int | str, unavailable: int | str,
                              steps: list[tuple[int, int]]) -> None:
    """Each sync either scales the new set up or the old ones down, within surge and unavailability."""
    old = deployment(replicas, "nginx", surge, unavailable)
    deploy = deployment(replicas, "nginx:2", surge, unavailable, generation=2)
    deploy["metadata"]["annotations"] = {dep.REVISION: "1"}
    rss = [replica_set(old, "nginx", replicas, revision=1)]
    deploy, rss, seen = simulate(deploy, rss)
    assert [s for i, s in enumerate(seen) if i == 0 or s != seen[i - 1]] == steps
    assert deploy["metadata"]["annotations"][dep.REVISION] == "2"
    assert condition(deploy, "Progressing") == ("True", "NewReplicaSetAvailable")


def test_rolling_update_waits_for_new_pods_to_become_available() -> None:
    old = deployment(4, surge=1, unavailable=0)
    deploy = deployment(4, "nginx:2", 1, 0, generation=2)
    rss = [replica_set(old, "nginx", 4, revision=1)]
    for _ in range(3):
        deploy, rss = apply(dep.plan_sync(deploy, rss, {}, NOW), deploy, rss)
        settle(rss, ready=False)
    assert sizes(rss, deploy) == (1, 4)
    assert condition(deploy, "Progressing") == ("True", "ReplicaSetUpdated")
    assert deploy["status"]["unavailableReplicas"] == 1


def test_rolling_update_events_name_both_directions() -> None:
    old = deployment(4, surge=1, unavailable=1)
    deploy = deployment(4, "nginx:2", 1, 1, generation=2)
    old_rs = replica_set(old, "nginx", 4, revision=1)
    plan = dep.plan_sync(deploy, [old_rs], {}, NOW)
    new_name = next(a for a in plan.actions if isinstance(a, dep.CreateReplicaSet)).replica_set["metadata"]["name"]
    assert events(plan) == [f"Scaled up replica set {new_name} to 1",
                            f"Scaled down replica set {old_rs['metadata']['name']} to 3 from 4"]


def test_unhealthy_old_pods_are_scaled_down_first() -> None:
    old = deployment(4, surge=0, unavailable=1)
    deploy = deployment(4, "nginx:2", 0, 1, generation=2)
    old_rs = replica_set(old, "nginx", 4, revision=1, available=2)
    new_rs = replica_set(deploy, "nginx:2", 0, revision=2)
    plan = dep.plan_sync(deploy, [old_rs, new_rs], {}, NOW)
    # 4 pods, 3 must stay available: only 4 - 3 = 1 may go, and it is an unavailable one.
    _, rss = apply(plan, deploy, [old_rs, new_rs])
    assert sizes(rss, deploy) == (0, 3)
    assert events(plan) == [f"Scaled down replica set {old_rs['metadata']['name']} to 3 from 4"]


# ---- Recreate ---------------------------------------------------------------------------------------------------


def test_recreate_scales_old_to_zero_waits_for_pods_then_creates() -> None:
    old = deployment(3, strategy="Recreate")
    deploy = deployment(3, "nginx:2", strategy="Recreate", generation=2)
    old_rs = replica_set(old, "nginx", 3, revision=1)
    plan = dep.plan_sync(deploy, [old_rs], {}, NOW)
    deploy, rss = apply(plan, deploy, [old_rs])
    assert sizes(rss, deploy) == (0, 0) and len(rss) == 1
    settle(rss, ready=True)
    running = {old_rs["metadata"]["uid"]: [{"metadata": {"name": "p"}, "status": {"phase": "Running"}}]}
    waiting = dep.plan_sync(deploy, rss, running, NOW)
    assert not [a for a in waiting.actions if isinstance(a, dep.CreateReplicaSet)], "old pods still run"
    finished = {old_rs["metadata"]["uid"]: [{"metadata": {"name": "p"}, "status": {"phase": "Succeeded"}}]}
    plan = dep.plan_sync(deploy, rss, finished, NOW)
    deploy, rss = apply(plan, deploy, rss)
    assert sizes(rss, deploy) == (3, 0)
    deploy, rss, _ = simulate(deploy, rss)
    assert condition(deploy, "Progressing") == ("True", "NewReplicaSetAvailable")


# ---- rollback and history ---------------------------------------------------------------------------------------


def test_rollback_reuses_the_old_set_and_bumps_its_revision() -> None:
    """`kubectl rollout undo` puts the old template back: the old set becomes new again, with revision 3."""
    deploy = deployment(3, "nginx", generation=3)
    deploy["metadata"]["annotations"] = {dep.REVISION: "2"}
    first = replica_set(deployment(3), "nginx", 0, revision=1)
    second = replica_set(deployment(3), "nginx:2", 3, revision=2, created="2026-11-22T11:00:00Z")
    plan = dep.plan_sync(deploy, [first, second], {}, NOW)
    assert not [a for a in plan.actions if isinstance(a, dep.CreateReplicaSet)]
    updated = [a.replica_set for a in plan.actions if isinstance(a, dep.UpdateReplicaSet)]
    assert updated[0]["metadata"]["name"] == first["metadata"]["name"]
    assert updated[0]["metadata"]["annotations"][dep.REVISION] == "3"
    assert updated[0]["metadata"]["annotations"][dep.REVISION_HISTORY] == "1"
    assert plan.annotations == {dep.REVISION: "3"}
    deploy, rss, _ = simulate(deploy, [first, second])
    assert len(rss) == 2 and sizes(rss, deploy) == (3, 0)
    assert dep.find_new_replica_set(deploy, rss)["metadata"]["name"] == first["metadata"]["name"]


def test_deployment_annotations_are_copied_to_the_new_set_but_not_its_own() -> None:
    deploy = deployment(1)
    deploy["metadata"]["annotations"] = {"kubernetes.io/change-cause": "v2", dep.REVISION: "7",
                                         "kubectl.kubernetes.io/last-applied-configuration": "{}"}
    plan = dep.plan_sync(deploy, [], {}, NOW)
    rs = next(a for a in plan.actions if isinstance(a, dep.CreateReplicaSet)).replica_set
    assert rs["metadata"]["annotations"]["kubernetes.io/change-cause"] == "v2"
    assert rs["metadata"]["annotations"][dep.REVISION] == "1"
    assert "kubectl.kubernetes.io/last-applied-configuration" not in rs["metadata"]["annotations"]


@pytest.mark.parametrize(("limit", "old_pods", "deleted"), [
    pytest.param(2, [0, 0, 0, 0], [1, 2], id="oldest-revisions-go"),
    pytest.param(0, [0, 0], [1, 2], id="limit-zero-keeps-none"),
    pytest.param(1, [2, 0, 0], [2], id="sets-whose-pods-still-exist-stay"),
    pytest.param(10, [0, 0, 0], [], id="under-the-limit"),
])
def test_revision_history_limit(limit: int, old_pods: list[int], deleted: list[int]) -> None:
    """A completed rollout deletes old sets with no replicas beyond revisionHistoryLimit, oldest first."""
    images = [f"nginx:{i}" for i in range(len(old_pods) + 1)]
    deploy = deployment(3, images[-1], revisionHistoryLimit=limit)
    deploy["metadata"]["annotations"] = {dep.REVISION: str(len(images))}
    olds = [replica_set(deploy, image, 0, revision=i + 1) for i, image in enumerate(images[:-1])]
    for rs, pods in zip(olds, old_pods, strict=True):
        rs["status"]["replicas"] = pods  # scaled to 0, pods not gone yet
    new = replica_set(deploy, images[-1], 3, revision=len(images))
    new["metadata"]["annotations"][dep.MAX_REPLICAS] = "4"
    deploy["status"] = {"observedGeneration": 1, "updatedReplicas": 3, "replicas": 3, "availableReplicas": 3}
    plan = dep.plan_sync(deploy, [*olds, new], {}, NOW)
    gone = [a.name for a in plan.actions if isinstance(a, dep.DeleteReplicaSet)]
    assert gone == [olds[r - 1]["metadata"]["name"] for r in deleted]


# ---- scaling and pausing ----------------------------------------------------------------------------------------


def test_scaling_mid_rollout_is_proportional() -> None:
    """10 → 15 replicas while 8 old and 4 new exist (max was 12): the 17 - 12 = 5 replicas now allowed are
    shared in proportion to each set's size, 8 → 8*17/12 ≈ 11 and 4 → 4*17/12 ≈ 6."""
    deploy = deployment(15, "nginx:2", surge=2, unavailable=2, generation=3)
    before = deployment(10, surge=2, unavailable=2)
    old = replica_set(before, "nginx", 8, revision=1)
    new = replica_set(before, "nginx:2", 4, revision=2, available=0, created="2026-11-22T11:00:00Z")
    for rs in (old, new):
        rs["metadata"]["annotations"][dep.MAX_REPLICAS] = "12"
    plan = dep.plan_sync(deploy, [old, new], {}, NOW)
    _, rss = apply(plan, deploy, [old, new])
    assert sizes(rss, deploy) == (6, 11)  # 8*17/12 → 11, 4*17/12 → 6
    assert all(rs["metadata"]["annotations"][dep.DESIRED_REPLICAS] == "15" for rs in rss)
    assert not [a for a in plan.actions if isinstance(a, dep.CreateReplicaSet)]


def test_scaling_a_settled_deployment_scales_its_only_set() -> None:
    deploy = deployment(5, generation=2)
    rs = replica_set(deployment(3), "nginx", 3, revision=1)
    plan = dep.plan_sync(deploy, [rs], {}, NOW)
    assert events(plan) == [f"Scaled up replica set {rs['metadata']['name']} to 5 from 3"]


def test_paused_deployment_does_not_roll_out() -> None:
    deploy = deployment(3, "nginx:2", generation=2, paused=True)
    rs = replica_set(deployment(3), "nginx", 3, revision=1)
    plan = dep.plan_sync(deploy, [rs], {}, NOW)
    assert not plan.actions
    assert plan.status is not None and condition(plan.status, "Progressing") == ("Unknown", "DeploymentPaused")
    resumed = {**deploy, "spec": {**deploy["spec"], "paused": False}, "status": plan.status}
    plan = dep.plan_sync(resumed, [rs], {}, NOW)
    assert [a for a in plan.actions if isinstance(a, dep.CreateReplicaSet)]


# ---- status: progress and deadlines -----------------------------------------------------------------------------


def _stuck(updated_seconds_ago: int) -> tuple[Obj, list[Obj]]:
    deploy = deployment(2, "nginx:2", surge=1, unavailable=0, generation=2, progressDeadlineSeconds=600)
    new = replica_set(deploy, "nginx:2", 1, revision=2, available=0)
    old = replica_set(deployment(2), "nginx", 2, revision=1)
    when = dep.rfc3339(NOW - datetime.timedelta(seconds=updated_seconds_ago))
    deploy["status"] = {"observedGeneration": 2, "replicas": 3, "updatedReplicas": 1, "availableReplicas": 2,
                        "readyReplicas": 2, "unavailableReplicas": 1,
                        "conditions": [dep.new_condition("Available", "True", "MinimumReplicasAvailable",
                                                         "Deployment has minimum availability.", when),
                                       dep.new_condition("Progressing", "True", "ReplicaSetUpdated",
                                                         'ReplicaSet "x" is progressing.', when)]}
    deploy["metadata"]["annotations"] = {dep.REVISION: "2"}
    new["metadata"]["annotations"][dep.MAX_REPLICAS] = "3"
    old["metadata"]["annotations"][dep.MAX_REPLICAS] = "3"
    return deploy, [old, new]


def test_no_progress_before_the_deadline_requeues_at_the_deadline() -> None:
    deploy, rss = _stuck(100)
    plan = dep.plan_sync(deploy, rss, {}, NOW)
    assert plan.status is None and plan.annotations is None and not plan.actions
    assert plan.requeue_after == 500


def test_no_progress_past_the_deadline_is_progress_deadline_exceeded() -> None:
    deploy, rss = _stuck(601)
    plan = dep.plan_sync(deploy, rss, {}, NOW)
    assert plan.status is not None
    assert condition(plan.status, "Progressing") == ("False", "ProgressDeadlineExceeded")
    assert dep.get_condition(plan.status, "Progressing")["message"] == \
        f'ReplicaSet "{rss[1]["metadata"]["name"]}" has timed out progressing.'
    assert plan.requeue_after is None


def test_progress_refreshes_the_update_time_but_not_the_transition_time() -> None:
    deploy, rss = _stuck(300)
    rss[1]["status"]["availableReplicas"] = rss[1]["status"]["readyReplicas"] = 1
    plan = dep.plan_sync(deploy, rss, {}, NOW)
    assert plan.status is not None
    progressing = dep.get_condition(plan.status, "Progressing")
    assert progressing["lastUpdateTime"] == STAMP
    assert progressing["lastTransitionTime"] == dep.rfc3339(NOW - datetime.timedelta(seconds=300))


def test_found_new_replica_set_when_the_condition_is_missing() -> None:
    deploy = deployment(3)
    rs = replica_set(deploy, "nginx", 3, revision=1, available=0)
    rs["metadata"]["annotations"][dep.MAX_REPLICAS] = "4"
    deploy["status"] = {"observedGeneration": 1, "replicas": 3, "updatedReplicas": 3, "unavailableReplicas": 3}
    plan = dep.plan_sync(deploy, [rs], {}, NOW)
    assert plan.status is not None
    assert condition(plan.status, "Progressing") == ("True", "FoundNewReplicaSet")
    assert plan.annotations == {dep.REVISION: "1"}


def test_no_progress_deadline_means_no_progressing_condition() -> None:
    deploy = deployment(1)
    deploy["spec"]["progressDeadlineSeconds"] = 2**31 - 1
    deploy, _, _ = simulate(deploy, [])
    assert dep.get_condition(deploy["status"], "Progressing") is None
    assert condition(deploy, "Available") == ("True", "MinimumReplicasAvailable")


def test_replica_failure_is_surfaced() -> None:
    deploy = deployment(1)
    rs = replica_set(deploy, "nginx", 1, revision=1, available=0)
    rs["status"]["conditions"] = [{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
                                   "message": "quota", "lastTransitionTime": STAMP}]
    plan = dep.plan_sync(deploy, [rs], {}, NOW)
    assert plan.status is not None and condition(plan.status, "ReplicaFailure") == ("True", "FailedCreate")
