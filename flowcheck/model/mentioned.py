"""The paths a set of policies mentions, with the model's verdict for each: a starter intent file.

``flowcheck init`` writes a starter intent file so that a repository begins with its intent stated
for every path its policies talk about, ready to review. A path is *mentioned* when a rule names
it: a workload a policy selects, a peer of one of its rules (a workload, an entity, a block, an
FQDN), on a port of that rule (a named port resolved on the destination; every served port when
the rule names none). For an L7 rule, each HTTP rule gives an example request it lets through,
and each port one request none of them matches; each DNS rule gives a name it lets through, and
the port one name none of them does. Every path is decided by the model: the verdict captured is
the model's, and where the model answers ``unknown`` the path is marked live-only, with the verdict
the rule states (allow or deny) -- never a guessed outcome.

A policy that isolates a workload also says something about every peer its rules leave out: they are
dropped. That is often the path an author cares most about (the Star Wars demo's xwing at the
deathstar), yet no rule names it. So for each workload a policy isolates, in each isolated direction,
one such peer is written too: the first workload, in topology order, that the model drops there (a
bounded search: a workload nearly everything may reach gets no example, and nothing is guessed).

Examples are made from the rules' own patterns only where that is exact (a literal, or a pattern
whose wildcards have an obvious instance that the pattern then matches); a pattern without one
gives no example, and a note says so.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from flowcheck.model.engine import Decision, Model
from flowcheck.model.flows import (
    CidrEndpoint,
    DnsQuery,
    Endpoint,
    EntityEndpoint,
    Flow,
    FqdnEndpoint,
    HttpRequest,
    WorkloadEndpoint,
)
from flowcheck.model.identity import ENDPOINT_ENTITIES, entity_selects_pod
from flowcheck.model.policy import (
    CidrPeer,
    Direction,
    DnsRule,
    EntityPeer,
    FqdnPeer,
    HttpRule,
    IPNetwork,
    PortRule,
    PortSpec,
    Rule,
    SelectorPeer,
    UnsupportedPeer,
)
from flowcheck.model.selectors import IdentityLabels
from flowcheck.model.topology import Port, Workload
from flowcheck.verdict import Verdict
from flowcheck.vocabulary import DNS_PORT

ISOLATION_CANDIDATES = 64  # flows tried per isolated workload and direction for a dropped example
EXAMPLE_EXTERNAL_PORT = 443  # HTTPS: what a workload most often reaches outside the cluster
REFUSED_PATH = "/flowcheck-not-allowed"
REFUSED_NAME = "not-allowed.flowcheck.invalid"  # .invalid never resolves (RFC 6761)


@dataclass(frozen=True, slots=True)
class Mentioned:
    """A path a rule mentions, the model's decision, and what the rule states (allow or deny)."""

    flow: Flow
    decision: Decision
    stated: Verdict
    rule: str  # the rule that mentions it, as decisions name rules

    @property
    def live_only(self) -> bool:
        return self.decision.verdict is Verdict.UNKNOWN

    @property
    def verdict(self) -> Verdict:
        """The model's verdict, or -- when it cannot decide -- what the rule states."""
        return self.stated if self.live_only else self.decision.verdict


@dataclass(frozen=True, slots=True)
class MentionedPaths:
    paths: tuple[Mentioned, ...]
    notes: tuple[str, ...]


def mentioned_paths(model: Model) -> MentionedPaths:
    """Every path the policies mention, each once, in policy order (see the module docstring)."""
    found: dict[Flow, Mentioned] = {}
    notes: list[str] = []
    for named in rule_paths(model):
        rule = named.rule
        if named.example_port:  # outside the cluster nothing says what it serves: one example port
            notes.append(f"{rule.describe()}: names no port; {named.flow.destination.describe()} is written with "
                         f"{EXAMPLE_EXTERNAL_PORT}/TCP as an example (every port is allowed alike)")
        examples = [] if named.port_rule is None else list(_l7_examples(named.flow, named.port_rule, rule, notes))
        # With L7 rules the requests are what matter: the bare connection only where none could be made.
        for flow in examples or [named.flow]:
            if flow not in found:
                stated = Verdict.DROPPED if rule.deny else Verdict.ALLOWED
                found[flow] = Mentioned(flow, model.decide(flow), _stated(flow, stated), rule.describe())
    for example in _isolation_examples(model, _workload_labels(model)):
        found.setdefault(example.flow, example)
    notes.extend(f"{rule.describe()}: {peer.feature} names peers the model cannot place, so no path is written for "
                 "them; state them yourself (`live-only: true` where the model answers unknown)"
                 for spec in model.policies.specs for rule in spec.rules for peer in rule.peers
                 if isinstance(peer, UnsupportedPeer))
    return MentionedPaths(tuple(found.values()), tuple(dict.fromkeys(notes)))


