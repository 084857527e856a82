"""The upgrade guide's pre-flight check: its Helm release, its readiness, and the CNP validator's log.

The ``cilium-preflight`` release runs a DaemonSet that pre-pulls the target image on every node and
a Deployment whose ``cnp-validator`` container checks every CiliumNetworkPolicy and
CiliumClusterwideNetworkPolicy. Readiness is read from the Kubernetes API (helm's output is never
parsed). When the validator is not ready in time its log is quoted, filtered to the lines that
mention an invalid policy or an error, because its exact format is not confirmed beyond the upgrade
guide's "Found invalid CiliumNetworkPolicy".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flowcheck.cluster import kube
from flowcheck.cluster.kube import KubeClients
from flowcheck.cluster.realization import CILIUM_NAMESPACE
from flowcheck.errors import ClusterError
from flowcheck.harness.preupgrade.versions import AGENT_DAEMONSET

HELM_REPO_NAME = "cilium"
HELM_REPO_URL = "https://helm.cilium.io"
HELM_CHART = "cilium/cilium"
PREFLIGHT_RELEASE = "cilium-preflight"
PREFLIGHT_NAME = "cilium-pre-flight-check"  # the chart's DaemonSet and Deployment (upgrade guide)
CNP_VALIDATOR_CONTAINER = "cnp-validator"

HELM_QUERY_TIMEOUT_S = 120.0
HELM_INSTALL_TIMEOUT_S = 600.0  # no --wait: helm only renders and creates the objects
HELM_UNINSTALL_TIMEOUT_S = 300.0
VALIDATOR_LOG_TAIL_LINES = 200  # enough for one line per policy on a large cluster
QUOTED_LOG_LINES = 40  # how much of the validator's log a failure message quotes


@dataclass(frozen=True, slots=True)
class PreflightState:
    """The preflight objects' readiness as the API reports it (None: the object does not exist yet)."""

    agents_desired: int | None  # the cilium DaemonSet's desiredNumberScheduled
    daemonset_ready: int | None
    deployment_ready: int | None
    deployment_replicas: int | None

    @property
    def deployment_wanted(self) -> int:
        """The validator pods the Deployment must have ready (its replicas, at least one)."""
        return max(1, self.deployment_replicas or 1)

    @property
    def deployment_behind(self) -> bool:
        """The Deployment exists but has fewer ready pods than ``deployment_wanted``."""
        return self.deployment_ready is not None and self.deployment_ready < self.deployment_wanted

    @property
    def daemonset_behind(self) -> bool:
        """The DaemonSet exists but has fewer ready pods than the cilium DaemonSet desires."""
        return (self.daemonset_ready is not None and self.agents_desired is not None
                and self.daemonset_ready < self.agents_desired)

    @property
    def done(self) -> bool:
        if self.agents_desired is None or self.daemonset_ready is None or self.deployment_ready is None:
            return False
        return self.agents_desired > 0 and not self.daemonset_behind and not self.deployment_behind

    def describe(self) -> str:
        agents = "?" if self.agents_desired is None else str(self.agents_desired)
        ds = ("not created" if self.daemonset_ready is None
              else f"{self.daemonset_ready} ready (the {AGENT_DAEMONSET} DaemonSet desires {agents})")
        dep = ("not created" if self.deployment_ready is None
               else f"{self.deployment_ready}/{self.deployment_wanted} ready")
        return f"DaemonSet {PREFLIGHT_NAME}: {ds}; Deployment {PREFLIGHT_NAME}: {dep}"


