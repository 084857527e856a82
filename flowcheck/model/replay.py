"""Hubble flows replayed against the policies: would this change drop traffic the cluster really carries?

``flowcheck replay`` reads flows exported with ``hubble observe -o json`` (``hubble_flow``), maps
each record's ends to what the model can decide -- a workload of the topology, an entity, an FQDN --
keeps one *path* per distinct (source, destination, protocol, port, L7 request), and decides each
path with the model, under the change's policies and, with a base, under the policies before it.

What a record is taken for:

* A record in the request direction is an observed path: ``is_reply: false``; a drop (Hubble cannot
  tell whether a dropped packet was a reply, and policy drops hit new connections); or, with
  ``is_reply`` absent, a TCP SYN without ACK. The model decides connection initiations, so a reply
  (``is_reply: true``, an L7 ``RESPONSE``) passes with its connection and is counted, not replayed;
  a record whose direction nothing tells is counted too.
* L3/L4 records give a port-level path (``TCP/8080``); an L7 ``REQUEST`` record gives a request-level
  path (``GET /orders``, a DNS query), which L7 rules judge.
* An end is mapped, in order: a ``reserved:`` identity (``world``, ``host``, ``remote-node``,
  ``kube-apiserver``; a world destination the DNS proxy named is ``{fqdn: NAME, ip: IP}``); a pod,
  to the workloads of its namespace whose labels are all among the pod's identity labels (``k8s:``
  labels, without the ones Cilium adds: namespace, service account, cluster, namespace labels) --
  the one with the most labels when several match, and never a guess between equals; else the
  workload whose ``ip`` the topology gives.

A record that cannot be replayed is never dropped silently: ``Observed.skipped`` counts every one by
reason, with examples, so a report says how much of the export it could not decide and why.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

from flowcheck.model.decision import Decision
from flowcheck.model.engine import Model
from flowcheck.model.flows import (
    DnsQuery,
    Endpoint,
    EntityEndpoint,
    Flow,
    FqdnEndpoint,
    HttpRequest,
    IcmpMessage,
    WorkloadEndpoint,
)
from flowcheck.model.hubble_flow import FlowEndpoint, FlowRecord
from flowcheck.model.identity import Entity
from flowcheck.model.topology import Topology, Workload
from flowcheck.verdict import Verdict

PASSING_VERDICTS = frozenset({"FORWARDED", "REDIRECTED", "TRACED", "TRANSLATED"})
"""Hubble verdicts of a record that went on (REDIRECTED: into the L7 proxy)."""

_CILIUM_LABEL_PREFIXES = ("io.kubernetes.pod.namespace", "io.cilium.k8s.policy.", "io.cilium.k8s.namespace.labels.")
# A reserved label -> the entity a flow names it by, in order of precedence (the API server's identity can carry
# reserved:host too; Cilium's dual-stack world identities are reserved:world-ipv4/-ipv6).
_ENTITIES = (("kube-apiserver", Entity.KUBE_APISERVER), ("world", Entity.WORLD), ("world-ipv4", Entity.WORLD),
             ("world-ipv6", Entity.WORLD), ("remote-node", Entity.REMOTE_NODE), ("host", Entity.HOST),
             ("ingress", Entity.INGRESS), ("health", Entity.HEALTH), ("init", Entity.INIT),
             ("unmanaged", Entity.UNMANAGED))
_EXAMPLES = 3


class Skip(enum.StrEnum):
    """Why a record was not replayed; the values are the JSON names."""

    REPLY = "reply"
    L7_RESPONSE = "l7-response"
    DIRECTION_UNKNOWN = "direction-unknown"
    NO_TRANSPORT = "no-transport"
    ICMP_NOT_ECHO = "icmp-not-echo-request"
    SOURCE_UNMAPPED = "source-unmapped"
    DESTINATION_UNMAPPED = "destination-unmapped"

    @property
    def meaning(self) -> str:
        return _SKIP_MEANINGS[self]


_SKIP_MEANINGS = {
    Skip.REPLY: "replies (is_reply): the model decides connection initiations; a reply passes with its connection",
    Skip.L7_RESPONSE: "L7 responses: the request they answer is replayed",
    Skip.DIRECTION_UNKNOWN: "direction unknown: no is_reply, not a drop, not a TCP SYN -- which end opened the "
                            "connection is not known",
    Skip.NO_TRANSPORT: "no TCP, UDP, SCTP or ICMP header: nothing a policy port can match",
    Skip.ICMP_NOT_ECHO: "ICMP messages other than an echo request (replies and errors pass with their flow)",
    Skip.SOURCE_UNMAPPED: "the source is not a workload of the topology, nor an entity flowcheck can name",
    Skip.DESTINATION_UNMAPPED: "the destination is not a workload of the topology, nor an entity flowcheck can name",
}


@dataclass(frozen=True, slots=True)
class ObservedPath:
    """One distinct path the export shows, with what the cluster did to its records."""

    flow: Flow
    records: int
    verdicts: Mapping[str, int]
    """Hubble verdict -> records (``FORWARDED``, ``DROPPED``, ``REDIRECTED``, ...)."""
    first: datetime
    last: datetime
    nodes: tuple[str, ...]
    example: str
    """One record's summary line (``FlowRecord.summary``)."""

    @property
    def carried(self) -> bool:
        """The cluster let some record of this path through."""
        return any(v in PASSING_VERDICTS for v in self.verdicts)


