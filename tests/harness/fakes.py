"""Fakes at the harness's live boundary: an agent that answers like the real one, a fake Hubble, a provider.

``ScriptedAgent`` lines: ``agent_line`` turns each probe of a plan into the JSON line the real agent
would print for a given verdict (a timeout for a drop, Envoy's 403 for an L7 denial, a DNS REFUSED,
the probe server's identity for an answer), with the source address and port the agent reports, so
the library's real parsing and classification run on it.

Who decides what the fake cluster does: ``scenario_decider``, a fixed table written by hand from the
text of manifests/network-policies (as the netns lab's nftables translation is) -- never the policy
model under test, so a check that compares the two can fail. Scripts (``overrides``) replace single
paths for the tests of retries and mismatches.

``FakeBackend`` records what the cluster did to every probe and, with ``hubble=True``, answers
evidence queries with Hubble flows in ``hubble observe -o json`` form that agree with it (a policy
drop, a forwarded reply, the proxy's denial); ``contradict`` makes them disagree for chosen paths.
``FakeProvider`` plugs into the plugin's ``pytest_flowcheck_backend`` hook and writes what it did
(set-ups, teardowns, every probe sent) into a directory so tests can count them across pytest-xdist
workers. ``ExecutorBackend`` is the ``LiveBackend`` shape every test back end shares (``FakeBackend``
here, the netns lab's ``LabBackend`` in tests/netlab/scenario.py).
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

from flowcheck.cluster.cilium import ConnectivityReport
from flowcheck.cluster.hubble import FlowRecord, match, parse_flow_line
from flowcheck.errors import ClusterError
from flowcheck.harness.backends import EvidenceQuery, ProbeRoute, SetupRequest
from flowcheck.harness.placement import route_out, routes_between
from flowcheck.manifests.documents import SourceDocument
from flowcheck.model.engine import Model
from flowcheck.model.flows import DnsQuery, Flow, HttpRequest, WorkloadEndpoint
from flowcheck.model.policies import parse_policies
from flowcheck.model.topology import Topology, load_topology
from flowcheck.probe.classify import DEFAULT_SETTINGS, ClassifierSettings
from flowcheck.probe.executor import CompletedExec, ProbeExecutor
from flowcheck.verdict import Verdict

Decide = Callable[[str, str, dict[str, Any]], Verdict]
FIRST_SOURCE_PORT = 40000
RESOLVED_NAME_ADDRESS = "203.0.113.7"  # TEST-NET-3: every name outside the topology resolves here


def agent_line(probe: Mapping[str, Any], verdict: Verdict, server: str, saddr: str = "", sport: int = 0
               ) -> dict[str, Any]:
    """The line the real agent prints for ``probe`` when policy did ``verdict`` to it (with the local
    address and port it reports for every probe that sent something)."""
    base: dict[str, Any] = {"id": probe["id"], "kind": probe["kind"], "elapsed": 0.01}
    if saddr and sport:
        base.update(saddr=saddr, sport=sport)
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


def scenario_decider(overrides: Mapping[str, Sequence[str]] | None = None,
                     attempts: dict[str, int] | None = None) -> Decide:
    """What a cluster enforcing manifests/network-policies does, as a fixed table written from the policy text
    (not from flowcheck's model), except the paths scripted in ``overrides``.

    - allow-dns-egress isolates every `default` pod for egress: only UDP/53 to kube-system leaves it;
    - default-deny-ingress isolates every `default` pod for ingress, except:
      allow-monitoring-scrape (monitoring/prometheus, TCP 9090) and allow-get-only (my-api's TCP 8080
      from anywhere, where the proxy forwards GET and answers anything else with 403);
    - nothing else is restricted.

    ``overrides`` maps ``"source->destination:port"`` to the verdicts of successive attempts (the last one
    repeats), e.g. ``["allowed", "dropped"]`` for a path that disagrees once.
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
        kind = probe["kind"]
        protocol = "UDP" if kind == "udp" or (kind == "dns" and probe.get("transport") == "udp") else "TCP"
        if source.startswith("default/") and not (destination.startswith("kube-system/") and protocol == "UDP"
                                                   and port == 53):
            return Verdict.DROPPED
        if destination.startswith("default/"):
            if source == "monitoring/prometheus" and protocol == "TCP" and port == 9090:
                return Verdict.ALLOWED
            if destination == "default/my-api" and protocol == "TCP" and port == 8080:
                return Verdict.L7_DENIED if kind == "http" and probe["method"] != "GET" else Verdict.ALLOWED
            return Verdict.DROPPED
        return Verdict.ALLOWED

    return decide


@dataclass(frozen=True, slots=True)
class SentProbe:
    """What the fake cluster did to one probe the agent sent."""

    source: str
    destination: str
    probe: dict[str, Any]
    verdict: Verdict
    saddr: str
    sport: int
    daddr: str
    time: datetime


class FakeExecutor:
    """A ``ProbeExecutor`` over a scripted agent; records every run (source, probe ids) and every probe sent.

    Targets are probe pods; ``workload_of`` maps a target to the workload it stands for (default: itself),
    which is what ``decide`` is asked about."""

    def __init__(self, addresses: Mapping[str, str], decide: Decide,
                 on_run: Callable[[str, list[dict[str, Any]]], None] | None = None,
                 workload_of: Mapping[str, str] | None = None) -> None:
        self.addresses = dict(addresses)
        self.by_ip = {ip: ref for ref, ip in addresses.items()}
        self.decide = decide
        self.workload_of = dict(workload_of or {})
        self.runs: list[tuple[str, list[str]]] = []
        self.sent: list[SentProbe] = []
        self.on_run = on_run
        self.raise_for: dict[str, BaseException] = {}  # source -> what its exec raises
        self._ports = itertools.count(FIRST_SOURCE_PORT)

    def address_of(self, workload: str) -> str:
        return self.addresses[workload]

    def run_agent(self, source: str, plan_json: str, *, timeout_s: float) -> CompletedExec:
        probes = json.loads(plan_json)["probes"]
        self.runs.append((source, [p["id"] for p in probes]))
        if self.on_run:
            self.on_run(source, probes)
        if source in self.raise_for:
            raise self.raise_for[source]
        lines = []
        for probe in probes:
            daddr = probe.get("host") or probe["server"]
            destination = self.by_ip.get(daddr, daddr)  # a name (an FQDN, a Service) stands for itself
            if destination == daddr:
                daddr = RESOLVED_NAME_ADDRESS  # what the pod's resolver answered; Hubble sees this address
            verdict = self.decide(self.workload_of.get(source, source), self.workload_of.get(destination, destination),
                                  probe)
            sport = next(self._ports)
            self.sent.append(SentProbe(source, destination, probe, verdict, self.addresses[source], sport, daddr,
                                       datetime.now(UTC)))
            lines.append(json.dumps(agent_line(probe, verdict, destination, self.addresses[source], sport)))
        return CompletedExec(0, "\n".join(lines) + "\n", "")


ExecutorT = TypeVar("ExecutorT", bound=ProbeExecutor)


class ExecutorBackend(Generic[ExecutorT]):
    """A ``LiveBackend`` over an executor: one probe pod per workload (the target is the workload's name),
    no nodes; ``existing`` workloads cannot run the agent and run no probe server; Cilium's default denial
    settings; always realized; no evidence; no connectivity test. ``existing_reason`` says why such a
    source is not probed (``{workload}`` is filled in), ``description`` what the back end is."""

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

    @property
    def notes(self) -> Mapping[str, str]:
        return {}

    def cannot_probe_from(self, workload: str) -> str | None:
        return self._existing_reason.format(workload=workload) if workload in self.existing else None

    def is_probe_server(self, workload: str) -> bool:
        return workload not in self.existing

    def routes(self, source: str, destination: str | None) -> tuple[ProbeRoute, ...]:
        if destination is None:
            return (ProbeRoute(source, ""),)
        return (ProbeRoute(source, destination),) if source != destination else ()

    def server_name(self, target: str) -> str:
        return target

    def classifier_settings(self, route: ProbeRoute) -> ClassifierSettings:
        return DEFAULT_SETTINGS

    def unrealized(self) -> Sequence[str]:
        return ()

    def evidence(self, queries: Sequence[EvidenceQuery], since: datetime,
                 until: datetime) -> Mapping[str, Sequence[FlowRecord]] | None:
        return None

    def connectivity_test(self, junit_file: Path, *, tests: Sequence[str] = ()) -> ConnectivityReport | None:
        return None


def hubble_line(*, verdict: str, src: tuple[str, str, int], dst: tuple[str, str, int], protocol: str = "TCP",
                when: datetime, drop_reason: str = "", flags: Sequence[str] = (), l7: Mapping[str, Any] | None = None,
                is_reply: bool | None = None, direction: str = "INGRESS", event_type: int = 4,
                node: str = "fake/node") -> str:
    """One ``hubble observe -o json`` line (protojson, proto names; the shapes of
    tests/data/cluster/hubble-flows-probes.jsonl): ``src``/``dst`` are (namespace/pod, ip, port)."""
    def endpoint(ref: str) -> dict[str, Any]:
        namespace, _, pod = ref.partition("/")
        return {"namespace": namespace, "pod_name": pod} if pod else {}

    l4: dict[str, Any] = {"source_port": src[2], "destination_port": dst[2]}
    if flags:
        l4["flags"] = dict.fromkeys(flags, True)
    stamp = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    flow: dict[str, Any] = {"time": stamp, "verdict": verdict, "IP": {"source": src[1], "destination": dst[1],
                                                                       "ipVersion": "IPv4"},
                            "l4": {protocol: l4}, "source": endpoint(src[0]), "destination": endpoint(dst[0]),
                            "Type": "L7" if l7 else "L3_L4", "node_name": node,
                            "event_type": {"type": 129 if l7 else event_type},
                            "traffic_direction": direction}
    if drop_reason:
        flow["drop_reason_desc"] = drop_reason
    if l7:
        flow["l7"] = dict(l7)
    if is_reply is not None:
        flow["is_reply"] = is_reply
    return json.dumps({"flow": flow, "node_name": node, "time": stamp})


def flows_for(sent: SentProbe, *, contradict: bool = False) -> list[FlowRecord]:
    """What Hubble would show for a probe the fake cluster treated as ``sent.verdict`` (``contradict``: a
    flow that disagrees with it -- a forwarded reply to a drop, a policy drop of an answered probe)."""
    protocol = "UDP" if sent.probe["kind"] == "udp" or sent.probe.get("transport") == "udp" else "TCP"
    port = int(sent.probe.get("port", 53))
    src = (sent.source, sent.saddr, sent.sport)
    dst = (sent.destination, sent.daddr, port)
    verdict = sent.verdict
    if contradict:
        verdict = Verdict.ALLOWED if verdict is not Verdict.ALLOWED else Verdict.DROPPED
    lines: list[str] = []
    when = sent.time
    if verdict is Verdict.DROPPED:
        lines += [hubble_line(verdict="DROPPED", src=src, dst=dst, protocol=protocol, when=when,
                              drop_reason="POLICY_DENIED", flags=("SYN",), event_type=5),
                  hubble_line(verdict="DROPPED", src=src, dst=dst, protocol=protocol, when=when,
                              drop_reason="POLICY_DENIED", flags=("SYN",), event_type=1)]
    elif verdict is Verdict.L7_DENIED:
        request = {"type": "REQUEST", "http": {"method": sent.probe.get("method", ""), "url": "/"}}
        lines.append(hubble_line(verdict="DROPPED", src=src, dst=dst, when=when, l7=request, is_reply=False))
    elif verdict is Verdict.ALLOWED:
        lines.append(hubble_line(verdict="FORWARDED", src=dst, dst=src, protocol=protocol, when=when,
                                 flags=("SYN", "ACK") if protocol == "TCP" else (), is_reply=True))
    return [record for line in lines if (record := parse_flow_line(line)) is not None]


class FakeBackend(ExecutorBackend[FakeExecutor]):
    """A ``LiveBackend`` over a ``FakeExecutor``. With ``hubble``, evidence queries are answered with flows
    that agree with what the fake cluster did (``flows_for``), except for the paths in ``contradict``
    (``"source->destination:port"``); every query is recorded in ``evidence_calls``. ``lagging`` scripts
    the answers of ``unrealized`` (each call takes the next; the last repeats)."""

    def __init__(self, executor: FakeExecutor, existing: Sequence[str] = (), *, hubble: bool = False,
                 contradict: Iterable[str] = (),
                 routes: Mapping[tuple[str, str | None], Sequence[ProbeRoute]] | None = None,
                 lagging: Sequence[Sequence[str]] = ()) -> None:
        super().__init__(executor, existing, description="fake back end",
                         existing_reason="{workload} is an existing pod")
        self.hubble = hubble
        self.contradict = set(contradict)
        self._routes = dict(routes or {})
        self._lagging = list(lagging)
        self.unrealized_calls = 0
        self.evidence_calls: list[list[EvidenceQuery]] = []

    def routes(self, source: str, destination: str | None) -> tuple[ProbeRoute, ...]:
        if (source, destination) in self._routes:
            return tuple(self._routes[(source, destination)])
        return super().routes(source, destination)

    def unrealized(self) -> Sequence[str]:
        self.unrealized_calls += 1
        if not self._lagging:
            return ()
        return self._lagging.pop(0) if len(self._lagging) > 1 else self._lagging[0]

    def evidence(self, queries: Sequence[EvidenceQuery], since: datetime,
                 until: datetime) -> Mapping[str, Sequence[FlowRecord]] | None:
        self.evidence_calls.append(list(queries))
        if not self.hubble:
            return None
        # like a real Hubble: every flow of the window, which the back end then matches per probe's 5-tuple
        workload_of = self.executor.workload_of
        flows = [flow for sent in self.executor.sent
                 for flow in flows_for(sent, contradict=(f"{workload_of.get(sent.source, sent.source)}->"
                                                         f"{workload_of.get(sent.destination, sent.destination)}:"
                                                         f"{sent.probe.get('port', 53)}") in self.contradict)]
        return {q.probe_id: tuple(match(flows, q.facts(since, until))) for q in queries}


def addresses_for(topology: Topology) -> dict[str, str]:
    """One made-up pod IP per workload (10.244.0.10, .11, ...)."""
    return {w.ref: f"10.244.0.{10 + i}" for i, w in enumerate(topology.workloads)}


def two_node_backend(topology: Topology, decide: Decide, *, hubble: bool = True) -> FakeBackend:
    """A fake two-node cluster: every workload has a pod on node ``a`` and on node ``b``
    (``<workload>@a``, ``<workload>@b``), routed same-node and cross-node by ``placement``."""
    addresses: dict[str, str] = {}
    workload_of: dict[str, str] = {}
    for i, workload in enumerate(topology.workloads):
        for j, node in enumerate(("a", "b")):
            target = f"{workload.ref}@{node}"
            addresses[target] = f"10.244.{j + 1}.{10 + i}"
            workload_of[target] = workload.ref
    refs = [w.ref for w in topology.workloads]
    routes: dict[tuple[str, str | None], Sequence[ProbeRoute]] = {
        (s, d): routes_between([(f"{s}@{n}", n) for n in ("a", "b")], [(f"{d}@{n}", n) for n in ("a", "b")])
        for s in refs for d in refs}
    routes.update({(s, None): route_out([(f"{s}@{n}", n) for n in ("a", "b")]) for s in refs})
    executor = FakeExecutor(addresses, decide, workload_of=workload_of)
    return FakeBackend(executor, [w.ref for w in topology.workloads if w.existing], hubble=hubble, routes=routes)


def model_decider(model: Model, overrides: Mapping[str, Sequence[str]] | None = None) -> Decide:
    """Decide each probe as ``model`` does (except the paths scripted in ``overrides``, as in
    ``scenario_decider``). Only for tests of plumbing on repositories the fixed table does not know: the
    observations then agree with the model by construction, so such a test must not claim to check verdicts."""
    seen: dict[str, int] = {}

    def decide(source: str, destination: str, probe: dict[str, Any]) -> Verdict:
        key = f"{source}->{destination}:{int(probe.get('port', 53))}"
        if overrides and key in overrides:
            n = seen[key] = seen.get(key, 0) + 1
            return Verdict.parse(overrides[key][min(n - 1, len(overrides[key]) - 1)])
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
    """Plugs a fake cluster (``scenario_decider``, with ``overrides``) into the plugin; logs set-ups,
    teardowns and probes to ``log_dir``. ``two_nodes``: the fake cluster of ``two_node_backend``.
    ``by_model``: the cluster decides as the model of the applied documents (``model_decider``), for
    plumbing tests on repositories the fixed table does not describe."""

    def __init__(self, log_dir: Path, overrides: Mapping[str, Sequence[str]] | None = None, *,
                 teardown_error: str = "", hubble: bool = True, two_nodes: bool = False,
                 by_model: bool = False) -> None:
        self.log_dir = log_dir
        self.overrides = dict(overrides or {})
        self.teardown_error = teardown_error
        self.hubble = hubble
        self.two_nodes = two_nodes
        self.by_model = by_model

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
        def on_run(source: str, probes: list[dict[str, Any]]) -> None:
            for probe in probes:
                self._log("probes", f"{source} {probe['id']} {probe['kind']} {probe.get('port')}")

        if self.by_model:
            documents = [SourceDocument("<applied>", i, None, body) for i, body in enumerate(state["documents"])]
            decide = model_decider(Model(load_topology(state["topology"]), parse_policies(documents)), self.overrides)
        else:
            decide = scenario_decider(self.overrides)
        if self.two_nodes:
            backend = two_node_backend(load_topology(state["topology"]), decide, hubble=self.hubble)
            backend.executor.on_run = on_run
            return backend
        executor = FakeExecutor(state["addresses"], decide, on_run)
        return FakeBackend(executor, state["existing"], hubble=self.hubble)

    def tear_down(self, state: Mapping[str, Any], *, failed: bool) -> None:
        self._log("teardowns", f"{os.getpid()} failed={failed}")
        if self.teardown_error:
            raise ClusterError(self.teardown_error)
