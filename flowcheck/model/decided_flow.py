"""One decided flow as JSON: the shape every command writes (docs/contracts.md, "Decided flows").

``plan --format json``, ``explain --format json``, ``diff``, ``replay`` and the records of
``matrix.json`` all write a decided flow the same way, so one reader handles every output and a
decided flow's first keys are a valid entry of a flows file (``explain --flows`` reads it back)::

    {"from": "tenant/client", "to": "default/my-api", "protocol": "TCP", "port": 8080,
     "http": {"method": "GET", "path": "/"},            # only when the flow carries one (or dns, icmp)
     "verdict": "allowed", "reasons": ["..."],
     "decided_by": "ingress",                            # egress | ingress | both | neither | self | not-a-pod
     "policies": [{"kind": "CiliumNetworkPolicy", "namespace": "default", "name": "allow-get-only"}],
     "rules": [{"policy": {...}, "section": "ingress", "index": 0}],
     "l7": {"passes": "GET", "filters": [{"direction": "ingress", "http": [{"method": "GET"}], "dns": [],
                                          "rules": [...]}]}}

``decided_by``, ``policies`` and ``rules`` are ``Decision.decided_by``, ``.policies`` and
``.rules`` (``flowcheck.model.decision``): which side made the verdict and the policies and rules
behind it. ``l7`` is what Cilium's L7 proxy lets through, per side that filters, present when the
flow reaches the proxy (``allowed`` or ``l7-denied``); ``passes`` is that in a few words (``GET``,
``POST /v1/request-landing``, ``dns *``), what a truth-table cell or a map edge shows.

A document is ``document_header(kind, ...)`` plus its list: ``{"kind": "flowcheck-plan", "format":
2, ..., "flows": [...]}``. Version 1 (``plan``'s ``{"results": [...]}`` and ``explain``'s list,
``flowcheck.model.render`` and ``flowcheck.model.explain``) stays what ``--json-version 1`` writes.

The structured part is kept as plain frozen data (``DecisionFacts``), not as the model's objects,
so a report can carry it through ``matrix.json`` and read it back (pytest-xdist workers hand their
records to the controller that way).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from flowcheck.model import fields as f
from flowcheck.model.decision import DecidedBy, Decision, L7Filter, SideDecision
from flowcheck.model.flows import Flow
from flowcheck.model.policy import DnsRule, HttpRule, PolicyRef, RuleRef
from flowcheck.verdict import Verdict

JSON_FORMAT = 2
"""The version of the decided-flow shape and of the documents made of it."""

JSON_VERSIONS = (1, 2)
"""What ``--json-version`` accepts: 1, the shapes before decided flows (``plan``'s ``results``,
``explain``'s list), and 2, decided flows."""

KIND_PREFIX = "flowcheck-"

FLOW_KEYS = ("from", "to", "protocol", "port", "http", "dns", "icmp")
"""The keys a decided flow shares with a flows-file entry (docs/contracts.md, "Flow file")."""

_DECIDED_BY = frozenset(d.value for d in DecidedBy)
_SECTIONS = ("ingress", "egress", "ingressDeny", "egressDeny")


def document_header(kind: str, **fields: Any) -> dict[str, Any]:
    """``{"kind": "flowcheck-<kind>", "format": 2, **fields}``: what every version-2 document starts with."""
    return {"kind": f"{KIND_PREFIX}{kind}", "format": JSON_FORMAT, **fields}


@dataclass(frozen=True, slots=True)
class PolicyName:
    """A policy as JSON names it: ``{"kind", "namespace", "name"}`` (namespace null when cluster-wide)."""

    kind: str
    namespace: str | None
    name: str

    @classmethod
    def of(cls, ref: PolicyRef) -> PolicyName:
        return cls(ref.kind.value, ref.namespace, ref.name)

    def describe(self) -> str:
        """``CiliumNetworkPolicy default/allow-get-only``, as the reasons name it."""
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "namespace": self.namespace, "name": self.name}

    @classmethod
    def from_json(cls, raw: Any, field: str, fail: f.Fail) -> PolicyName:
        body = f.mapping(raw, field, fail)
        namespace = body.get("namespace")
        return cls(f.string(body.get("kind"), f.join(field, "kind"), fail),
                   None if namespace is None else f.string(namespace, f.join(field, "namespace"), fail),
                   f.string(body.get("name"), f.join(field, "name"), fail))