@dataclass(frozen=True, slots=True)
class Skipped:
    """Records of one ``Skip`` reason: how many, and up to three distinct examples (what could not be mapped)."""

    reason: Skip
    records: int
    examples: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Observed:
    """An export made into paths: ``records`` flow records read, the distinct ``paths`` (in the order first
    seen), and every record not replayed (``skipped``, by reason)."""

    records: int
    paths: tuple[ObservedPath, ...]
    skipped: tuple[Skipped, ...]

    @property
    def skipped_records(self) -> int:
        return sum(s.records for s in self.skipped)


@dataclass(slots=True)
class _Bucket:
    flow: Flow
    records: int = 0
    verdicts: dict[str, int] = field(default_factory=dict)
    first: datetime | None = None
    last: datetime | None = None
    nodes: dict[str, None] = field(default_factory=dict)
    example: str = ""


class _Unmapped(Exception):
    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


def pod_labels(labels: Iterable[str]) -> dict[str, str]:
    """A pod's own labels from its identity labels: the ``k8s:`` ones, less those Cilium adds."""
    out = {}
    for label in labels:
        source, _, rest = label.partition(":")
        if source != "k8s" or rest.startswith(_CILIUM_LABEL_PREFIXES):
            continue
        key, _, value = rest.partition("=")
        out[key] = value
    return out


def _namespace_of(endpoint: FlowEndpoint) -> str:
    if endpoint.namespace:
        return endpoint.namespace
    for label in endpoint.labels:
        if label.startswith("k8s:io.kubernetes.pod.namespace="):
            return label.split("=", 1)[1]
    return ""


class EndpointMapper:
    """Maps a record's end to a model endpoint (rules in the module docstring); raises ``_Unmapped``."""

    def __init__(self, topology: Topology) -> None:
        self._by_namespace: dict[str, list[Workload]] = {}
        for workload in topology.workloads:
            self._by_namespace.setdefault(workload.namespace, []).append(workload)
        self._by_ip = {w.ip: w for w in topology.workloads if w.ip}

    def map(self, end: FlowEndpoint, ip: str, names: Sequence[str], *, destination: bool) -> Endpoint:
        reserved = [label.split(":", 1)[1] for label in end.labels if label.startswith("reserved:")]
        if reserved:
            return self._entity(reserved, ip, names, destination=destination, end=end)
        namespace = _namespace_of(end)
        if namespace or end.pod_name:
            return self._pod(end, namespace, ip)
        by_ip = self._by_ip.get(ip)
        if by_ip is not None:
            return WorkloadEndpoint(by_ip.ref)
        raise _Unmapped(f"{ip or '(no address)'}: no identity labels, and no workload of the topology has this IP")

    @staticmethod
    def _entity(reserved: list[str], ip: str, names: Sequence[str], *, destination: bool,
                end: FlowEndpoint) -> Endpoint:
        for label, entity in _ENTITIES:
            if label not in reserved:
                continue
            if entity is Entity.WORLD and destination and names:
                return FqdnEndpoint(names[0].rstrip("."), ip or None)
            return EntityEndpoint(entity, ip or None)
        raise _Unmapped(f"{end.display(ip)}: reserved:{', reserved:'.join(reserved)} is no endpoint a flow can "
                        "name")

    def _pod(self, end: FlowEndpoint, namespace: str, ip: str) -> Endpoint:
        labels = pod_labels(end.labels)
        candidates = [w for w in self._by_namespace.get(namespace, ())
                      if all(labels.get(k) == v for k, v in w.labels.items())]
        if candidates:
            most = max(len(w.labels) for w in candidates)
            best = [w for w in candidates if len(w.labels) == most]
            if len(best) == 1:
                return WorkloadEndpoint(best[0].ref)
            refs = ", ".join(w.ref for w in best)
            raise _Unmapped(f"{end.display(ip)}: its labels match {refs} equally; the topology does not say which")
        by_ip = self._by_ip.get(ip)
        if by_ip is not None and by_ip.namespace == namespace:
            return WorkloadEndpoint(by_ip.ref)
        shown = ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "no labels"
        if namespace not in self._by_namespace:
            raise _Unmapped(f"{end.display(ip)}: the topology has no namespace {namespace or '(none)'}")
        raise _Unmapped(f"{end.display(ip)} ({shown}): no workload of {namespace} has all its labels among these")


def _initiates(record: FlowRecord) -> bool | None:
    """True for a record in the request direction, False for a reply, None when nothing tells."""
    if record.is_reply is not None:
        return not record.is_reply
    if record.verdict == "DROPPED":
        return True
    if record.protocol == "TCP" and "SYN" in record.tcp_flags and "ACK" not in record.tcp_flags:
        return True
    return None


