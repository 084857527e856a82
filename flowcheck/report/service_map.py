"""The service map's data: which endpoints talk to which, on which port, with what verdict, and why.

A truth table answers "is this cell right?"; a map answers "what can reach my database?" at a
glance. This module turns the records every report is made of (``CheckedFlow``) into a graph, and
knows nothing of HTML (``service_map_html`` draws it):

- **Nodes** are the flows' endpoints (``endpoints.parse_endpoint``): workloads grouped by
  namespace, and world, entities, FQDNs and addresses as nodes of their own kind, grouped outside
  the cluster.
- **Edges** are one per (source, destination, protocol, port). Records with an L7 request (several
  per path: ``GET /orders`` allowed, ``POST /orders`` denied) are folded into their path's edge and
  each keeps its own verdicts, reasons and evidence (``EdgeRequest``). A workload reaching itself is
  not drawn: no policy applies to a pod's own IP.
- An edge's **category** comes from each record's outcome -- observed where probed, else the
  model's verdict, as the truth table's cells -- and adds ``l7-filtered``: the path is open but
  only some requests pass (some allowed, others denied by the proxy), or a record says what the
  L7 proxy lets through (``CheckedFlow.l7_passes``). Requests on one path that disagree at L3/L4
  (allowed and dropped) are ``mixed``; any ``error``, ``refused`` or ``unknown`` wins, because such
  an edge must never read as a pass.
- A **mismatch** (intent vs model, or live vs expected) is carried with the same sentences the
  table's mismatch list uses (``marks.mismatch_kinds``).
- A **diff** (``diff_service_maps``: an older and a newer map over the same paths) marks edges
  ``opened`` (passes now, did not), ``closed`` (passed, does not), ``l7-filtered`` (passed whole,
  now only through the L7 proxy), ``l7-unfiltered`` (the other way) or ``changed`` (another category
  or other L7 rules), with the older side's category, L7 label and reasons.

Everything is sorted, so the same records always give the same map (and the same picture).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from flowcheck.report.endpoints import EndpointKind, ReportEndpoint, parse_endpoint
from flowcheck.report.marks import mismatch_kinds, observed_text
from flowcheck.report.records import CheckedFlow
from flowcheck.verdict import Verdict

OUTSIDE_GROUP = "(outside the cluster)"
"""The group of every node that is not a workload (no namespace can be named so: it has spaces)."""


class EdgeCategory(enum.StrEnum):
    """How an edge is drawn: a verdict, or ``l7-filtered`` / ``mixed`` for paths whose records differ."""

    ALLOWED = "allowed"
    L7_FILTERED = "l7-filtered"
    L7_DENIED = "l7-denied"
    DROPPED = "dropped"
    UNKNOWN = "unknown"
    MIXED = "mixed"
    REFUSED = "refused"
    ERROR = "error"

    @property
    def passes(self) -> bool:
        """Traffic gets through (all of it, or what the L7 proxy lets pass)."""
        return self in (EdgeCategory.ALLOWED, EdgeCategory.L7_FILTERED)


class DiffStatus(enum.StrEnum):
    """How a change moved a path: opened or closed, moved behind the L7 proxy or out from behind it, or
    otherwise changed (another verdict that is neither, or other L7 rules)."""

    OPENED = "opened"
    CLOSED = "closed"
    L7_FILTERED = "l7-filtered"
    L7_UNFILTERED = "l7-unfiltered"
    CHANGED = "changed"


EdgeKey = tuple[str, str, str, int | None]


@dataclass(frozen=True, slots=True)
class MapNode:
    """An endpoint: ``id`` is the records' text for it; ``group`` its namespace or ``OUTSIDE_GROUP``."""

    id: str
    kind: EndpointKind
    group: str
    label: str