@dataclass(frozen=True, slots=True)
class RuleName:
    """A rule: its policy, section (``ingress``, ``egressDeny``, ...), index and, in a ``specs`` list, which spec."""

    policy: PolicyName
    section: str
    index: int
    spec: str = ""

    @classmethod
    def of(cls, ref: RuleRef) -> RuleName:
        return cls(PolicyName.of(ref.policy), ref.direction.value + ("Deny" if ref.deny else ""), ref.index,
                   ref.spec_label)

    def describe(self) -> str:
        """``CiliumNetworkPolicy default/x ingress rule 0``, as the reasons name it."""
        spec = f" {self.spec}" if self.spec else ""
        return f"{self.policy.describe()}{spec} {self.section} rule {self.index}"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"policy": self.policy.to_json(), "section": self.section, "index": self.index}
        if self.spec:
            out["spec"] = self.spec
        return out

    @classmethod
    def from_json(cls, raw: Any, field: str, fail: f.Fail) -> RuleName:
        body = f.mapping(raw, field, fail)
        section = f.string(body.get("section"), f.join(field, "section"), fail)
        if section not in _SECTIONS:
            raise fail(f.join(field, "section"), f"expected one of {', '.join(_SECTIONS)}, got {section!r}")
        spec = body.get("spec")
        return cls(PolicyName.from_json(body.get("policy"), f.join(field, "policy"), fail), section,
                   f.integer(body.get("index"), f.join(field, "index"), fail, 0, 1 << 31),
                   "" if spec is None else f.string(spec, f.join(field, "spec"), fail))


@dataclass(frozen=True, slots=True)
class HttpPass:
    """One HTTP rule the proxy passes requests by: RE2 patterns as written, and header conditions.

    ``headers`` are (name, value) pairs, value None when the header need only be present, ``"<secret>"``
    when it is compared with a secret.
    """

    method: str | None = None
    path: str | None = None
    host: str | None = None
    headers: tuple[tuple[str, str | None], ...] = ()

    @classmethod
    def of(cls, rule: HttpRule) -> HttpPass:
        headers = [*rule.headers, *((hm.name, "<secret>" if hm.secret else hm.value)
                                    for hm in rule.header_matches if hm.mismatch is None)]
        return cls(rule.method.pattern if rule.method else None, rule.path.pattern if rule.path else None,
                   rule.host.pattern if rule.host else None, tuple(headers))

    def describe(self) -> str:
        """``GET``, ``POST /v1/request-landing``, ``/public/.*``, ``GET host api.example.com [X-Token: 42]``."""
        parts = [p for p in (self.method, self.path) if p is not None]
        if self.host is not None:
            parts.append(f"host {self.host}")
        if self.headers:
            parts.append("[" + ", ".join(name + (f": {value}" if value is not None else "")
                                         for name, value in self.headers) + "]")
        return " ".join(parts) if parts else "any request"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {key: value for key, value in
                               (("method", self.method), ("path", self.path), ("host", self.host)) if value is not None}
        if self.headers:
            out["headers"] = [{"name": name, **({"value": value} if value is not None else {})}
                              for name, value in self.headers]
        return out

    @classmethod
    def from_json(cls, raw: Any, field: str, fail: f.Fail) -> HttpPass:
        body = f.mapping(raw, field, fail)
        values = {key: None if body.get(key) is None else f.string(body[key], f.join(field, key), fail,
                                                                     allow_empty=True)
                  for key in ("method", "path", "host")}
        headers = []
        for i, item in enumerate(f.optional_sequence(body.get("headers"), f.join(field, "headers"), fail)):
            where = f.join(f.join(field, "headers"), i)
            header = f.mapping(item, where, fail)
            value = header.get("value")
            headers.append((f.string(header.get("name"), f.join(where, "name"), fail),
                            None if value is None else f.string(value, f.join(where, "value"), fail, allow_empty=True)))
        return cls(values["method"], values["path"], values["host"], tuple(headers))


