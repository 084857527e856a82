"""The seam between "what to probe" and "where the agent runs".

The harness builds one plan per source workload (docs/contracts.md, "The probe agent") and hands
it to a ``ProbeExecutor``, which runs ``python3 agent.py`` *inside* that source -- a pod through the Kubernetes exec API
(``flowcheck.cluster``), or a network namespace through ``ip netns exec`` (the test lab) -- and
returns what the agent printed, untouched. Parsing the JSON lines and classifying them stays in
the library, so every executor is thin and the same pipeline runs against both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class CompletedExec:
    """What a command run inside a pod (or namespace) returned, shaped like ``subprocess.CompletedProcess``."""

    returncode: int
    stdout: str
    stderr: str


class ProbeExecutor(Protocol):
    """Runs the probe agent inside a workload of the topology (referred to as ``namespace/name``)."""

    def address_of(self, workload: str) -> str:
        """The IP address other workloads reach ``workload`` on (its pod IP)."""
        ...

    def run_agent(self, source: str, plan_json: str, *, timeout_s: float) -> CompletedExec:
        """Run the agent inside ``source`` with ``plan_json`` on stdin; give up after ``timeout_s``.

        Must not raise for a non-zero exit: the return code and stderr are part of the result.
        Raises ``flowcheck.errors.ClusterError`` only when the agent could not be started at all.
        """
        ...