@dataclass(frozen=True, slots=True)
class EdgeRequest:
    """One record folded into an edge: its request (None for a plain port check) and three views."""

    request: str | None
    outcome: Verdict
    model: Verdict
    expected: Verdict | None
    observed: Verdict | None
    observed_text: str
    reasons: tuple[str, ...]
    evidence: tuple[str, ...] = ()
    mismatches: tuple[str, ...] = ()
    l7_passes: str | None = None
    test: str = ""

    @classmethod
    def from_flow(cls, flow: CheckedFlow) -> EdgeRequest:
        return cls(request=flow.request, outcome=flow.outcome, model=flow.model, expected=flow.expected,
                   observed=flow.observed, observed_text=observed_text(flow), reasons=flow.model_reasons,
                   evidence=flow.evidence, mismatches=tuple(mismatch_kinds(flow)), l7_passes=flow.l7_passes,
                   test=flow.test)


@dataclass(frozen=True, slots=True)
class EdgeChange:
    """How a diff moved an edge; ``before``/``after`` is None when the path is absent on that side."""

    status: DiffStatus
    before: EdgeCategory | None
    after: EdgeCategory | None
    before_l7: str = ""
    before_reasons: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MapEdge:
    """All checks of one path (source, destination, protocol, port), drawn as one edge."""

    source: str
    target: str
    protocol: str
    port: int | None
    category: EdgeCategory
    requests: tuple[EdgeRequest, ...]
    l7: str = ""
    """What passes the L7 proxy (from ``l7_passes``, else the allowed requests); empty when nothing to say."""
    change: EdgeChange | None = None

    @property
    def key(self) -> EdgeKey:
        return (self.source, self.target, self.protocol, self.port)

    @property
    def transport(self) -> str:
        """``8080/TCP``, or ``ICMP`` for a path without a port (what the port filter lists)."""
        return f"{self.port}/{self.protocol}" if self.port is not None else self.protocol

    @property
    def mismatch(self) -> bool:
        return any(r.mismatches for r in self.requests)

    @property
    def mismatch_texts(self) -> tuple[str, ...]:
        """Each disagreement, prefixed with its request when the path has several."""
        return tuple(f"{r.request}: {text}" if r.request else text for r in self.requests for text in r.mismatches)

    @property
    def probed(self) -> bool:
        return any(r.observed is not None for r in self.requests)

    @property
    def reasons(self) -> tuple[str, ...]:
        """The model's reasons of every request, each once, in request order."""
        return tuple(dict.fromkeys(reason for r in self.requests for reason in r.reasons))


@dataclass(frozen=True, slots=True)
class ServiceMap:
    nodes: tuple[MapNode, ...]
    edges: tuple[MapEdge, ...]

    @property
    def groups(self) -> tuple[str, ...]:
        """Namespaces in name order, then ``OUTSIDE_GROUP`` when any node is outside the cluster."""
        namespaces = sorted({n.group for n in self.nodes if n.group != OUTSIDE_GROUP})
        return (*namespaces, OUTSIDE_GROUP) if any(n.group == OUTSIDE_GROUP for n in self.nodes) else tuple(namespaces)

    @property
    def probed(self) -> bool:
        return any(e.probed for e in self.edges)

    @property
    def mismatches(self) -> tuple[MapEdge, ...]:
        return tuple(e for e in self.edges if e.mismatch)

    @property
    def changes(self) -> tuple[MapEdge, ...]:
        return tuple(e for e in self.edges if e.change is not None)


def _node(endpoint: ReportEndpoint) -> MapNode:
    group = endpoint.namespace if endpoint.kind is EndpointKind.WORKLOAD and endpoint.namespace else OUTSIDE_GROUP
    return MapNode(endpoint.text, endpoint.kind, group, endpoint.label)


def edge_category(requests: Iterable[EdgeRequest]) -> EdgeCategory:
    """The category of a path from its records' outcomes (rules in the module docstring)."""
    folded = list(requests)
    outcomes = {r.outcome for r in folded}
    for verdict in (Verdict.ERROR, Verdict.REFUSED, Verdict.UNKNOWN):
        if verdict in outcomes:
            return EdgeCategory(verdict.value)
    if outcomes == {Verdict.ALLOWED}:
        return EdgeCategory.L7_FILTERED if any(r.l7_passes for r in folded) else EdgeCategory.ALLOWED
    if outcomes == {Verdict.ALLOWED, Verdict.L7_DENIED}:
        return EdgeCategory.L7_FILTERED
    if Verdict.ALLOWED in outcomes:  # allowed and dropped on one path: the details say which is which
        return EdgeCategory.MIXED
    return EdgeCategory.L7_DENIED if Verdict.L7_DENIED in outcomes else EdgeCategory.DROPPED


