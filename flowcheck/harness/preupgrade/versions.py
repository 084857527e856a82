"""Which Cilium runs: release versions, the agents' image tags, and whether a rollout has finished.

The check decides everything version-related from what ``cilium status -o json`` reports about the
agents' DaemonSet (their image tag, falling back to the Helm chart version): the version that runs
before the upgrade (its minor line becomes ``upgradeCompatibility``), and -- after ``cilium
upgrade`` -- whether every agent runs the target image and is ready again. Image references are
compared by their parsed tag, so ``v1.20.0`` and ``1.20.0`` and a digest suffix all agree.
``CiliumVersion`` and ``image_tag`` live in ``flowcheck.cluster.versions``, shared with the cluster
layer, and are re-exported here.
"""

from __future__ import annotations

from flowcheck.cluster.cilium import CiliumStatusReport
from flowcheck.cluster.versions import CiliumVersion, image_tag
from flowcheck.errors import ClusterError

__all__ = ["AGENT_DAEMONSET", "CiliumVersion", "image_tag", "rollout_pending", "running_version", "runs_version"]

AGENT_DAEMONSET = "cilium"


def runs_version(image: str, version: CiliumVersion) -> bool:
    """Whether an agent image reference is tagged with ``version``."""
    return CiliumVersion.parse(image_tag(image)) == version


def running_version(report: CiliumStatusReport) -> CiliumVersion:
    """The Cilium version the agents run: their image tag, else the Helm chart version."""
    tags = report.image_tags(AGENT_DAEMONSET)
    if len(tags) > 1:
        raise ClusterError(f"the cilium agents run different versions ({', '.join(sorted(tags))}): an upgrade or "
                           "rollout seems to be in progress; let it finish first")
    text = next(iter(tags)) if tags else report.helm_chart_version
    if not text:
        raise ClusterError("`cilium status -o json` names neither the agents' image nor the Helm chart version, so "
                           "the running Cilium version is unknown")
    version = CiliumVersion.parse(text)
    if version is None:
        raise ClusterError(f"cannot read a Cilium release version from {text!r} (the agents' image tag or chart "
                           "version): upgradeCompatibility needs the MAJOR.MINOR that runs now")
    return version


def rollout_pending(report: CiliumStatusReport, target: CiliumVersion) -> list[str]:
    """What still keeps the rollout from being complete (empty when every agent runs ``target``, all ready)."""
    pending = []
    images = [(image, count) for component, image, count in report.images if component == AGENT_DAEMONSET]
    if not images:
        pending.append("`cilium status` reports no cilium agent image")
    for image, count in images:
        if not runs_version(image, target):
            pending.append(f"{count} cilium agent pod(s) still run {image}")
    agents = next((c for c in report.pod_state if c.component == AGENT_DAEMONSET), None)
    if agents is None:
        pending.append(f"`cilium status` reports no state for the {AGENT_DAEMONSET} DaemonSet")
    elif not (agents.desired > 0 and agents.desired == agents.ready == agents.available and agents.unavailable == 0):
        pending.append(f"{AGENT_DAEMONSET} DaemonSet: Desired {agents.desired}, Ready {agents.ready}, "
                       f"Available {agents.available}, Unavailable {agents.unavailable}")
    if not report.healthy:  # everything else `cilium status` reports (the agents' own counts are above)
        pending += [line for line in report.problem_lines(include_warnings=False)
                    if not line.startswith(f"{AGENT_DAEMONSET} (")]
    return pending
