"""Probe expectations on the live back end: batched per source, retried only while they disagree.

All probes of one source workload go into one plan and one agent run (one exec), and the sources
run concurrently, so a batch costs about one probe timeout however many paths it holds, and a
drop costs one timeout, not one per probe. After a batch, every probe whose observation agrees
with its reference verdict is final and never probed again; only the disagreeing ones are re-run,
for a bounded number of rounds (policy realization is waited for before any probing, so a retry
only absorbs short propagation lags). An expected drop that is observed as a drop agrees at once:
it costs exactly one timeout, never a retry budget (the lesson of cilium/cilium#47415).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from tenacity import Retrying, retry_if_result, stop_after_attempt, wait_fixed

from flowcheck.errors import FlowcheckError
from flowcheck.harness.backends import EvidenceQuery, LiveBackend
from flowcheck.harness.expectations import DEFAULT_DNS_QUERY, Expectation
from flowcheck.model.flows import Endpoint, EntityEndpoint, FqdnEndpoint, WorkloadEndpoint
from flowcheck.model.identity import Entity
from flowcheck.probe.classify import Classification, classify
from flowcheck.probe.plan import (
    DnsProbe,
    HttpProbe,
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
EVIDENCE_VERDICTS = frozenset({Verdict.DROPPED, Verdict.L7_DENIED})


@dataclass(frozen=True, slots=True)
class LiveItem:
    """One expectation to probe: from where, which probe, and what it is compared with."""

    key: int
    expectation: Expectation
    spec: ProbeSpec
    reference: Verdict | None  # the expected verdict, or the model's when nothing was expected
    expected_server: str | None
    foreign_destination: bool

    @property
    def source(self) -> str:
        return self.expectation.source

    def settled(self, observed: Verdict) -> bool:
        """No reason to probe again: the observation agrees with the reference, or there is no
        reference to disagree with (the model could not decide and nobody stated an intent) and
        the probe itself worked."""
        if self.reference is None:
            return observed not in (Verdict.ERROR, Verdict.REFUSED)
        return observed == self.reference


@dataclass(frozen=True, slots=True)
class Observation:
    """What the cluster did to one path, after ``attempts`` probes, with the evidence behind it."""

    verdict: Verdict
    detail: str
    attempts: int
    evidence: tuple[str, ...] = ()


def live_item_for(backend: LiveBackend, expectation: Expectation, key: int,
               reference: Verdict | None) -> LiveItem | str:
    """The probe for one expectation, or the reason it cannot be probed live."""
    flow = expectation.flow
    destination = expectation.destination
    if not isinstance(flow.source, WorkloadEndpoint):
        return (f"{expectation.source} is not a workload: the probe agent runs only in flowcheck's probe pods, so "
                "nothing can send from there")
    why_not = backend.cannot_probe_from(expectation.source)
    if why_not:
        return why_not
    if isinstance(flow.destination, WorkloadEndpoint):
        server = backend.is_probe_server(destination)
        host = backend.executor.address_of(destination)
    else:
        target = external_target(flow.destination, flow.protocol, flow.port)
        if target.host is None:
            return target.why
        server, host = False, target.host
    probe_id = str(key)
    port = flow.port
    if flow.protocol in ("ICMP", "SCTP") or port is None:
        return f"the probe agent cannot send {flow.protocol} (only TCP, HTTP, UDP and DNS probes)"
    try:
        spec = _spec(expectation, probe_id, host, port, server)
    except ValueError as exc:  # expectations are checked when made; this guards the ones built by hand
        return f"no probe can express this path: {exc}"
    if isinstance(spec, str):
        return spec
    return LiveItem(key, expectation, spec, reference, destination if server else None, not server)


@dataclass(frozen=True, slots=True)
class ExternalTarget:
    """Where the agent sends a probe for a destination outside the topology (``host``), or why it cannot."""

    host: str | None
    why: str = ""


KUBE_APISERVER_SERVICE = "kubernetes.default.svc"
"""The API server's Service in every cluster; the pod's resolver search path completes the name."""
KUBE_APISERVER_SERVICE_PORT = 443


def external_target(destination: Endpoint, protocol: str, port: int | None) -> ExternalTarget:
    """How a destination outside the topology is probed from a pod, or why it is not.

    An FQDN is probed by name: the agent resolves it through the pod's resolver (the cluster's DNS,
    whose answers Cilium's DNS proxy reads to learn what a ``toFQDNs`` rule selects), then connects.
    The API server is probed through its ``kubernetes.default`` Service on TCP/443 (Cilium judges the
    connection after its socket load-balancer picked the API server's own address and port). The
    rest -- world addresses and blocks, the host, other nodes -- is not probed: their addresses are
    not the harness's to know, and a run must not depend on the internet.
    """
    if isinstance(destination, FqdnEndpoint):
        return ExternalTarget(destination.fqdn)
    if isinstance(destination, EntityEndpoint) and destination.entity is Entity.KUBE_APISERVER:
        if protocol == "TCP" and port == KUBE_APISERVER_SERVICE_PORT:
            return ExternalTarget(KUBE_APISERVER_SERVICE)
        return ExternalTarget(None, f"kube-apiserver is probed only through its {KUBE_APISERVER_SERVICE} Service on "
                                    f"TCP/{KUBE_APISERVER_SERVICE_PORT}, not {protocol}/{port}")
    if isinstance(destination, EntityEndpoint) and destination.entity in (Entity.HOST, Entity.REMOTE_NODE):
        return ExternalTarget(None, f"{destination.describe()}: the live back end gives pod addresses only, not the "
                                    "nodes'")
    return ExternalTarget(None, f"{destination.describe()} is outside the cluster: a run does not depend on "
                                "reaching the internet, so only the model checks it")


def _spec(expectation: Expectation, probe_id: str, host: str, port: int, server: bool) -> ProbeSpec | str:
    """The probe spec for one expectation, or why none fits."""
    flow = expectation.flow
    source, destination = expectation.source, expectation.destination
    spec: ProbeSpec
    if flow.dns is not None:
        spec = DnsProbe(probe_id, host, flow.dns.query, expectation.qtype, flow.protocol.lower(), port)
    elif flow.http is not None:
        headers = dict(flow.http.headers)
        if flow.http.host is not None:
            headers["Host"] = flow.http.host
        spec = HttpProbe(probe_id, host, port, flow.http.method, flow.http.path, headers)
    elif flow.protocol == "TCP":
        spec = TcpProbe(probe_id, host, port)
    elif server:
        spec = UdpProbe(probe_id, host, port, payload=f"flowcheck {source} -> {destination}")
    elif port == DNS_PORT:
        spec = DnsProbe(probe_id, host, DEFAULT_DNS_QUERY, "A", "udp", port)
    else:
        return (f"{destination} is not a flowcheck probe server, so nothing would echo a UDP probe on port "
                f"{port}; state a DNS query (dns=...) if it is a resolver")
    return spec


def probe(backend: LiveBackend, items: Sequence[LiveItem], *, timeout_s: float, max_rounds: int = MAX_ROUNDS,
          retry_wait_s: float = RETRY_WAIT_S, sleep: Callable[[float], None] = time.sleep) -> dict[int, Observation]:
    """Probe every item; re-probe only disagreeing ones, at most ``max_rounds`` rounds in all."""
    observations: dict[int, Observation] = {}
    pending = list(items)
    since = datetime.now(UTC)

    def one_round() -> list[LiveItem]:
        nonlocal pending
        for item, result in zip(pending, _run_round(backend, pending, timeout_s), strict=True):
            before = observations.get(item.key)
            observations[item.key] = Observation(result.verdict, result.detail, (before.attempts if before else 0) + 1)
        pending = [item for item in pending if not item.settled(observations[item.key].verdict)]
        return pending

    if pending:
        # retry_error_callback: when the rounds run out, stop quietly; the observations say the rest.
        Retrying(stop=stop_after_attempt(max_rounds), wait=wait_fixed(retry_wait_s), sleep=sleep,
                 retry=retry_if_result(bool), retry_error_callback=lambda _state: None)(one_round)
    wanted = [item for item in items if (observations[item.key].verdict in EVIDENCE_VERDICTS
              or not item.settled(observations[item.key].verdict))
              and isinstance(item.expectation.flow.destination, WorkloadEndpoint)]  # Hubble is asked by pod address
    evidence = _evidence(backend, wanted, since)
    return {key: replace(obs, evidence=evidence.get(str(key), ())) for key, obs in observations.items()}


def _run_round(backend: LiveBackend, items: Sequence[LiveItem], timeout_s: float) -> list[Classification]:
    """One agent run per source, sources in parallel; results in the order of ``items``."""
    by_source: dict[str, list[LiveItem]] = defaultdict(list)
    for item in items:
        by_source[item.source].append(item)
    pool = _pool()
    futures = {source: pool.submit(_run_source, backend, source, batch, timeout_s)
               for source, batch in by_source.items()}
    per_source = {source: future.result() for source, future in futures.items()}
    return [per_source[item.source][item.key] for item in items]


_POOL: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    """One pool for the whole process: its threads keep their per-thread Kubernetes clients (built on
    first use: kubeconfig, auth plugin, TLS), so later batches and retry rounds do not rebuild them."""
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=MAX_PARALLEL_SOURCES, thread_name_prefix="flowcheck-probe")
    return _POOL


def _run_source(backend: LiveBackend, source: str, items: Sequence[LiveItem],
                timeout_s: float) -> dict[int, Classification]:
    plan = build_plan([item.spec for item in items], timeout_s=timeout_s)
    try:
        completed = backend.executor.run_agent(source, plan, timeout_s=agent_budget_s(plan))
    except FlowcheckError as exc:
        return {item.key: Classification(Verdict.ERROR, f"could not run the probe agent in {source}: {exc}")
                for item in items}
    results = parse_results(plan, completed)
    return {item.key: classify(results[item.spec.id], expected_server=item.expected_server,
                               foreign_http_is_allowed=item.foreign_destination) for item in items}


def _evidence(backend: LiveBackend, items: Sequence[LiveItem], since: datetime) -> Mapping[str, tuple[str, ...]]:
    if not items:
        return {}
    queries = [EvidenceQuery(str(item.key), item.source, item.expectation.destination,
                             backend.executor.address_of(item.source), backend.executor.address_of(
                                 item.expectation.destination), item.expectation.flow.port,
                             item.expectation.flow.protocol) for item in items]
    try:
        return backend.evidence(queries, since, datetime.now(UTC))
    except Exception as exc:  # evidence is optional: a failure to fetch it must not lose the observations
        return {q.probe_id: (f"(no Hubble evidence: {type(exc).__name__}: {exc})",) for q in queries}