def _l7_label(category: EdgeCategory, requests: Iterable[EdgeRequest]) -> str:
    folded = list(requests)
    stated = list(dict.fromkeys(r.l7_passes for r in folded if r.l7_passes))
    if stated:
        return "; ".join(stated)
    if category is EdgeCategory.L7_FILTERED:
        passing = list(dict.fromkeys(r.request for r in folded if r.request and r.outcome is Verdict.ALLOWED))
        return "passes: " + ", ".join(passing) if passing else ""
    return ""


def _request_order(request: EdgeRequest) -> tuple[str, str, str]:
    return (request.request or "", request.test, request.outcome.value)


def build_service_map(flows: Iterable[CheckedFlow]) -> ServiceMap:
    """The map of a run or a plan: one edge per path, self-flows left out."""
    nodes: dict[str, MapNode] = {}
    grouped: dict[EdgeKey, list[EdgeRequest]] = {}
    for flow in flows:
        if flow.source == flow.destination:
            continue
        for text in (flow.source, flow.destination):
            if text not in nodes:
                nodes[text] = _node(parse_endpoint(text))
        key = (flow.source, flow.destination, flow.protocol, flow.port)
        grouped.setdefault(key, []).append(EdgeRequest.from_flow(flow))
    edges = []
    for key in sorted(grouped, key=_key_order):
        requests = tuple(sorted(grouped[key], key=_request_order))
        category = edge_category(requests)
        edges.append(MapEdge(*key, category=category, requests=requests, l7=_l7_label(category, requests)))
    return ServiceMap(tuple(sorted(nodes.values(), key=lambda n: n.id)), tuple(edges))


def _key_order(key: EdgeKey) -> tuple[str, str, str, int]:
    source, target, protocol, port = key
    return (source, target, protocol, -1 if port is None else port)


def _change(before: MapEdge | None, after: MapEdge) -> EdgeChange | None:
    if before is None:
        return EdgeChange(DiffStatus.OPENED, None, after.category) if after.category.passes else None
    if before.category.passes != after.category.passes:
        status = DiffStatus.OPENED if after.category.passes else DiffStatus.CLOSED
    elif (before.category, after.category) == (EdgeCategory.ALLOWED, EdgeCategory.L7_FILTERED):
        status = DiffStatus.L7_FILTERED
    elif (before.category, after.category) == (EdgeCategory.L7_FILTERED, EdgeCategory.ALLOWED):
        status = DiffStatus.L7_UNFILTERED
    elif before.category is not after.category or before.l7 != after.l7:
        status = DiffStatus.CHANGED
    else:
        return None
    return EdgeChange(status, before.category, after.category, before.l7, before.reasons)


def diff_service_maps(before: ServiceMap, after: ServiceMap) -> ServiceMap:
    """The newer map with every edge a change moved marked (opened, closed, changed).

    A path only in the newer map counts as not passing before (opened if it passes now); a path
    only in the older one that passed is kept, drawn with its old category, and marked closed (it
    is gone, so nothing passes). Paths whose verdicts did not move carry no change.
    """
    older: Mapping[EdgeKey, MapEdge] = {e.key: e for e in before.edges}
    edges = [replace(e, change=_change(older.get(e.key), e)) for e in after.edges]
    present = {e.key for e in after.edges}
    for gone in before.edges:
        if gone.key not in present and gone.category.passes:
            closed = EdgeChange(DiffStatus.CLOSED, gone.category, None, gone.l7, gone.reasons)
            edges.append(replace(gone, change=closed))
    edges.sort(key=lambda e: _key_order(e.key))
    keep = {end for e in edges for end in (e.source, e.target)} | {n.id for n in after.nodes}
    nodes = {n.id: n for n in (*before.nodes, *after.nodes) if n.id in keep}
    return ServiceMap(tuple(sorted(nodes.values(), key=lambda n: n.id)), tuple(edges))
