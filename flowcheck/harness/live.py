"""Probe expectations on the live back end: batched per source, checked against Hubble, never judged early.

The order of one batch (``probe``):

1. **Realized first.** Nothing is probed until the back end reports every applied policy enforced
   (``LiveBackend.unrealized``, checked once per process): a path observed before its policy landed
   would be judged against the wrong rules.
2. **Routes.** Each expectation becomes one probe per route -- same-node and cross-node where the
   deployment has both (``placement``) -- between the probe pods standing for its workloads. Several
   expectations that need the same probe between the same pods (two workloads of one probe class,
   a TCP path and ``GET /`` on it) share one probe, and its observation is attributed to each.
3. **Batched rounds.** All probes of one source pod go into one plan and one agent run, sources in
   parallel, so a batch costs about one probe timeout. A probe whose observation agrees with its
   reference is final; only disagreeing ones are re-run, for a bounded number of rounds (a retry only
   absorbs a short propagation lag -- realization was waited for). An expected drop observed as a drop
   costs one timeout, never a retry budget (the lesson of cilium/cilium#47415).
4. **Evidence per probe.** The agent reports each probe's source port; the back end's Hubble flows are
   matched on the 5-tuple, and ``evidence.judge`` confirms or contradicts the observation the way
   cilium-cli's flow requirements do. A contradicted observation is an error ("inconsistent"), never a
   pass; a probe no flow decides is counted as "no evidence".
5. **A drop needs a reachable destination.** A timeout is a verdict only when Hubble showed the policy
   drop or the destination pod answered some probe of this run; otherwise one allowed control path
   into it (chosen from the model) is probed, and a destination still not shown up makes the timeout
   an error that says so -- a pod or node that is down looks exactly like a drop.
6. **One verdict per path per run.** A path observed differently earlier in the run is flagged.

TCP paths to flowcheck's probe servers are probed as HTTP identity checks (``classify(l4_intent=True)``):
a bare connect cannot tell which server accepted it.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from tenacity import Retrying, retry_if_result, stop_after_attempt, wait_fixed

from flowcheck.cluster.evidence import EvidenceCheck, EvidenceState, judge
from flowcheck.cluster.hubble import FlowRecord
from flowcheck.harness.backends import (
    NO_NODE_ADDRESSES,
    EvidenceQuery,
    LiveBackend,
    ProbeRoute,
    SourceNodes,
    source_nodes,
)
from flowcheck.harness.expectations import DEFAULT_DNS_QUERY, Expectation
from flowcheck.harness.run_ledger import RunLedger
from flowcheck.model.flows import Endpoint, EntityEndpoint, Flow, FqdnEndpoint, WorkloadEndpoint
from flowcheck.model.identity import Entity
from flowcheck.probe.classify import Classification, ClassifierSettings, classify
from flowcheck.probe.plan import (
    DnsProbe,
    HttpProbe,
    Outcome,
    ProbeResult,
    ProbeSpec,
    TcpProbe,
    UdpProbe,
    agent_budget_s,
    build_plan,
    parse_results,
)
from flowcheck.verdict import Verdict
from flowcheck.vocabulary import DNS_PORT

MAX_ROUNDS = 3  # first probe + at most two re-probes of a disagreeing path
RETRY_WAIT_S = 1.0  # between rounds: long enough for an identity/ipcache update to land
MAX_PARALLEL_SOURCES = 16  # concurrent agent execs; each is one API-server exec stream
REALIZATION_TIMEOUT_S = 60.0  # how long a process waits for the back end to enforce the policies
REALIZATION_POLL_S = 1.0
MAX_CONTROL_PATHS = 3  # allowed paths tried to show one destination pod answers
IDENTITY_PATH = "/"  # what an HTTP identity check standing for a TCP connect asks for
SELF_TRAFFIC = ("a workload's traffic to itself stays inside its pod (the kernel loops it back): no policy sees it, "
                "so a probe would show nothing")

ControlFinder = Callable[[str], Sequence[Flow]]
"""Paths the model predicts allowed into a workload (TCP/UDP, no L7), to show its pod answers."""


@dataclass(frozen=True, slots=True)
class LiveItem:
    """One expectation on one route: which probe, and what its observation is compared with."""

    key: int
    expectation: Expectation
    route: ProbeRoute
    spec: ProbeSpec
    reference: Verdict | None  # the expected verdict, or the model's when nothing was expected
    expected_server: str | None
    foreign_destination: bool
    l4_intent: bool = False
    settings: ClassifierSettings = field(default_factory=ClassifierSettings)

    @property
    def source(self) -> str:
        return self.route.source

    def settled(self, observed: Verdict) -> bool:
        """No reason to probe again: the observation agrees with the reference, or there is no
        reference to disagree with (the model could not decide and nobody stated an intent) and
        the probe itself worked."""
        if self.reference is None:
            return observed not in (Verdict.ERROR, Verdict.REFUSED)
        return observed == self.reference

    def classify(self, result: ProbeResult) -> Classification:
        return classify(result, expected_server=self.expected_server, foreign_http_is_allowed=self.foreign_destination,
                        http_403_message=self.settings.http_403_messages,
                        dns_denied_rcode=self.settings.dns_denied_rcode, l4_intent=self.l4_intent)


@dataclass(frozen=True, slots=True)
class Observation:
    """What the cluster did to one path on one route, after ``attempts`` probes, with the evidence behind it.

    ``evidence_state`` is the Hubble judgement (``confirmed``, ``contradicted``, ``none``), empty when the
    back end has no evidence source; ``conflict`` says how an earlier observation of the same path in
    this run differed.
    """

    verdict: Verdict
    detail: str
    attempts: int
    evidence: tuple[str, ...] = ()
    evidence_state: str = ""
    route: ProbeRoute | None = None
    conflict: str = ""


def live_items_for(backend: LiveBackend, expectation: Expectation, next_key: Callable[[], int],
                   reference: Verdict | None) -> list[LiveItem] | str:
    """The probes for one expectation, one per route, or the reason it cannot be probed live.

    A destination outside the topology that a pod can reach (``external_target``) is probed from one of
    the source's pods, with no placement: where the destination runs is not flowcheck's to choose. A node
    (``host``, ``remote-node``) is resolved for that pod, and its route names the node."""
    flow = expectation.flow
    source, destination = expectation.source, expectation.destination
    if not isinstance(flow.source, WorkloadEndpoint):
        return (f"{source} is not a workload: the probe agent runs only in flowcheck's probe pods, so "
                "nothing can send from there")
    why_not = backend.cannot_probe_from(source)
    if why_not:
        return why_not
    if isinstance(flow.destination, WorkloadEndpoint):
        if source == destination:
            return SELF_TRAFFIC
        routes = backend.routes(source, destination)
        if not routes:
            return (f"{source} and {destination} have no two distinct probe pods to probe between (one pod stands "
                    "for both, and traffic from a pod to itself meets no policy)")
        server = backend.is_probe_server(destination)
        hosts = [backend.executor.address_of(route.destination) for route in routes]
    else:
        out = backend.routes(source, None)
        targets = [external_target(flow.destination, flow.protocol, flow.port,
                                   source_nodes(backend, route.source) if _is_node(flow.destination) else None)
                   for route in out]
        missing = next((t for t in targets if t.host is None), None)
        if missing is not None or not out:
            return missing.why if missing is not None else f"{source} has no probe pod to probe from"
        routes = tuple(replace(route, destination=destination, destination_node=target.node)
                       for route, target in zip(out, targets, strict=True))
        server = False
        hosts = [target.host for target in targets if target.host is not None]
    if flow.protocol in ("ICMP", "SCTP") or flow.port is None:
        return f"the probe agent cannot send {flow.protocol} (only TCP, HTTP, UDP and DNS probes)"
    items = []
    for route, host in zip(routes, hosts, strict=True):
        expected_server = backend.server_name(route.destination) if server else None
        try:
            spec = _spec(expectation, host, flow.port, server)
        except ValueError as exc:  # expectations are checked when made; this guards the ones built by hand
            return f"no probe can express this path: {exc}"
        if isinstance(spec, str):
            return spec
        items.append(LiveItem(next_key(), expectation, route, spec, reference, expected_server, not server,
                              l4_intent=server and flow.protocol == "TCP" and flow.http is None and flow.dns is None,
                              settings=backend.classifier_settings(route)))
    return items


@dataclass(frozen=True, slots=True)
class ExternalTarget:
    """Where the agent sends a probe for a destination outside the topology (``host``, and the ``node`` it
    runs on when that is known), or why it cannot."""

    host: str | None
    why: str = ""
    node: str = ""


KUBE_APISERVER_SERVICE = "kubernetes.default.svc"
"""The API server's Service in every cluster; the pod's resolver search path completes the name."""
KUBE_APISERVER_SERVICE_PORT = 443


def external_target(destination: Endpoint, protocol: str, port: int | None,
                    nodes: SourceNodes | None = None) -> ExternalTarget:
    """How a destination outside the topology is probed from a pod, or why it is not.

    An FQDN is probed by name: the agent resolves it through the pod's resolver (the cluster's DNS,
    whose answers Cilium's DNS proxy reads to learn what a ``toFQDNs`` rule selects), then connects.
    The API server is probed through its ``kubernetes.default`` Service on TCP/443 (Cilium judges the
    connection after its socket load-balancer picked the API server's own address and port). ``host``
    and ``remote-node`` are probed at a node address the back end gives for the source pod (``nodes``,
    ``node_target``). The rest -- world addresses and blocks -- is not probed: a run must not depend on
    the internet.
    """
    if isinstance(destination, FqdnEndpoint):
        return ExternalTarget(destination.fqdn)
    if isinstance(destination, EntityEndpoint) and destination.entity is Entity.KUBE_APISERVER:
        if protocol == "TCP" and port == KUBE_APISERVER_SERVICE_PORT:
            return ExternalTarget(KUBE_APISERVER_SERVICE)
        return ExternalTarget(None, f"kube-apiserver is probed only through its {KUBE_APISERVER_SERVICE} Service on "
                                    f"TCP/{KUBE_APISERVER_SERVICE_PORT}, not {protocol}/{port}")
    if isinstance(destination, EntityEndpoint) and _is_node(destination):
        return node_target(destination, nodes or SourceNodes(None, (), NO_NODE_ADDRESSES, NO_NODE_ADDRESSES))
    return ExternalTarget(None, f"{destination.describe()} is outside the cluster: a run does not depend on "
                                "reaching the internet, so only the model checks it")


def _is_node(destination: Endpoint) -> bool:
    return isinstance(destination, EntityEndpoint) and destination.entity in (Entity.HOST, Entity.REMOTE_NODE)


def node_target(destination: EntityEndpoint, nodes: SourceNodes) -> ExternalTarget:
    """The node address a ``host`` or ``remote-node`` probe aims at, seen from its source pod.

    Cilium gives a pod's traffic to its own node the ``host`` identity and to any other node
    ``remote-node`` (docs/semantics.md, "Host, nodes and allow-localhost"): ``host`` is the source pod's
    node, ``remote-node`` another node (the back end's preferred one). An address written in the intent
    (``entity:host@IP``) must be such a node's, or the probe would test something else."""
    if destination.entity is Entity.HOST:
        if nodes.own is None:
            return ExternalTarget(None, f"host: {nodes.why_no_own or NO_NODE_ADDRESSES}")
        if destination.ip and destination.ip != nodes.own.address:
            return ExternalTarget(None, f"{destination.describe()}: the source pod's node {nodes.own.node} has address "
                                        f"{nodes.own.address}; from this pod {destination.ip} is not host")
        return ExternalTarget(nodes.own.address, node=nodes.own.node)
    if not nodes.others:
        return ExternalTarget(None, f"remote-node: {nodes.why_no_others or 'the cluster has one node'}")
    chosen = nodes.others[0]
    if destination.ip:
        named = [n for n in nodes.others if n.address == destination.ip]
        if not named:
            known = ", ".join(f"{n.node} {n.address}" for n in nodes.others)
            return ExternalTarget(None, f"{destination.describe()} is not the address of a node other than the source "
                                        f"pod's (those are: {known})")
        chosen = named[0]
    return ExternalTarget(chosen.address, node=chosen.node)


def _spec(expectation: Expectation, host: str, port: int, server: bool) -> ProbeSpec | str:
    """The probe for one expectation (its id is given per batch), or why none fits."""
    flow = expectation.flow
    source, destination = expectation.source, expectation.destination
    if flow.dns is not None:
        return DnsProbe("0", host, flow.dns.query, expectation.qtype, flow.protocol.lower(), port)
    if flow.http is not None:
        headers = dict(flow.http.headers)
        if flow.http.host is not None:
            headers["Host"] = flow.http.host
        return HttpProbe("0", host, port, flow.http.method, flow.http.path, headers)
    if flow.protocol == "TCP":
        # A probe server answers every TCP port over HTTP with its identity: check who accepted the connection.
        return HttpProbe("0", host, port, "GET", IDENTITY_PATH) if server else TcpProbe("0", host, port)
    if server:
        return UdpProbe("0", host, port, payload=f"flowcheck {source} -> {destination}")
    if port == DNS_PORT:
        return DnsProbe("0", host, DEFAULT_DNS_QUERY, "A", "udp", port)
    return (f"{destination} is not a flowcheck probe server, so nothing would echo a UDP probe on port "
            f"{port}; state a DNS query (dns=...) if it is a resolver")


@dataclass(slots=True)
class _Group:
    """One probe sent for every item that needs it (same route, same packets)."""

    index: int
    route: ProbeRoute
    spec: ProbeSpec
    items: list[LiveItem]
    result: ProbeResult | None = None
    window: tuple[datetime, datetime] | None = None


def probe(backend: LiveBackend, items: Sequence[LiveItem], *, timeout_s: float, ledger: RunLedger | None = None,
          where: str = "", controls: ControlFinder | None = None, max_rounds: int = MAX_ROUNDS,
          retry_wait_s: float = RETRY_WAIT_S, sleep: Callable[[float], None] = time.sleep,
          realization_timeout_s: float = REALIZATION_TIMEOUT_S) -> dict[int, Observation]:
    """Probe every item (see the module docstring for the steps); ``where`` names the test in conflict notes."""
    ledger = ledger if ledger is not None else RunLedger()
    if not items:
        return {}
    lagging = await_realization(backend, ledger, timeout_s=realization_timeout_s, sleep=sleep)
    if lagging:
        detail = ("not probed: the applied policies are not enforced yet after "
                  f"{realization_timeout_s:g} s, so no observation could be judged: " + "; ".join(lagging[:5]))
        return {item.key: Observation(Verdict.ERROR, detail, 0, route=item.route) for item in items}
    groups = _groups(items)
    classified: dict[int, Classification] = {}
    attempts: dict[int, int] = defaultdict(int)
    pending = list(groups)

    def one_round() -> list[_Group]:
        nonlocal pending
        _run_round(backend, pending, timeout_s)
        for group in pending:
            assert group.result is not None
            for item in group.items:
                classified[item.key] = item.classify(group.result)
                attempts[item.key] += group.result.phase != "exec"  # an agent that never ran probed nothing
        pending = [g for g in pending if not all(i.settled(classified[i.key].verdict) for i in g.items)]
        return pending

    # retry_error_callback: when the rounds run out, stop quietly; the observations say the rest.
    Retrying(stop=stop_after_attempt(max_rounds), wait=wait_fixed(retry_wait_s), sleep=sleep,
             retry=retry_if_result(bool), retry_error_callback=lambda _state: None)(one_round)
    observations = {item.key: Observation(classified[item.key].verdict, classified[item.key].detail,
                                          attempts[item.key], route=item.route) for item in items}
    checks = _apply_evidence(backend, groups, observations)
    _note_reachable(groups, observations, ledger)
    _confirm_drops(backend, items, observations, checks, ledger, controls, timeout_s)
    for item in items:
        observation = observations[item.key]
        if observation.verdict in (Verdict.ALLOWED, Verdict.DROPPED, Verdict.L7_DENIED):
            flow = item.expectation.flow
            key = (item.route.source, item.route.destination, flow.protocol, flow.port, item.expectation.request or "")
            conflict = ledger.observe(key, observation.verdict, where or "another test")
            if conflict:
                observations[item.key] = replace(observation, conflict=conflict)
    return observations


def await_realization(backend: LiveBackend, ledger: RunLedger, *, timeout_s: float = REALIZATION_TIMEOUT_S,
                      sleep: Callable[[float], None] = time.sleep,
                      clock: Callable[[], float] = time.monotonic) -> list[str]:
    """Wait (once per process) until the back end enforces the applied policies; return what still lags
    at the deadline (empty when realized)."""
    if ledger.realized:
        return []
    deadline = clock() + timeout_s
    while True:
        lagging = list(backend.unrealized())
        if not lagging:
            ledger.realized = True
            return []
        if clock() >= deadline:
            return lagging
        sleep(REALIZATION_POLL_S)


def _groups(items: Sequence[LiveItem]) -> list[_Group]:
    by_signature: dict[tuple[str, str, str], _Group] = {}
    for item in items:
        plan = item.spec.to_plan()
        plan.pop("id")
        signature = (item.route.source, item.route.destination, json.dumps(plan, sort_keys=True))
        group = by_signature.get(signature)
        if group is None:
            index = len(by_signature)
            group = by_signature[signature] = _Group(index, item.route, replace(item.spec, id=str(index)), [])
        group.items.append(item)
    return list(by_signature.values())


def _run_round(backend: LiveBackend, groups: Sequence[_Group], timeout_s: float) -> None:
    """One agent run per source pod, sources in parallel; sets each group's result and time window."""
    by_source: dict[str, list[_Group]] = defaultdict(list)
    for group in groups:
        by_source[group.route.source].append(group)
    pool = _pool()
    start = datetime.now(UTC)
    futures = {source: pool.submit(_run_source, backend, source, batch, timeout_s)
               for source, batch in by_source.items()}
    results = {source: future.result() for source, future in futures.items()}
    end = datetime.now(UTC)
    for source, batch in by_source.items():
        for group in batch:
            group.result = results[source][group.spec.id]
            group.window = (start, end)


_POOL: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    """One pool for the whole process: its threads keep their per-thread Kubernetes clients (built on
    first use: kubeconfig, auth plugin, TLS), so later batches and retry rounds do not rebuild them."""
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=MAX_PARALLEL_SOURCES, thread_name_prefix="flowcheck-probe")
    return _POOL


def _run_source(backend: LiveBackend, source: str, groups: Sequence[_Group],
                timeout_s: float) -> dict[str, ProbeResult]:
    """The results of one agent run. Any failure to run it -- a flowcheck error or anything else the exec
    raised -- becomes an error result for this source's probes only, so the other sources' observations
    of the batch are kept."""
    plan = build_plan([g.spec for g in groups], timeout_s=timeout_s)
    try:
        completed = backend.executor.run_agent(source, plan, timeout_s=agent_budget_s(plan))
    except Exception as exc:
        detail = f"could not run the probe agent in {source}: {type(exc).__name__}: {exc}"
        return {g.spec.id: ProbeResult(g.spec.id, g.spec.kind, Outcome.ERROR, detail=detail, phase="exec")
                for g in groups}
    return parse_results(plan, completed)


def _apply_evidence(backend: LiveBackend, groups: Sequence[_Group],
                    observations: dict[int, Observation]) -> dict[int, EvidenceCheck]:
    """Fetch the Hubble flows of every probe's 5-tuple, judge each observation against them, and turn a
    contradicted one into an error."""
    made = {g.index: _query(backend, g) for g in groups if g.result is not None and g.window is not None}
    queries = {index: query for index, query in made.items() if query is not None}
    if not queries:
        return {}
    since = min(g.window[0] for g in groups if g.window is not None)
    until = max(g.window[1] for g in groups if g.window is not None)
    problem = ""
    found: Mapping[str, Sequence[FlowRecord]] | None
    try:
        found = backend.evidence(list(queries.values()), since, until)
    except Exception as exc:  # evidence is a check on the observations: losing it must not lose them
        found, problem = {}, f"Hubble evidence unavailable: {type(exc).__name__}: {exc}"
    if found is None:
        return {}
    checks: dict[int, EvidenceCheck] = {}
    for group in groups:
        query = queries.get(group.index)
        if query is None or group.window is None:
            continue
        flows = tuple(found.get(query.probe_id, ()))
        lines = tuple(f.summary() for f in flows) or ((f"({problem})",) if problem else ())
        for item in group.items:
            observation = observations[item.key]
            check = (EvidenceCheck(EvidenceState.NONE, problem) if problem else
                     judge(observation.verdict, group.spec.kind.value, flows, query.facts(*group.window)))
            checks[item.key] = check
            updated = replace(observation, evidence=lines, evidence_state=check.state.value)
            if check.state is EvidenceState.CONTRADICTED:
                updated = replace(updated, verdict=Verdict.ERROR,
                                  detail=f"inconsistent: the probe saw {observation.verdict.value} "
                                         f"({observation.detail}), but {check.detail}")
            observations[item.key] = updated
    return checks


def _query(backend: LiveBackend, group: _Group) -> EvidenceQuery | None:
    """The Hubble query for one probe. A destination outside the topology is picked out by the probe's source
    address and port, so without a source port there is no query; one known by name (an FQDN, the API
    server's Service) matches any destination address, a node its own address."""
    assert group.result is not None
    spec = group.spec
    destination_ip = spec.server if isinstance(spec, DnsProbe) else spec.host
    if not _on_pods(group.items[0]):
        if group.result.sport is None:
            return None
        if not _is_node(group.items[0].expectation.flow.destination):
            destination_ip = ""  # a name: whatever address it resolved to
    port = spec.port
    protocol = _transport(spec)
    source_ip = group.result.saddr or backend.executor.address_of(group.route.source)
    return EvidenceQuery(str(group.index), group.route.source, group.route.destination, source_ip, destination_ip, port,
                         protocol, group.result.sport)


def _on_pods(item: LiveItem) -> bool:
    """The probe goes to a probe pod of the topology (not to a name outside it)."""
    return isinstance(item.expectation.flow.destination, WorkloadEndpoint)


def _transport(spec: ProbeSpec) -> str:
    """The L4 protocol a probe's packets carry (what Hubble records them under)."""
    if isinstance(spec, DnsProbe):
        return spec.transport.upper()
    if isinstance(spec, UdpProbe):
        return "UDP"
    return "TCP"


def _note_reachable(groups: Iterable[_Group], observations: Mapping[int, Observation], ledger: RunLedger) -> None:
    """Destinations whose own server (or application) answered a probe of this batch."""
    for group in groups:
        result = group.result
        if result is None or result.outcome is not Outcome.OK or result.status == 403:
            continue  # a proxy's 403 shows the proxy up, not the pod behind it
        item = group.items[0]
        if observations[item.key].verdict is Verdict.ALLOWED:
            ledger.note_reachable(group.route.destination, f"{group.route.describe()} {item.expectation.describe()}")


def _confirm_drops(backend: LiveBackend, items: Sequence[LiveItem], observations: dict[int, Observation],
                   checks: Mapping[int, EvidenceCheck], ledger: RunLedger, controls: ControlFinder | None,
                   timeout_s: float) -> None:
    """Keep a drop only where Hubble showed the policy drop or the destination pod answered in this run."""
    unconfirmed = [item for item in items if observations[item.key].verdict is Verdict.DROPPED
                   and not (checks.get(item.key) and checks[item.key].policy_drop)]
    unknown = {item.route.destination: item for item in unconfirmed
               if _on_pods(item) and ledger.reachable(item.route.destination) is None}
    if unknown and controls is not None:
        _control_probes(backend, unknown, ledger, controls, timeout_s)
    for item in unconfirmed:
        observation = observations[item.key]
        how = ledger.reachable(item.route.destination)
        if how is not None:
            observations[item.key] = replace(observation, detail=f"{observation.detail} (the destination pod answered "
                                                                  f"in this run: {how})")
        elif not _on_pods(item):
            observations[item.key] = replace(observation, verdict=Verdict.ERROR, detail=(
                f"{observation.detail}, but this is not taken as a drop: {item.route.destination} is outside the "
                "topology, so no control path can show it up and reachable, and no Hubble policy drop confirmed the "
                "drop -- an unreachable destination looks exactly like a drop"))
        else:
            observations[item.key] = replace(observation, verdict=Verdict.ERROR, detail=(
                f"{observation.detail}, but this is not taken as a drop: {item.route.destination} was not shown to be "
                "up and reachable (no probe of this run reached it, no allowed control path did, and no Hubble policy "
                "drop confirmed the drop) -- a pod, node or route that is down looks exactly like a drop"))


def _control_probes(backend: LiveBackend, unknown: Mapping[str, LiveItem], ledger: RunLedger,
                    controls: ControlFinder, timeout_s: float) -> None:
    """Probe up to ``MAX_CONTROL_PATHS`` paths the model predicts allowed into each unknown destination pod,
    all in one round; a destination whose server answers one of them is reachable."""
    keys = iter(range(1_000_000))
    control_items: list[LiveItem] = []
    for target, item in unknown.items():
        for flow in list(controls(item.expectation.destination))[:MAX_CONTROL_PATHS]:
            expectation = Expectation(flow, Verdict.ALLOWED)
            made = live_items_for(backend, expectation, lambda: next(keys), Verdict.ALLOWED)
            if not isinstance(made, str):
                control_items.extend(i for i in made if i.route.destination == target)
    if not control_items:
        return
    groups = _groups(control_items)
    _run_round(backend, groups, timeout_s)
    observations = {item.key: Observation(item.classify(g.result).verdict, "", 1) for g in groups
                    for item in g.items if g.result is not None}
    _note_reachable(groups, observations, ledger)
