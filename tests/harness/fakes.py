"""Fakes at the harness's live boundary: an agent that answers like the real one, and a provider.

``ScriptedAgent`` turns each probe of a plan into the JSON line the real agent would print for a
given verdict (a timeout for a drop, Envoy's 403 for an L7 denial, a DNS REFUSED, the probe
server's identity for an answer), so the library's real parsing and classification run on it.
``FakeProvider`` plugs into the plugin's ``pytest_flowcheck_backend`` hook; it decides each probe
from the policy model unless a script overrides a path, and writes what it did (set-ups, teardowns,
every probe sent) into a directory so tests can count them across pytest-xdist workers.
``ExecutorBackend`` is the ``LiveBackend`` shape every test back end shares (``FakeBackend`` here,
the netns lab's ``LabBackend`` in tests/netlab/scenario.py).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

from flowcheck.errors import ClusterError
from flowcheck.harness.backends import EvidenceQuery, SetupRequest
from flowcheck.manifests.documents import SourceDocument
from flowcheck.model.engine import Model
from flowcheck.model.flows import DnsQuery, Flow, HttpRequest, WorkloadEndpoint
from flowcheck.model.policies import parse_policies
from flowcheck.model.topology import Topology, load_topology
from flowcheck.probe.executor import CompletedExec, ProbeExecutor
from flowcheck.verdict import Verdict

Decide = Callable[[str, str, dict[str, Any]], Verdict]


def agent_line(probe: Mapping[str, Any], verdict: Verdict, server: str) -> dict[str, Any]:
    """The line the real agent prints for ``probe`` when policy did ``verdict`` to it."""
    base: dict[str, Any] = {"id": probe["id"], "kind": probe["kind"], "elapsed": 0.01}
    kind = probe["kind"]
    if verdict is Verdict.DROPPED:
        return {**base, "outcome": "timeout", "elapsed": float(probe.get("timeout", 2.0))}
    if verdict is Verdict.REFUSED:
        return {**base, "outcome": "refused", "detail": "connection refused"}
    if verdict is Verdict.ERROR:
        return {**base, "outcome": "error", "detail": "scripted failure"}
    if kind == "http":
        if verdict is Verdict.L7_DENIED:
            return {**base, "outcome": "ok", "status": 403, "body": "Access denied\r\n",
                    "headers": {"server": "envoy", "content-type": "text/plain"}}
        body = json.dumps({"server": server, "method": probe["method"], "path": probe["path"]})
        return {**base, "outcome": "ok", "status": 200, "body": body, "server": server}
    if kind == "dns":
        rcode = "REFUSED" if verdict is Verdict.L7_DENIED else "NOERROR"
        return {**base, "outcome": "ok", "rcode": rcode, "answers": []}
    if kind == "udp":
        return {**base, "outcome": "ok", "reply": json.dumps({"server": server}), "server": server}
    return {**base, "outcome": "ok"}


class FakeExecutor:
    """A ``ProbeExecutor`` over a scripted agent; records every run (source, probe ids)."""

    def __init__(self, addresses: Mapping[str, str], decide: Decide,
                 on_run: Callable[[str, list[dict[str, Any]]], None] | None = None) -> None:
        self.addresses = dict(addresses)
        self.by_ip = {ip: ref for ref, ip in addresses.items()}
        self.decide = decide
        self.runs: list[tuple[str, list[str]]] = []
        self.on_run = on_run

    def address_of(self, workload: str) -> str:
        return self.addresses[workload]

    def run_agent(self, source: str, plan_json: str, *, timeout_s: float) -> CompletedExec:
        probes = json.loads(plan_json)["probes"]
        self.runs.append((source, [p["id"] for p in probes]))
        if self.on_run:
            self.on_run(source, probes)
        lines = []
        for probe in probes:
            destination = self.by_ip[probe.get("host") or probe["server"]]
            lines.append(json.dumps(agent_line(probe, self.decide(source, destination, probe), destination)))
        return CompletedExec(0, "\n".join(lines) + "\n", "")


ExecutorT = TypeVar("ExecutorT", bound=ProbeExecutor)


class ExecutorBackend(Generic[ExecutorT]):
    """A ``LiveBackend`` over an executor: ``existing`` workloads cannot run the agent and run no probe
    server; no evidence. ``existing_reason`` says why such a source is not probed (``{workload}`` is
    filled in), ``description`` what the back end is."""

    def __init__(self, executor: ExecutorT, existing: Iterable[str], *, description: str,
                 existing_reason: str) -> None:
        self._executor = executor
        self.existing = set(existing)
        self._description = description
        self._existing_reason = existing_reason

    @property
    def executor(self) -> ExecutorT:
        return self._executor

    @property
    def description(self) -> str:
        return self._description

    def cannot_probe_from(self, workload: str) -> str | None:
        return self._existing_reason.format(workload=workload) if workload in self.existing else None

    def is_probe_server(self, workload: str) -> bool:
        return workload not in self.existing

    def evidence(self, queries: Sequence[EvidenceQuery], since: datetime,
                 until: datetime) -> Mapping[str, tuple[str, ...]]:
        return {}


class FakeBackend(ExecutorBackend[FakeExecutor]):
    """A ``LiveBackend`` over a ``FakeExecutor``; records evidence queries and answers them with
    ``evidence_line`` (none when empty)."""

    def __init__(self, executor: FakeExecutor, existing: Sequence[str] = (), evidence_line: str = "") -> None:
        super().__init__(executor, existing, description="fake back end",
                         existing_reason="{workload} is an existing pod")
        self.evidence_line = evidence_line
        self.evidence_calls: list[list[str]] = []

    def evidence(self, queries: Sequence[EvidenceQuery], since: datetime,
                 until: datetime) -> Mapping[str, tuple[str, ...]]:
        self.evidence_calls.append([q.probe_id for q in queries])
        if not self.evidence_line:
            return {}
        return {q.probe_id: (f"{self.evidence_line} {q.source} -> {q.destination}:{q.port}",) for q in queries}


def addresses_for(topology: Topology) -> dict[str, str]:
    """One made-up pod IP per workload (10.244.0.10, .11, ...)."""
    return {w.ref: f"10.244.0.{10 + i}" for i, w in enumerate(topology.workloads)}


def model_decider(model: Model, overrides: Mapping[str, Sequence[str]] | None = None,
                  attempts: dict[str, int] | None = None) -> Decide:
    """Decide each probe as the model does, except paths scripted in ``overrides``.

    ``overrides`` maps ``"source->destination:port"`` to the verdicts of successive attempts (the
    last one repeats), e.g. ``["allowed", "dropped"]`` for a path that disagrees once.
    """
    seen = attempts if attempts is not None else {}

    def decide(source: str, destination: str, probe: dict[str, Any]) -> Verdict:
        port = int(probe.get("port", 53))
        key = f"{source}->{destination}:{port}"
        if overrides and key in overrides:
            script = overrides[key]
            n = seen.get(key, 0)
            seen[key] = n + 1
            return Verdict.parse(script[min(n, len(script) - 1)])
        return model.decide(_flow(source, destination, probe)).verdict

    return decide


def _flow(source: str, destination: str, probe: dict[str, Any]) -> Flow:
    kind = probe["kind"]
    if kind == "dns":
        return Flow(WorkloadEndpoint(source), WorkloadEndpoint(destination), probe["transport"].upper(),
                    int(probe["port"]), dns=DnsQuery(probe["name"]))
    http = HttpRequest.make(probe["method"], probe["path"], probe.get("headers")) if kind == "http" else None
    protocol = "UDP" if kind == "udp" else "TCP"
    return Flow(WorkloadEndpoint(source), WorkloadEndpoint(destination), protocol, int(probe["port"]), http=http)


class FakeProvider:
    """Plugs a model-driven fake cluster into the plugin; logs set-ups, teardowns and probes to ``log_dir``.

    ``overrides`` as in ``model_decider``; attempts are counted per process.
    """

    def __init__(self, log_dir: Path, overrides: Mapping[str, Sequence[str]] | None = None,
                 evidence_line: str = "FAKE-HUBBLE DROPPED", teardown_error: str = "") -> None:
        self.log_dir = log_dir
        self.overrides = dict(overrides or {})
        self.evidence_line = evidence_line
        self.teardown_error = teardown_error

    def _log(self, name: str, text: str) -> None:
        with (self.log_dir / name).open("a", encoding="utf-8") as out:
            out.write(text + "\n")

    def set_up(self, request: SetupRequest) -> dict[str, Any]:
        self._log("setups", str(os.getpid()))
        return {"addresses": addresses_for(request.topology),
                "existing": [w.ref for w in request.topology.workloads if w.existing],
                "topology": request.topology.path,
                # what a cluster would be given: the documents as read (a kustomization's namespace applied)
                "documents": [doc.body for doc in request.policies]}

    def attach(self, state: Mapping[str, Any]) -> FakeBackend:
        documents = [SourceDocument("<applied>", i, None, body) for i, body in enumerate(state["documents"])]
        model = Model(load_topology(state["topology"]), parse_policies(documents))

        def on_run(source: str, probes: list[dict[str, Any]]) -> None:
            for probe in probes:
                self._log("probes", f"{source} {probe['id']} {probe['kind']} {probe.get('port')}")

        executor = FakeExecutor(state["addresses"], model_decider(model, self.overrides), on_run)
        return FakeBackend(executor, state["existing"], self.evidence_line)

    def tear_down(self, state: Mapping[str, Any], *, failed: bool) -> None:
        self._log("teardowns", f"{os.getpid()} failed={failed}")
        if self.teardown_error:
            raise ClusterError(self.teardown_error)
