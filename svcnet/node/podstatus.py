"""A pod's status as the kubelet reports it, computed from what the agent knows about its containers — pure.

Phase (kube's getPhase): Pending until the init containers are done and a container has started; Running
while a container runs or restarts; Succeeded when all exited 0 and none will restart; Failed when all stopped,
one failed and the policy does not restart it. Conditions PodReadyToStartContainers, Initialized,
ContainersReady, Ready and PodScheduled keep their lastTransitionTime until their status changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]


@dataclass
class ContainerView:
    name: str
    image: str
    state: str = "waiting"  # waiting | running | terminated
    reason: str = "ContainerCreating"
    message: str = ""
    started_at: str = ""
    finished_at: str = ""
    exit_code: int = 0
    restart_count: int = 0
    ready: bool = False
    started: bool = False
    container_id: str = ""
    last_terminated: Obj | None = field(default=None)

    def terminated_state(self) -> Obj:
        state: Obj = {"exitCode": self.exit_code, "reason": self.reason or ("Completed" if self.exit_code == 0
                                                                                else "Error"),
                      "startedAt": self.started_at or None, "finishedAt": self.finished_at or None}
        if self.message:
            state["message"] = self.message
        if self.container_id:
            state["containerID"] = self.container_id
        return state


def container_status(view: ContainerView, image_id: str) -> Obj:
    if view.state == "running":
        state: Obj = {"running": {"startedAt": view.started_at}}
    elif view.state == "terminated":
        state = {"terminated": view.terminated_state()}
    else:
        state = {"waiting": {"reason": view.reason, **({"message": view.message} if view.message else {})}}
    status: Obj = {"name": view.name, "image": view.image, "imageID": image_id, "ready": view.ready,
                   "restartCount": view.restart_count, "started": view.state == "running" and view.started,
                   "state": state, "lastState": {"terminated": view.last_terminated} if view.last_terminated else {}}
    if view.container_id:
        status["containerID"] = view.container_id
    return status


def phase(restart_policy: str, init_failed: bool, initialized: bool, views: list[ContainerView],
          deleted: bool = False) -> str:
    if init_failed:
        return "Failed"
    if not initialized or not views:
        return "Pending"
    running = sum(v.state == "running" for v in views)
    stopped = [v for v in views if v.state == "terminated" or (v.state == "waiting" and v.restart_count > 0)]
    if running:
        return "Running"
    if len(stopped) < len(views):
        return "Pending"
    if restart_policy == "Always" and not deleted:
        return "Running"
    succeeded = all(v.state == "terminated" and v.exit_code == 0 for v in views)
    if succeeded:
        return "Succeeded"
    if restart_policy == "OnFailure" and not deleted:
        return "Running"
    return "Failed"


def _condition(kind: str, ok: bool, now: str, previous: list[Obj], reason: str = "", message: str = "") -> Obj:
    status = "True" if ok else "False"
    old = next((c for c in previous if c.get("type") == kind), None)
    since = old["lastTransitionTime"] if old and old.get("status") == status and old.get("lastTransitionTime") \
        else now
    condition: Obj = {"type": kind, "status": status, "lastProbeTime": None, "lastTransitionTime": since}
    if not ok and reason:
        condition["reason"] = reason
        if message:
            condition["message"] = message
    return condition


@dataclass(frozen=True)
class PodFacts:
    pod_ip: str
    host_ip: str
    start_time: str
    sandbox_ready: bool
    initialized: bool
    init_failed: bool
    now: str
    qos_class: str = "BestEffort"


def pod_status(pod: Obj, facts: PodFacts, views: list[ContainerView], init_views: list[ContainerView],
               image_ids: dict[str, str]) -> Obj:
    previous = (pod.get("status") or {}).get("conditions") or []
    deleted = bool(pod["metadata"].get("deletionTimestamp"))
    policy = pod.get("spec", {}).get("restartPolicy", "Always")
    not_ready = [v.name for v in views if not v.ready]
    containers_ready = not not_ready and bool(views) and all(v.state == "running" for v in views)
    why = f"containers with unready status: [{' '.join(not_ready)}]" if not_ready else ""
    scheduled = next((c for c in previous if c.get("type") == "PodScheduled"), None)
    conditions = [
        _condition("PodReadyToStartContainers", facts.sandbox_ready, facts.now, previous),
        _condition("Initialized", facts.initialized, facts.now, previous, "ContainersNotInitialized",
                   "containers with incomplete status: [" + " ".join(v.name for v in init_views
                                                                      if v.state != "terminated") + "]"),
        _condition("Ready", containers_ready, facts.now, previous, "ContainersNotReady", why),
        _condition("ContainersReady", containers_ready, facts.now, previous, "ContainersNotReady", why),
        scheduled or _condition("PodScheduled", True, facts.now, previous),
    ]
    status: Obj = {"phase": phase(policy, facts.init_failed, facts.initialized, views, deleted),
                   "conditions": conditions, "hostIP": facts.host_ip, "hostIPs": [{"ip": facts.host_ip}],
                   "startTime": facts.start_time, "qosClass": facts.qos_class,
                   "containerStatuses": [container_status(v, image_ids.get(v.name, "")) for v in views]}
    if init_views:
        status["initContainerStatuses"] = [container_status(v, image_ids.get(v.name, "")) for v in init_views]
    if facts.pod_ip:
        status["podIP"] = facts.pod_ip
        status["podIPs"] = [{"ip": facts.pod_ip}]
    return status


def qos_class(pod: Obj) -> str:
    containers = pod.get("spec", {}).get("containers", [])
    resources = [c.get("resources") or {} for c in containers]
    if not any(r.get("requests") or r.get("limits") for r in resources):
        return "BestEffort"
    guaranteed = all(r.get("limits", {}).get(k) and r.get("requests", r.get("limits", {})).get(k) ==
                     r["limits"][k] for r in resources for k in ("cpu", "memory"))
    return "Guaranteed" if guaranteed else "Burstable"