@dataclass(frozen=True, slots=True)
class RulePath:
    """One path a rule names, at L3/L4 (``flow`` carries no request): the port rule that names its port
    (None for a rule without ports), and whether the port is only an example (``example_port``: a rule
    without ports, to a destination outside the cluster, which no file says what it serves)."""

    rule: Rule
    flow: Flow
    port_rule: PortRule | None = None
    example_port: bool = False


def rule_paths(model: Model) -> Iterator[RulePath]:
    """Every path a rule of the model's policies names, in policy order, repeats included.

    A rule of a policy selecting workloads names each (selected workload, peer, port): a peer is a
    workload its selector or entity selects, an entity outside the cluster, a block (a CIDR rule's
    largest open block and each of its except blocks) or an FQDN (a ``matchPattern`` gives a name it
    matches); a port is one of the rule's that the destination serves, every served port when the
    rule names none -- or ``EXAMPLE_EXTERNAL_PORT``/TCP for a destination outside the cluster.
    ``flowcheck init`` writes these paths (with L7 examples); ``flowcheck diff`` compares those
    with an end outside the cluster.
    """
    workloads = model.topology.workloads
    labels = _workload_labels(model)
    for spec in model.policies.specs:
        if spec.subject is None:
            continue  # a host policy selects nodes, not workloads
        subject = spec.subject
        selected = [w for w, lab in zip(workloads, labels, strict=True) if subject.matches(lab)]
        for rule in spec.rules:
            peers = list(_peer_endpoints(rule, workloads, labels))
            for local in selected:
                for peer in peers:
                    source: Endpoint
                    destination: Endpoint
                    if rule.direction is Direction.EGRESS:
                        source, destination = WorkloadEndpoint(local.ref), peer
                    elif isinstance(peer, FqdnEndpoint):
                        continue  # an FQDN is never a source
                    else:
                        source, destination = peer, WorkloadEndpoint(local.ref)
                    if source != destination:
                        yield from _port_paths(model, rule, source, destination)


def _workload_labels(model: Model) -> list[IdentityLabels]:
    table = model.identities  # allocated once, by the model
    return [table.identities[i].labels for i in table.of_workload]


def _isolation_examples(model: Model, labels: Sequence[IdentityLabels]) -> Iterator[Mentioned]:
    """Per workload a policy isolates, per isolated direction: one peer the model drops there."""
    workloads = model.topology.workloads
    done: set[tuple[str, Direction]] = set()
    for spec in model.policies.specs:
        if spec.subject is None:
            continue
        for direction in sorted(spec.default_deny):
            for local, lab in zip(workloads, labels, strict=True):
                if (local.ref, direction) in done or not spec.subject.matches(lab):
                    continue
                done.add((local.ref, direction))
                flow = _first_dropped(model, local, direction)
                if flow is not None:
                    yield Mentioned(flow, model.decide(flow), Verdict.DROPPED,
                                    f"{spec.policy.describe()} isolates {local.ref} for {direction}; "
                                    f"an example {'source' if direction is Direction.INGRESS else 'destination'} "
                                    "no rule allows")


def _first_dropped(model: Model, local: Workload, direction: Direction) -> Flow | None:
    candidates: Iterator[Flow]
    if direction is Direction.INGRESS:
        candidates = (Flow(WorkloadEndpoint(peer.ref), WorkloadEndpoint(local.ref), port.protocol, port.port)
                      for port in local.ports for peer in model.topology.workloads if peer.ref != local.ref)
    else:
        candidates = (Flow(WorkloadEndpoint(local.ref), WorkloadEndpoint(peer.ref), port.protocol, port.port)
                      for peer in model.topology.workloads if peer.ref != local.ref for port in peer.ports[:1])
    for flow in itertools.islice(candidates, ISOLATION_CANDIDATES):
        if model.decide(flow).verdict is Verdict.DROPPED:
            return flow
    return None