def read_preflight_state(clients: KubeClients) -> PreflightState:
    """The agents' DaemonSet and the preflight objects as the API reports them now."""
    read = kube.read_or_none
    agents = read(clients, f"reading DaemonSet {CILIUM_NAMESPACE}/{AGENT_DAEMONSET}",
                  clients.apps.read_namespaced_daemon_set, AGENT_DAEMONSET, CILIUM_NAMESPACE)
    ds = read(clients, f"reading DaemonSet {CILIUM_NAMESPACE}/{PREFLIGHT_NAME}",
              clients.apps.read_namespaced_daemon_set, PREFLIGHT_NAME, CILIUM_NAMESPACE)
    dep = read(clients, f"reading Deployment {CILIUM_NAMESPACE}/{PREFLIGHT_NAME}",
               clients.apps.read_namespaced_deployment, PREFLIGHT_NAME, CILIUM_NAMESPACE)
    if agents is None:
        raise ClusterError(f"there is no {AGENT_DAEMONSET} DaemonSet in {CILIUM_NAMESPACE}: is Cilium installed?")
    return PreflightState(
        agents_desired=_count(agents.status, "desired_number_scheduled"),
        daemonset_ready=None if ds is None else _count(ds.status, "number_ready"),
        deployment_ready=None if dep is None else _count(dep.status, "ready_replicas"),
        deployment_replicas=None if dep is None else _count(dep.spec, "replicas"),
    )


def validator_report(clients: KubeClients) -> list[str]:
    """What the CNP validator says: the lines of its log about invalid policies (or the log's end)."""
    try:
        dep = kube.call(clients, f"reading Deployment {CILIUM_NAMESPACE}/{PREFLIGHT_NAME}",
                        clients.apps.read_namespaced_deployment, PREFLIGHT_NAME, CILIUM_NAMESPACE)
        labels: Mapping[str, str] = dep.spec.selector.match_labels or {}
        selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        pods = kube.call(clients, f"listing the pods of Deployment {PREFLIGHT_NAME}",
                         clients.core.list_namespaced_pod, CILIUM_NAMESPACE, label_selector=selector).items
    except ClusterError as exc:
        return [f"the CNP validator's log could not be read: {exc}"]
    if not pods:
        return [f"Deployment {PREFLIGHT_NAME} has no pod, so there is no CNP validator log to read"]
    lines = []
    for pod in sorted(pods, key=lambda p: p.metadata.name):
        name = pod.metadata.name
        text, source = _validator_log(clients, name)
        if text is None:
            lines.append(f"the CNP validator's log of pod {name} could not be read: {source}")
            continue
        quoted = _validator_lines(text)
        lines.append(f"the CNP validator (container {CNP_VALIDATOR_CONTAINER} of pod {name}, {source}) reports:")
        lines += [f"    {line}" for line in quoted] or ["    (an empty log)"]
    lines.append("fix or remove the invalid CiliumNetworkPolicies/CiliumClusterwideNetworkPolicies it names "
                 "before upgrading (upgrade guide, \"CNP Validation\")")
    return lines


def _validator_log(clients: KubeClients, pod: str) -> tuple[str | None, str]:
    """The current container's log, or -- when it is empty or unreadable -- the previous one's.

    The validator is expected to exit when a policy is invalid, and the kubelet restarts it: what
    it printed is then in the previous instance (``kubectl logs --previous``).
    """
    errors = []
    for previous in (False, True):
        what = "previous container log" if previous else "log"
        try:
            text = kube.call(clients, f"reading the {what} of {pod}", clients.core.read_namespaced_pod_log, pod,
                             CILIUM_NAMESPACE, container=CNP_VALIDATOR_CONTAINER, previous=previous,
                             tail_lines=VALIDATOR_LOG_TAIL_LINES)
        except ClusterError as exc:
            errors.append(str(exc))
            continue
        if isinstance(text, str) and text.strip():
            return text, what
    return None, "; ".join(errors) or "the log is empty"


def _count(obj: Any, name: str) -> int:
    """A count from an API status/spec; absent (``omitempty`` zero) counts as 0."""
    value = getattr(obj, name, None) if obj is not None else None
    return value if isinstance(value, int) else 0


def _validator_lines(text: str) -> list[str]:
    """The validator log lines about invalid policies or errors; the log's last lines when none are."""
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    relevant = [line for line in lines if "invalid" in line.lower() or "level=error" in line.lower()]
    chosen = relevant or lines
    return chosen[-QUOTED_LOG_LINES:]
