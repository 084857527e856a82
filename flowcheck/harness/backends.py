"""Where the live half of a check runs: the interfaces a live back end implements.

A ``BackendProvider`` is the expensive, once-per-run part: it brings up (or reuses) a cluster,
deploys the topology's probe workloads and applies the policies, and returns a JSON-serialisable
state so every pytest-xdist worker can ``attach`` to the same deployment instead of making its
own; ``tear_down`` runs once, in the controlling process. The ``LiveBackend`` it attaches is what
the harness probes through: the ``ProbeExecutor`` seam of the probe layer, plus what the harness
needs to know about the deployment (which workloads can run the agent, which are flowcheck probe
servers) and an optional source of evidence (Hubble flows).

The Kubernetes implementation lives in ``flowcheck.harness.cluster_backend``; the tests plug in the
network-namespace lab through the ``pytest_flowcheck_backend`` hook.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from flowcheck.manifests.documents import SourceDocument
from flowcheck.model.topology import Topology
from flowcheck.probe.executor import ProbeExecutor


@dataclass(frozen=True, slots=True)
class EvidenceQuery:
    """One probe whose flows are wanted: who talked to whom, on what, and the probe's id."""

    probe_id: str
    source: str
    destination: str
    source_ip: str
    destination_ip: str
    port: int | None
    protocol: str


class LiveBackend(Protocol):
    """A deployed topology the harness can probe."""

    @property
    def executor(self) -> ProbeExecutor: ...

    @property
    def description(self) -> str:
        """One line for reports: what was probed (e.g. ``kind cluster flowcheck, Cilium 1.19.0``)."""
        ...

    def cannot_probe_from(self, workload: str) -> str | None:
        """Why the agent cannot run inside ``workload`` (e.g. an existing pod), or None when it can."""
        ...

    def is_probe_server(self, workload: str) -> bool:
        """True when ``workload`` runs flowcheck's probe server (so answers carry its identity)."""
        ...

    def evidence(self, queries: Sequence[EvidenceQuery], since: datetime,
                 until: datetime) -> Mapping[str, tuple[str, ...]]:
        """Evidence lines per probe id (Hubble flows); empty when the back end has none."""
        ...


@dataclass(frozen=True, slots=True)
class SetupRequest:
    """What a provider needs to set up a run."""

    topology: Topology
    policies: tuple[SourceDocument, ...]
    repo_root: Path
    progress: Callable[[str], None]


class BackendProvider(Protocol):
    """Sets up a live back end once per run, attaches to it in every process, tears it down once."""

    def set_up(self, request: SetupRequest) -> dict[str, Any]:
        """Bring everything up; return the JSON-serialisable state ``attach``/``tear_down`` take.

        A set-up that fails part-way removes what it created before raising.
        """
        ...

    def attach(self, state: Mapping[str, Any]) -> LiveBackend:
        """A back end bound to the state of a set-up (made by this process or another)."""
        ...

    def tear_down(self, state: Mapping[str, Any], *, failed: bool) -> None:
        """Remove what the set-up created; ``failed`` says the run had failures (keep diagnostics)."""
        ...