def _stated(flow: Flow, stated: Verdict) -> Verdict:
    """What the rule states for this flow: a refused example of an allow rule states an L7 denial."""
    refused = (flow.http is not None and flow.http.path == REFUSED_PATH) or \
        (flow.dns is not None and flow.dns.query == REFUSED_NAME)
    return Verdict.L7_DENIED if refused and stated is Verdict.ALLOWED else stated


def _peer_endpoints(rule: Rule, workloads: tuple[Workload, ...],
                    labels: Sequence[IdentityLabels]) -> Iterator[Endpoint]:
    for peer in rule.peers:
        if isinstance(peer, SelectorPeer):
            yield from (WorkloadEndpoint(w.ref) for w, lab in zip(workloads, labels, strict=True)
                        if peer.selector.matches(lab))
        elif isinstance(peer, EntityPeer):
            if entity_selects_pod(peer.entity):
                yield from (WorkloadEndpoint(w.ref) for w in workloads)
            elif peer.entity in ENDPOINT_ENTITIES:
                yield EntityEndpoint(peer.entity)
        elif isinstance(peer, CidrPeer):
            if not peer.excepts:
                yield CidrEndpoint(str(peer.network))
                continue
            rest = sorted(_without(peer.network, peer.excepts), key=lambda n: (n.prefixlen, n.network_address))
            if rest:
                yield CidrEndpoint(str(rest[0]))  # the largest block the rule opens
            yield from (CidrEndpoint(str(e)) for e in peer.excepts if _inside(e, peer.network))
        elif isinstance(peer, FqdnPeer):
            name = peer.name or _instance(peer.text.partition(" ")[2] or peer.text)
            if name:
                yield FqdnEndpoint(name.rstrip("."))


def _without(network: IPNetwork, excepts: tuple[IPNetwork, ...]) -> list[IPNetwork]:
    """``network`` less its exceptions, as blocks."""
    blocks = [network]
    for ex in excepts:
        next_blocks: list[IPNetwork] = []
        for block in blocks:
            if _inside(ex, block):
                next_blocks.extend(block.address_exclude(ex))  # type: ignore[arg-type]
            else:
                next_blocks.append(block)
        blocks = next_blocks
    return blocks


def _inside(inner: IPNetwork, outer: IPNetwork) -> bool:
    return inner.version == outer.version and inner.subnet_of(outer)  # type: ignore[arg-type]


def _port_paths(model: Model, rule: Rule, source: Endpoint, destination: Endpoint) -> Iterator[RulePath]:
    """The paths of one (source, destination) a rule names: one per port."""
    to_workload = isinstance(destination, WorkloadEndpoint)
    served = model.topology.workload(destination.ref).ports if isinstance(destination, WorkloadEndpoint) else ()
    if rule.ports is None:
        for p in served:  # an L3-only rule: every port the destination serves
            yield RulePath(rule, Flow(source, destination, p.protocol, p.port))
        if not to_workload:
            yield RulePath(rule, Flow(source, destination, "TCP", EXAMPLE_EXTERNAL_PORT), example_port=True)
        return
    for port_rule in rule.ports:
        for spec in port_rule.ports:
            for protocol, number in _numbers(spec, served):
                if to_workload and not any(p.protocol == protocol and p.port == number for p in served):
                    continue  # the destination does not serve it: a probe there could only be refused
                yield RulePath(rule, Flow(source, destination, protocol, number), port_rule)


def _numbers(spec: PortSpec, served: tuple[Port, ...]) -> Iterator[tuple[str, int]]:
    protocols = ("TCP", "UDP", "SCTP") if spec.protocol == "ANY" else (spec.protocol,)
    if spec.name is not None:
        yield from ((p.protocol, p.port) for p in served if p.name == spec.name and p.protocol in protocols)
    elif spec.number == 0:
        yield from ((p.protocol, p.port) for p in served if p.protocol in protocols)
    elif spec.protocol == "ANY":
        yield ("UDP" if spec.number == DNS_PORT else "TCP", spec.number)  # DNS is asked over UDP first
    elif spec.protocol in ("TCP", "UDP", "SCTP"):
        yield (spec.protocol, spec.number)