@dataclass(frozen=True, slots=True)
class DnsPass:
    """One DNS rule the proxy passes queries by: ``matchName`` or ``matchPattern`` and its value as written."""

    field: str
    value: str

    @classmethod
    def of(cls, rule: DnsRule) -> DnsPass:
        return cls(rule.field, rule.value)

    def to_json(self) -> dict[str, Any]:
        return {self.field: self.value}

    @classmethod
    def from_json(cls, raw: Any, field: str, fail: f.Fail) -> DnsPass:
        body = f.mapping(raw, field, fail)
        if len(body) != 1 or next(iter(body)) not in ("matchName", "matchPattern"):
            raise fail(field, "expected {matchName: NAME} or {matchPattern: PATTERN}")
        key = next(iter(body))
        return cls(key, f.string(body[key], f.join(field, key), fail))


@dataclass(frozen=True, slots=True)
class L7Side:
    """What the proxy lets through on one side (``egress`` at the source or ``ingress`` at the destination)."""

    direction: str
    http: tuple[HttpPass, ...] = ()
    dns: tuple[DnsPass, ...] = ()
    unsupported: tuple[str, ...] = ()
    rules: tuple[RuleName, ...] = ()

    @classmethod
    def of(cls, side: SideDecision, l7: L7Filter) -> L7Side:
        return cls(side.direction.value, tuple(dict.fromkeys(HttpPass.of(h) for h in l7.http)),
                   tuple(dict.fromkeys(DnsPass.of(d) for d in l7.dns)), l7.unsupported,
                   tuple(dict.fromkeys(RuleName.of(g.rule) for g in l7.grants)))

    def describe(self) -> str:
        """``GET, POST /x``; ``dns *.example.com, api.example.com``; what the model does not evaluate last."""
        parts = []
        if self.http:
            parts.append(", ".join(dict.fromkeys(h.describe() for h in self.http)))
        if self.dns:
            parts.append("dns " + ", ".join(d.value for d in self.dns))
        parts.extend(f"{kind} (not modelled)" for kind in self.unsupported)
        return "; ".join(parts) if parts else "nothing"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"direction": self.direction, "http": [h.to_json() for h in self.http],
                               "dns": [d.to_json() for d in self.dns]}
        if self.unsupported:
            out["unsupported"] = list(self.unsupported)
        out["rules"] = [r.to_json() for r in self.rules]
        return out

    @classmethod
    def from_json(cls, raw: Any, field: str, fail: f.Fail) -> L7Side:
        body = f.mapping(raw, field, fail)
        direction = f.string(body.get("direction"), f.join(field, "direction"), fail)
        if direction not in ("ingress", "egress"):
            raise fail(f.join(field, "direction"), f"expected ingress or egress, got {direction!r}")
        return cls(
            direction,
            _items(body, "http", field, fail, HttpPass.from_json),
            _items(body, "dns", field, fail, DnsPass.from_json),
            tuple(f.string(v, f.join(f.join(field, "unsupported"), i), fail) for i, v in
                  enumerate(f.optional_sequence(body.get("unsupported"), f.join(field, "unsupported"), fail))),
            _items(body, "rules", field, fail, RuleName.from_json),
        )


@dataclass(frozen=True, slots=True)
class L7Passes:
    """What the L7 proxy lets through, per filtering side, and ``passes``: that in a few words."""

    passes: str
    filters: tuple[L7Side, ...] = ()

    @classmethod
    def of_sides(cls, sides: tuple[L7Side, ...]) -> L7Passes | None:
        if not sides:
            return None
        if len(sides) == 1:
            return cls(sides[0].describe(), sides)
        return cls("; ".join(f"{s.direction}: {s.describe()}" for s in sides), sides)

    def to_json(self) -> dict[str, Any]:
        return {"passes": self.passes, "filters": [s.to_json() for s in self.filters]}

    @classmethod
    def from_json(cls, raw: Any, field: str, fail: f.Fail) -> L7Passes:
        body = f.mapping(raw, field, fail)
        return cls(f.string(body.get("passes"), f.join(field, "passes"), fail),
                   _items(body, "filters", field, fail, L7Side.from_json))


