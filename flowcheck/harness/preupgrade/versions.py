"""Which Cilium runs: release versions, the agents' image tags, and whether a rollout has finished.

The check decides everything version-related from what ``cilium status -o json`` reports about the
agents' DaemonSet (their image tag, falling back to the Helm chart version): the version that runs
before the upgrade (its minor line becomes ``upgradeCompatibility``), and -- after ``cilium
upgrade`` -- whether every agent runs the target image and is ready again. Image references are
compared by their parsed tag, so ``v1.20.0`` and ``1.20.0`` and a digest suffix all agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from flowcheck.cluster.cilium import CiliumStatusReport
from flowcheck.errors import ClusterError

AGENT_DAEMONSET = "cilium"

_VERSION_RE = re.compile(r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?$")


@dataclass(frozen=True, slots=True)
class CiliumVersion:
    """A Cilium release version: ``1.20.0``, ``v1.19.3``, ``1.20.0-pre.2``."""

    major: int
    minor: int
    patch: int
    prerelease: str = ""

    @classmethod
    def parse(cls, text: str) -> CiliumVersion | None:
        match = _VERSION_RE.match(text.strip())
        if match is None:
            return None
        return cls(int(match[1]), int(match[2]), int(match[3]), (match[4] or "").lstrip("-"))

    @property
    def release(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch)

    @property
    def minor_line(self) -> str:
        """``1.19``: what ``upgradeCompatibility`` takes."""
        return f"{self.major}.{self.minor}"

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}" + (f"-{self.prerelease}" if self.prerelease else "")


def image_tag(image: str) -> str:
    """The tag of an image reference (``quay.io/cilium/cilium:v1.19.0@sha256:...`` -> ``v1.19.0``), or ``""``."""
    ref = image.split("@", 1)[0]
    last = ref.rsplit("/", 1)[-1]
    return last.rsplit(":", 1)[1] if ":" in last else ""


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