def _l7_examples(base: Flow, port_rule: PortRule, rule: Rule, notes: list[str]) -> Iterator[Flow]:
    l7 = port_rule.l7
    if l7 is None or l7.unsupported:
        return
    if l7.http and base.protocol == "TCP":
        for http in l7.http:
            request = _http_example(http)
            if request is None:
                notes.append(f"{rule.describe()}: no exact example request for {http.describe()}; state one yourself")
                continue
            yield Flow(base.source, base.destination, base.protocol, base.port, http=request)
        refused = HttpRequest.make("DELETE", REFUSED_PATH)
        if not any(h.matches(refused)[0].value == "yes" for h in l7.http):
            yield Flow(base.source, base.destination, base.protocol, base.port, http=refused)
    if l7.dns and base.protocol in ("UDP", "TCP"):
        for dns in l7.dns:
            name = _dns_example(dns)
            if name is None:
                notes.append(f"{rule.describe()}: no example name for dns {dns.text}; state one yourself")
                continue
            yield Flow(base.source, base.destination, base.protocol, base.port, dns=DnsQuery(name))
        if not any(d.matches(REFUSED_NAME) for d in l7.dns):
            yield Flow(base.source, base.destination, base.protocol, base.port, dns=DnsQuery(REFUSED_NAME))


# Wildcards with an obvious instance (the instance is checked against the pattern before use).
_INSTANCES = ((r"[0-9]+", "1"), (r"\d+", "1"), (r"[0-9]*", "1"), (r".+", "x"), (r".*", ""), (r"[^/]+", "x"),
              (r"[^/]*", "x"), (r"[a-z]+", "x"), (r"[a-z0-9-]+", "x"), (r"[a-zA-Z0-9]+", "x"), (r"[A-Z]+", "X"))
_METACHARACTERS = re.compile(r"[\\^$.|?*+()\[\]{}]")
_OPTIONAL_GROUP = re.compile(r"\((?:\?:)?[^()]*\)[?*]")


def _regex_instance(pattern: str) -> str | None:
    text = pattern.removeprefix("^").removesuffix("$")
    text = _OPTIONAL_GROUP.sub("", text)  # `/cart(/.*)?`: an optional group's obvious instance is leaving it out
    for wildcard, instance in _INSTANCES:
        text = text.replace(wildcard, instance)
    text = text.replace(r"\.", ".").replace(r"\-", "-").replace(r"\/", "/")
    return None if _METACHARACTERS.search(text.replace(".", "")) else text


def _http_example(rule: HttpRule) -> HttpRequest | None:
    method = _regex_instance(rule.method.pattern) if rule.method is not None else "GET"
    if rule.method is not None and method is not None and "|" in rule.method.pattern:
        method = rule.method.pattern.split("|")[0].strip("()^$")
    path = _regex_instance(rule.path.pattern) if rule.path is not None else "/"
    host = _regex_instance(rule.host.pattern) if rule.host is not None else None
    if method is None or path is None or (rule.host is not None and host is None):
        return None
    if not path.startswith("/"):
        path = "/" + path
    headers = {name: value for name, value in rule.headers if value is not None}
    headers.update({name: "" for name, value in rule.headers if value is None})
    for match in rule.header_matches:
        if match.secret or match.mismatch is not None:
            continue
        headers[match.name] = match.value or ""
    request = HttpRequest.make(method.upper(), path, headers or None, host)
    return request if rule.matches(request)[0].value == "yes" else None


def _dns_example(rule: DnsRule) -> str | None:
    name = rule.value if rule.field == "matchName" else _instance(rule.value)
    return name.rstrip(".") if name and rule.matches(name) else None


def _instance(pattern: str) -> str | None:
    """A name a ``matchPattern`` matches: ``*.stripe.com`` -> ``api.stripe.com``; ``*`` -> ``example.com``."""
    text = pattern.strip()
    if text in ("*", "**", "*.", "**."):
        return "example.com"
    text = text.replace("**.", "api.", 1) if text.startswith("**.") else text
    text = re.sub(r"^\*\.", "api.", text)
    return text.replace("*", "x") or None