@dataclass(frozen=True, slots=True)
class DecisionFacts:
    """The structured part of a decided flow: who decided, the policies and rules behind it, what passes L7.

    ``decided_by`` is None for a decision that carries no grounds (built by hand, or read from a
    version-1 file that did not record them).
    """

    decided_by: str | None = None
    policies: tuple[PolicyName, ...] = ()
    rules: tuple[RuleName, ...] = ()
    l7: L7Passes | None = None

    @classmethod
    def of(cls, decision: Decision) -> DecisionFacts:
        """The facts of ``decision`` (computed once per distinct grounds: plans share them widely)."""
        key = id(decision.grounds)
        cached = _FACTS_CACHE.get(key)
        if cached is not None and cached[0] is decision.grounds and cached[1] is decision.verdict:
            return cached[2]
        facts = cls._compute(decision)
        if len(_FACTS_CACHE) >= _FACTS_CACHE_SIZE:
            _FACTS_CACHE.clear()
        _FACTS_CACHE[key] = (decision.grounds, decision.verdict, facts)  # holds the grounds: the id stays theirs
        return facts

    @classmethod
    def _compute(cls, decision: Decision) -> DecisionFacts:
        if not decision.basis and not decision.sides:
            return cls()
        l7 = None
        if decision.verdict in (Verdict.ALLOWED, Verdict.L7_DENIED):
            l7 = L7Passes.of_sides(tuple(L7Side.of(s, s.l7) for s in decision.sides if s.l7 is not None))
        return cls(decision.decided_by.value, tuple(PolicyName.of(p) for p in decision.policies),
                   tuple(RuleName.of(r) for r in decision.rules), l7)

    def to_json(self) -> dict[str, Any]:
        return {"decided_by": self.decided_by, "policies": [p.to_json() for p in self.policies],
                "rules": [r.to_json() for r in self.rules], "l7": None if self.l7 is None else self.l7.to_json()}

    @classmethod
    def from_json(cls, body: Mapping[str, Any], field: str, fail: f.Fail) -> DecisionFacts:
        """The facts from a decided flow's keys (missing keys read as unknown: a version-1 record has none)."""
        decided_by = body.get("decided_by")
        if decided_by is not None and (not isinstance(decided_by, str) or decided_by not in _DECIDED_BY):
            raise fail(f.join(field, "decided_by"),
                       f"expected one of {', '.join(sorted(_DECIDED_BY))} or null, got {decided_by!r}")
        l7 = body.get("l7")
        return cls(decided_by, _items(body, "policies", field, fail, PolicyName.from_json),
                   _items(body, "rules", field, fail, RuleName.from_json),
                   None if l7 is None else L7Passes.from_json(l7, f.join(field, "l7"), fail))


_FACTS_CACHE: dict[int, tuple[object, Verdict, DecisionFacts]] = {}
_FACTS_CACHE_SIZE = 4096


_T = TypeVar("_T")


def _items(body: Mapping[str, Any], key: str, field: str, fail: f.Fail,
           parse: Callable[[Any, str, f.Fail], _T]) -> tuple[_T, ...]:
    where = f.join(field, key)
    return tuple(parse(item, f.join(where, i), fail) for i, item in enumerate(f.optional_sequence(body.get(key),
                                                                                                    where, fail)))


def l7_passes(decision: Decision) -> str | None:
    """What the L7 proxy lets through for ``decision``, in a few words (``GET``, ``dns *``), or None
    when the flow does not reach the proxy -- what ``CheckedFlow.l7_passes`` holds."""
    facts = DecisionFacts.of(decision)
    return facts.l7.passes if facts.l7 is not None else None


def decided_flow_json(flow: Flow, decision: Decision) -> dict[str, Any]:
    """One decided flow, version 2 (the module docstring shows it)."""
    out = flow.to_json()
    out["verdict"] = decision.verdict.value
    out["reasons"] = list(decision.reasons)
    out.update(DecisionFacts.of(decision).to_json())
    return out
