"""Typed policies: what the parsers produce from NetworkPolicy and Cilium documents.

Both Kubernetes NetworkPolicy and CiliumNetworkPolicy/CiliumClusterwideNetworkPolicy are parsed
into one vocabulary, the way Cilium itself translates a NetworkPolicy into its own rules
(docs/semantics.md, "NetworkPolicy translation"): a ``PolicySpec`` (one ``spec``/``specs[i]`` rule of Cilium, or one
NetworkPolicy) selects subjects and carries ``Rule`` objects per direction; a rule has peers
(label selectors with the namespace requirements Cilium adds already folded in, entities, CIDRs,
FQDNs), ports and optional L7 rules. Everything the model does not support is kept as an explicit
``unsupported`` note on the rule, peer or port, so the engine can answer ``unknown`` with the
reason instead of guessing.

The L3/L4/L7 matching that depends only on the rule and the flow (ports, ICMP types, HTTP and
DNS rules) lives here too; matching that needs the topology (selectors, named ports of other
workloads) lives in the engine.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from dataclasses import dataclass, field

from flowcheck.model.flows import HttpRequest
from flowcheck.model.http_regex import HttpRegex
from flowcheck.model.identity import Entity
from flowcheck.model.selectors import LabelSelector

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class Tri(enum.Enum):
    """Three-valued match: the model says ``MAYBE`` when it lacks a fact, and then never guesses."""

    YES = "yes"
    NO = "no"
    MAYBE = "maybe"


class Direction(enum.StrEnum):
    INGRESS = "ingress"
    EGRESS = "egress"


class PolicyKind(enum.StrEnum):
    NETWORK_POLICY = "NetworkPolicy"
    CILIUM = "CiliumNetworkPolicy"
    CILIUM_CLUSTERWIDE = "CiliumClusterwideNetworkPolicy"


@dataclass(frozen=True, slots=True)
class PolicyRef:
    """Which policy a rule came from, and where it was read (for messages)."""

    kind: PolicyKind
    namespace: str | None
    name: str
    path: str = ""
    document: int = 0

    def describe(self) -> str:
        """``CiliumNetworkPolicy default/allow-get-only`` (cluster-wide ones have no namespace)."""
        return f"{self.kind.value} {self.namespace}/{self.name}" if self.namespace else f"{self.kind.value} {self.name}"


# --- peers --------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SelectorPeer:
    """Endpoints whose identity matches ``selector`` (namespace scoping already applied).

    ``namespace_selector`` marks a NetworkPolicy peer with a non-empty ``namespaceSelector``. The
    NetworkPolicy API has it select pods only; Cilium rewrites its keys to namespace-label keys
    (docs/semantics.md, "NetworkPolicy translation"), which reserved identities (world, host, ...)
    lack, so a ``NotIn``/``DoesNotExist`` requirement could match them -- whether Cilium restricts
    the peer to pods is not known ("Where Cilium and the NetworkPolicy specification differ").
    """

    selector: LabelSelector
    text: str
    namespace_selector: bool = False


@dataclass(frozen=True, slots=True)
class EntityPeer:
    entity: Entity


@dataclass(frozen=True, slots=True)
class CidrPeer:
    """A CIDR with its exceptions. ``ip_block`` marks a NetworkPolicy ipBlock (see the engine's
    ``kubernetes`` semantics, where an ipBlock also matches pod IPs)."""

    network: IPNetwork
    excepts: tuple[IPNetwork, ...] = ()
    ip_block: bool = False

    def contains(self, ip: str) -> bool:
        addr = ipaddress.ip_address(ip)
        if addr.version != self.network.version or addr not in self.network:
            return False
        return not any(addr in ex for ex in self.excepts if ex.version == addr.version)

    def describe(self) -> str:
        text = str(self.network)
        if self.excepts:
            text += " except " + ", ".join(str(e) for e in self.excepts)
        return text


@dataclass(frozen=True, slots=True)
class FqdnPeer:
    """``toFQDNs`` entry: ``matchName`` (exact; ``name`` is set) or ``matchPattern`` (wildcards),
    case-insensitive."""

    text: str
    pattern: re.Pattern[str]
    name: str | None = None

    def matches(self, name: str) -> bool:
        return self.pattern.match(normalise_dns_name(name)) is not None


@dataclass(frozen=True, slots=True)
class UnsupportedPeer:
    """A peer kind the model does not evaluate (toServices, toGroups, fromNodes, cidrGroupRef, ...)."""

    feature: str


Peer = SelectorPeer | EntityPeer | CidrPeer | FqdnPeer | UnsupportedPeer


# --- ports and L7 -------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class PortSpec:
    """One port entry. ``number`` 0 means every port; ``name`` is a named port (resolved later)."""

    protocol: str  # TCP, UDP, SCTP, ANY (TCP/UDP/SCTP), or another IP protocol no flow uses
    number: int = 0
    name: str | None = None
    end_port: int | None = None

    def protocol_matches(self, protocol: str) -> bool:
        if protocol == "ICMP":
            return False  # "Matching on ICMP is not supported" in toPorts: icmps does it (docs/semantics.md, "ICMP")
        return self.protocol == "ANY" or self.protocol == protocol

    def number_matches(self, port: int) -> bool:
        if self.number == 0:
            return True
        if self.end_port is not None and self.end_port >= self.number:
            return self.number <= port <= self.end_port
        return port == self.number

    def describe(self) -> str:
        proto = "any protocol" if self.protocol == "ANY" else self.protocol
        if self.name:
            return f"{proto}/{self.name}"
        if self.number == 0:
            return f"{proto}/all ports"
        if self.end_port is not None and self.end_port > self.number:
            return f"{proto}/{self.number}-{self.end_port}"
        return f"{proto}/{self.number}"


@dataclass(frozen=True, slots=True)
class HeaderMatch:
    """A ``headerMatches`` entry; ``mismatch`` set (LOG, ADD, ...) means a mismatch does not deny."""

    name: str
    value: str | None
    secret: bool = False
    mismatch: str | None = None


@dataclass(frozen=True, slots=True)
class HttpRule:
    """One ``rules.http`` entry: RE2 regexes matching the whole method, path and host, plus header checks."""

    method: HttpRegex | None = None
    path: HttpRegex | None = None
    host: HttpRegex | None = None
    headers: tuple[tuple[str, str | None], ...] = ()
    header_matches: tuple[HeaderMatch, ...] = ()

    def matches(self, request: HttpRequest) -> tuple[Tri, str]:
        """Envoy's full-string match of every field (docs/semantics.md, "HTTP rules"); MAYBE when the flow lacks
        a fact."""
        if self.method is not None and not self.method.fullmatch(request.method):
            return Tri.NO, f"method {request.method} does not match {self.method.pattern!r}"
        if self.path is not None and not self.path.fullmatch(request.path):
            return Tri.NO, f"path {request.path} does not match {self.path.pattern!r}"
        maybe = ""
        if self.host is not None:
            if request.host is None:
                maybe = f"the rule matches the host against {self.host.pattern!r} but the flow gives no host"
            elif not self.host.fullmatch(request.host):
                return Tri.NO, f"host {request.host} does not match {self.host.pattern!r}"
        for name, value in self.headers:
            got = request.header(name)
            if got is None:
                return Tri.NO, f"header {name} is missing"
            if value is not None and got != value:
                return Tri.NO, f"header {name} is {got!r}, not {value!r}"
        for hm in self.header_matches:
            if hm.mismatch is not None:
                continue  # LOG/ADD/DELETE/REPLACE: the rule still matches, Envoy only acts on the header
            got = request.header(hm.name)
            if hm.secret:
                maybe = maybe or f"header {hm.name} is compared with a secret the model cannot read"
            elif got is None:
                return Tri.NO, f"header {hm.name} is missing"
            elif hm.value is not None and got != hm.value:
                return Tri.NO, f"header {hm.name} is {got!r}, not {hm.value!r}"
        if maybe:
            return Tri.MAYBE, maybe
        return Tri.YES, f"{self.describe()} matched"

    def describe(self) -> str:
        parts = [p.pattern for p in (self.method, self.path) if p is not None]
        if self.host is not None:
            parts.append(f"host {self.host.pattern}")
        parts.extend(name + (f": {value}" if value is not None else "") for name, value in self.headers)
        parts.extend(f"{hm.name}={'<secret>' if hm.secret else hm.value}" for hm in self.header_matches)
        return "http " + (" ".join(parts) if parts else "(any request)")


@dataclass(frozen=True, slots=True)
class DnsRule:
    """One ``rules.dns`` entry (matchName or matchPattern), compiled to Cilium's anchored regex.

    ``text`` is the entry as written, ``matchName api.example.com`` or ``matchPattern *.example.com``.
    """

    text: str
    pattern: re.Pattern[str]

    def matches(self, query: str) -> bool:
        return self.pattern.match(normalise_dns_name(query)) is not None

    @property
    def field(self) -> str:
        """``matchName`` or ``matchPattern``: which field of the entry was written."""
        return self.text.partition(" ")[0]

    @property
    def value(self) -> str:
        """The name or pattern as written (``*.example.com``)."""
        return self.text.partition(" ")[2]


@dataclass(frozen=True, slots=True)
class L7Rules:
    """The ``rules`` of a toPorts entry: HTTP, DNS, or an L7 kind the model does not evaluate."""

    http: tuple[HttpRule, ...] = ()
    dns: tuple[DnsRule, ...] = ()
    unsupported: str | None = None

    def describe(self) -> str:
        if self.unsupported:
            return self.unsupported
        if self.dns:
            return "dns " + ", ".join(d.text for d in self.dns)
        return "; ".join(h.describe() for h in self.http)


@dataclass(frozen=True, slots=True)
class PortRule:
    """One ``toPorts`` entry (or a NetworkPolicy's ``ports`` list): ports plus optional L7 rules."""

    ports: tuple[PortSpec, ...]
    l7: L7Rules | None = None
    unsupported: str | None = None


@dataclass(frozen=True, slots=True)
class IcmpSpec:
    """An ``icmps.fields`` entry; ``type`` is None when a type name is not one the model knows."""

    family: str
    type: int | None
    text: str


# --- rules and policies -------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class RuleRef:
    """Which rule: the policy, the section (direction, allow or deny), the index in it, and for a
    Cilium policy with ``specs`` which spec (``specs[2]``; empty for ``spec`` and NetworkPolicy).

    What a decision names when it says which rule decided; cheap to compare and hash, unlike the
    ``Rule`` with its selectors and compiled patterns.
    """

    policy: PolicyRef
    direction: Direction
    deny: bool
    index: int
    spec_label: str = ""

    def describe(self) -> str:
        """``CiliumNetworkPolicy default/x ingress rule 0`` (``egressDeny rule 1``, ``specs[2] ...``)."""
        section = self.direction.value + ("Deny" if self.deny else "")
        spec = f" {self.spec_label}" if self.spec_label else ""
        return f"{self.policy.describe()}{spec} {section} rule {self.index}"


@dataclass(frozen=True, slots=True)
class Rule:
    """One ingress/egress (or ingressDeny/egressDeny) rule.

    ``wildcard_peers`` is True when the rule names no peer (only ports): all peers, pods, host and
    world alike (docs/semantics.md, "Empty and missing peer lists"). ``ports`` is None for an
    L3-only rule (every port and protocol, ICMP too); ``icmps`` lists the ICMP types an ``icmps``
    section allows. ``unsupported`` lists rule-level features (mutual authentication, ...) that
    make the outcome of a matching rule unknown.
    """

    policy: PolicyRef
    direction: Direction
    deny: bool
    index: int
    peers: tuple[Peer, ...] = ()
    wildcard_peers: bool = False
    ports: tuple[PortRule, ...] | None = None
    icmps: tuple[IcmpSpec, ...] | None = None
    unsupported: tuple[str, ...] = ()
    spec_label: str = ""

    @property
    def ref(self) -> RuleRef:
        """This rule's ``RuleRef`` (a new one per call: callers that need it often keep it)."""
        return RuleRef(self.policy, self.direction, self.deny, self.index, self.spec_label)

    def describe(self) -> str:
        """``CiliumNetworkPolicy default/x ingress rule 0`` (``egressDeny rule 1``, ``specs[2] ...``)."""
        return self.ref.describe()

    @property
    def l3_only(self) -> bool:
        return self.ports is None and self.icmps is None


@dataclass(frozen=True, slots=True)
class PolicySpec:
    """One unit of selection: a NetworkPolicy, or one ``spec``/``specs[i]`` of a Cilium policy.

    ``subject`` is None for a host policy (``nodeSelector``), which selects nodes, never pods.
    ``directions`` are the directions this spec has rules in (allow or deny; for NetworkPolicy, its
    policyTypes); ``default_deny`` the directions it switches to default deny.
    """

    policy: PolicyRef
    subject: LabelSelector | None
    directions: frozenset[Direction]
    default_deny: frozenset[Direction]
    rules: tuple[Rule, ...]


@dataclass(frozen=True, slots=True)
class Policy:
    ref: PolicyRef
    specs: tuple[PolicySpec, ...]


@dataclass(frozen=True, slots=True)
class PolicySet:
    """The typed policies read from some paths, plus notes about what was ignored and why."""

    policies: tuple[Policy, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def specs(self) -> tuple[PolicySpec, ...]:
        return tuple(spec for policy in self.policies for spec in policy.specs)


# --- DNS names ----------------------------------------------------------------------------------

_DNS_CHARS = "[-a-zA-Z0-9_]"
_MATCH_ALL_PATTERNS = frozenset({"*", "**", "*.", "**."})


def normalise_dns_name(name: str) -> str:
    """Lower-case and fully qualified (trailing dot), as Cilium's DNS proxy compares names ("DNS rules")."""
    name = name.strip().lower()
    return name if name.endswith(".") else name + "."


def dns_name_regex(name: str) -> re.Pattern[str]:
    """``matchName``: the exact name, case-insensitively, trailing dot optional."""
    return re.compile("^" + re.escape(normalise_dns_name(name)) + "$")


def dns_pattern_regex(pattern: str) -> re.Pattern[str]:
    """``matchPattern`` as Cilium compiles it (pkg/fqdn/matchpattern; docs/semantics.md, "DNS rules").

    ``*`` matches ``[-a-zA-Z0-9_]*`` and so never crosses a dot; a pattern that is only ``*`` matches
    every name; a leading ``**.`` matches one or more whole labels. Anchored at both ends.
    """
    text = pattern.strip().lower()
    if text in _MATCH_ALL_PATTERNS:
        return re.compile(f"^({_DNS_CHARS}+[.])+$|^[.]$")
    text = normalise_dns_name(text)
    prefix = ""
    if text.startswith("**."):
        prefix = f"({_DNS_CHARS}+[.])+"
        text = text[3:]
    body = "".join(f"{_DNS_CHARS}*" if ch == "*" else re.escape(ch) for ch in text)
    return re.compile("^" + prefix + body + "$")
