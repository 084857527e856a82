"""The resolved settings of one pytest run, grouped and typed: what to check, where, how long, output.

``options.resolve_settings`` builds one frozen ``FlowcheckSettings`` from the command line and the
ini keys in ``pytest_configure``; the fixtures, the harness and the live back end read it. Modes
are ``Literal`` types, so mypy refuses ``ClusterChoice(mode="kind-cluster")``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from flowcheck.cluster.kind import DEFAULT_CLUSTER_NAME
from flowcheck.cluster.workloads import DEFAULT_PROBE_IMAGE
from flowcheck.harness.settings import CheckInputs, ProbeSettings, RunSettings

ClusterMode = Literal["auto", "kind", "existing", "none"]
CLUSTER_MODES: tuple[ClusterMode, ...] = ("auto", "kind", "existing", "none")


@dataclass(frozen=True, slots=True)
class ClusterChoice:
    """Where live checks run. ``auto``: flowcheck's kind cluster when Docker, kind and cilium are
    there, else offline; ``kind``: that cluster, or fail; ``existing``: ``kube_context`` (which must
    be flowcheck's kind cluster or named by ``allow_context``); ``none``: offline."""

    mode: ClusterMode = "auto"
    name: str = DEFAULT_CLUSTER_NAME
    keep: bool = False  # keep a kind cluster this run created
    kube_context: str | None = None
    allow_context: str | None = None
    cilium_version: str | None = None  # None: manifests/cilium/VERSION
    probe_image: str = DEFAULT_PROBE_IMAGE
    connectivity_tests: tuple[str, ...] = ()  # `cilium connectivity test --test` filters


@dataclass(frozen=True, slots=True)
class OutputSettings:
    """What the run writes and compares against."""

    report_dir: Path | None = None  # matrix.json, report.html, report.md
    baseline: Path | None = None  # fail when a verdict differs from this baseline


@dataclass(frozen=True, slots=True)
class FlowcheckSettings:
    """The resolved flowcheck settings of one pytest run (the ``flowcheck_settings`` fixture)."""

    check: CheckInputs
    repo_root: Path
    cluster: ClusterChoice = field(default_factory=ClusterChoice)
    probe: ProbeSettings = field(default_factory=ProbeSettings)
    output: OutputSettings = field(default_factory=OutputSettings)
    configured: bool = False
    """The policies or the topology were named (options or ini keys): the plugin adds its generic checks."""
    strict: bool = False
    """Warnings (what matches nothing, intent still marked for review) fail the run."""

    def run_settings(self) -> RunSettings:
        """What the harness needs of them."""
        return RunSettings(check=self.check, repo_root=self.repo_root, probe=self.probe)