def _request(record: FlowRecord) -> tuple[HttpRequest | None, DnsQuery | None]:
    if record.http is not None:
        url = urlsplit(record.http.url)
        path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        return HttpRequest(record.http.method or "GET", path, record.http.headers, url.netloc or None), None
    if record.dns is not None and record.dns.query:
        return None, DnsQuery(record.dns.query.rstrip(".") or record.dns.query)
    return None, None


def observe(records: Iterable[FlowRecord], topology: Topology) -> Observed:
    """The export as distinct paths, and every record not replayed, by reason."""
    mapper = EndpointMapper(topology)
    buckets: dict[Flow, _Bucket] = {}
    skipped: dict[Skip, tuple[int, dict[str, None]]] = {}
    count = 0

    def skip(reason: Skip, example: str) -> None:
        number, examples = skipped.get(reason, (0, {}))
        if len(examples) < _EXAMPLES:
            examples.setdefault(example, None)
        skipped[reason] = (number + 1, examples)

    for record in records:
        count += 1
        flow_or_skip = _flow_of(record, mapper)
        if isinstance(flow_or_skip, tuple):
            skip(*flow_or_skip)
            continue
        bucket = buckets.setdefault(flow_or_skip, _Bucket(flow_or_skip))
        bucket.records += 1
        verdict = record.verdict or "VERDICT_UNKNOWN"
        bucket.verdicts[verdict] = bucket.verdicts.get(verdict, 0) + 1
        bucket.first = record.time if bucket.first is None else min(bucket.first, record.time)
        bucket.last = record.time if bucket.last is None else max(bucket.last, record.time)
        if record.node_name:
            bucket.nodes.setdefault(record.node_name, None)
        bucket.example = bucket.example or record.summary()
    paths = tuple(ObservedPath(b.flow, b.records, dict(b.verdicts), b.first or datetime.min, b.last or datetime.min,
                               tuple(b.nodes), b.example) for b in buckets.values())
    order = list(Skip)
    return Observed(count, paths, tuple(Skipped(reason, n, tuple(examples))
                                        for reason, (n, examples) in sorted(skipped.items(),
                                                                            key=lambda i: order.index(i[0]))))


def _flow_of(record: FlowRecord, mapper: EndpointMapper) -> Flow | tuple[Skip, str]:
    if record.l7_type == "RESPONSE":
        return Skip.L7_RESPONSE, record.summary()
    direction = _initiates(record)
    if direction is False:
        return Skip.REPLY, record.summary()
    if direction is None and record.flow_type != "L7":
        return Skip.DIRECTION_UNKNOWN, record.summary()
    if record.protocol in ("TCP", "UDP", "SCTP"):
        protocol, port, icmp = record.protocol, record.dst_port, None
    elif record.protocol in ("ICMPv4", "ICMPv6"):
        if (record.protocol, record.icmp_type) not in (("ICMPv4", 8), ("ICMPv6", 128)):
            return Skip.ICMP_NOT_ECHO, record.summary()
        protocol, port, icmp = "ICMP", None, IcmpMessage(record.icmp_type or 8)
    else:
        return Skip.NO_TRANSPORT, record.summary()
    try:
        source = mapper.map(record.source, record.src_ip, record.source_names, destination=False)
    except _Unmapped as exc:
        return Skip.SOURCE_UNMAPPED, exc.what
    try:
        destination = mapper.map(record.destination, record.dst_ip, record.destination_names, destination=True)
    except _Unmapped as exc:
        return Skip.DESTINATION_UNMAPPED, exc.what
    http, dns = _request(record) if record.flow_type == "L7" else (None, None)
    if http is not None and protocol != "TCP":
        http = None
    return Flow(source, destination, protocol, port, http, dns, icmp)


@dataclass(frozen=True, slots=True)
class ReplayedPath:
    """An observed path decided: by the policies before the change (``before``, with a base) and after."""

    path: ObservedPath
    after: Decision
    before: Decision | None = None

    @property
    def dropped_after(self) -> bool:
        return self.after.verdict in (Verdict.DROPPED, Verdict.L7_DENIED)

    @property
    def newly_dropped(self) -> bool:
        """Allowed before the change, dropped (or denied by the proxy) after it."""
        return self.before is not None and self.before.verdict is Verdict.ALLOWED and self.dropped_after

    @property
    def would_drop(self) -> bool:
        """The headline: with a base, what the change newly drops; without one, a path the cluster carried that
        these policies would drop."""
        return self.newly_dropped if self.before is not None else self.path.carried and self.dropped_after


@dataclass(frozen=True, slots=True)
class Replay:
    observed: Observed
    paths: tuple[ReplayedPath, ...]
    with_base: bool

    @property
    def would_drop(self) -> tuple[ReplayedPath, ...]:
        return tuple(p for p in self.paths if p.would_drop)


def replay(observed: Observed, after: Model, before: Model | None = None) -> Replay:
    """Decide every observed path with ``after`` (and ``before``, when given)."""
    decided = tuple(ReplayedPath(p, after.decide(p.flow), before.decide(p.flow) if before is not None else None)
                    for p in observed.paths)
    return Replay(observed, decided, before is not None)
