"""What one run of the suites checks, and how it probes: the settings the harness reads.

Built once at the edge (the pytest plugin resolves them from its options and ini keys), frozen,
and typed so that mypy catches a wrong value: ``semantics`` is a ``Literal`` of the model's
semantics names, not a string any typo fits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from flowcheck.probe.plan import DEFAULT_PROBE_TIMEOUT_S

if TYPE_CHECKING:  # the pytest plugin builds these in every run: the model is imported only when used
    from flowcheck.model.semantics import Semantics


@dataclass(frozen=True, slots=True)
class CheckInputs:
    """What to check: the policies (files or directories), the topology, and which semantics judge them."""

    policies: tuple[Path, ...]
    topology: Path
    semantics: Semantics = "cilium"


@dataclass(frozen=True, slots=True)
class ProbeSettings:
    """How long one probe may take before it counts as a timeout (a drop)."""

    timeout_s: float = DEFAULT_PROBE_TIMEOUT_S


@dataclass(frozen=True, slots=True)
class RunSettings:
    """The settings of one run: what to check, how to probe, and the repository it runs in."""

    check: CheckInputs
    repo_root: Path
    probe: ProbeSettings = field(default_factory=ProbeSettings)
