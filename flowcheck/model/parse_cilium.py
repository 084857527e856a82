"""CiliumNetworkPolicy / CiliumClusterwideNetworkPolicy documents -> typed policies.

Each of ``spec`` and ``specs[i]`` is one independent rule with its own selector
(docs/semantics.md, "Policy objects and rules"). The namespace scoping Cilium applies when it imports
a policy (``ParseToCiliumRule``/``getEndpointSelector``, "Namespace scoping") is applied here, once, so the
engine only evaluates plain selectors:

* a CNP's ``endpointSelector`` always gets ``k8s:io.kubernetes.pod.namespace=<ns>`` (a user's own
  ``k8s:`` namespace requirement is overwritten);
* a peer selector without a namespace key gets the policy's namespace (CNP) or "any namespace"
  (CCNP: pods only, never host or world); one that names ``io.kubernetes.pod.namespace``, a
  ``io.cilium.k8s.namespace.labels.*`` key or a ``reserved:`` label is used as written;
* a present but empty peer list (``fromEndpoints: []``) selects nothing; a rule with no L3 part
  but ``toPorts``/``icmps`` selects every peer; a rule ``{}`` selects nothing but still counts as a
  rule of its direction (default deny).

A document is read as the API server stores it: nulls of fields the CRD does not declare nullable
(none is) are pruned, so ``fromEndpoints:`` with no value is a missing list, not an empty one.
HTTP ``method``/``path``/``host`` patterns are compiled by RE2, the dialect Envoy evaluates them in
(``http_regex``).

What Cilium itself rejects (two L3 peer kinds in one rule, ``icmps`` with ``toPorts``, DNS rules
on ingress, L7 rules on port 0 or on a non-TCP port, an HTTP pattern RE2 refuses) is a
``PolicyError``; what Cilium accepts but the model does not evaluate (toServices, toGroups,
fromNodes/toNodes, cidrGroupRef, kafka/l7proto rules, listener, serverNames, TLS interception,
mutual authentication, host policies) is kept as an ``unsupported`` note so a flow it could affect
gets ``unknown`` with the reason.
"""

from __future__ import annotations

from typing import Any

from flowcheck.manifests.documents import SourceDocument
from flowcheck.manifests.kinds import CILIUM_REMOVED_FIELDS as REMOVED_FIELDS
from flowcheck.manifests.kinds import missing_cilium_spec as missing_spec
from flowcheck.model import fields as f
from flowcheck.model.http_regex import HttpRegex, RegexError
from flowcheck.model.identity import NAMESPACE_LABEL, NAMESPACE_LABELS_PREFIX, Entity
from flowcheck.model.parse_common import (
    in_any_namespace,
    in_namespace,
    parse_cidr,
    parse_cidr_block,
    parse_selector,
    port_value,
)
from flowcheck.model.policy import (
    CidrPeer,
    Direction,
    DnsRule,
    EntityPeer,
    FqdnPeer,
    HeaderMatch,
    HttpRule,
    IcmpSpec,
    L7Rules,
    Peer,
    Policy,
    PolicyKind,
    PolicyRef,
    PolicySpec,
    PortRule,
    PortSpec,
    Rule,
    SelectorPeer,
    UnsupportedPeer,
    dns_name_regex,
    dns_pattern_regex,
)
from flowcheck.model.selectors import K8S_SOURCE, RESERVED_SOURCE, LabelSelector

_SPEC_KEYS = ("endpointSelector", "nodeSelector", "ingress", "ingressDeny", "egress", "egressDeny",
              "enableDefaultDeny", "labels", "description", "log")
_L3_KEYS = {
    Direction.INGRESS: ("fromEndpoints", "fromCIDR", "fromCIDRSet", "fromEntities", "fromGroups", "fromNodes"),
    Direction.EGRESS: ("toEndpoints", "toCIDR", "toCIDRSet", "toEntities", "toServices", "toFQDNs", "toGroups",
                       "toNodes"),
}
_UNSUPPORTED_PEERS = {
    "fromGroups": "fromGroups (cloud provider groups)",
    "toGroups": "toGroups (cloud provider groups)",
    "fromNodes": "fromNodes (node selectors)",
    "toNodes": "toNodes (node selectors)",
    "toServices": "toServices (Service-based peers)",
}
_PORT_RULE_KEYS = ("ports", "rules", "listener", "originatingTLS", "terminatingTLS", "serverNames")
_PORT_KEYS = ("port", "endPort", "protocol")
_PORT_PROTOCOLS = ("TCP", "UDP", "SCTP", "VRRP", "IGMP", "ANY")
_L7_KEYS = ("http", "dns", "kafka", "l7proto", "l7")
_HTTP_KEYS = ("method", "path", "host", "headers", "headerMatches")

# ICMP type names Cilium accepts (pkg/policy/api/icmp.go), for the two families.
ICMP_TYPES = {
    "IPv4": {"EchoReply": 0, "DestinationUnreachable": 3, "Redirect": 5, "Echo": 8, "EchoRequest": 8,
             "RouterAdvertisement": 9, "RouterSelection": 10, "TimeExceeded": 11, "ParameterProblem": 12,
             "Timestamp": 13, "TimestampReply": 14, "Photuris": 40, "ExtendedEchoRequest": 42,
             "ExtendedEchoReply": 43},
    "IPv6": {"DestinationUnreachable": 1, "PacketTooBig": 2, "TimeExceeded": 3, "ParameterProblem": 4,
             "EchoRequest": 128, "EchoReply": 129, "MulticastListenerQuery": 130,
             "MulticastListenerReport": 131, "MulticastListenerDone": 132, "RouterSolicitation": 133,
             "RouterAdvertisement": 134, "NeighborSolicitation": 135, "NeighborAdvertisement": 136,
             "RedirectMessage": 137, "RouterRenumbering": 138, "ICMPNodeInformationQuery": 139,
             "ICMPNodeInformationResponse": 140, "InverseNeighborDiscoverySolicitation": 141,
             "InverseNeighborDiscoveryAdvertisement": 142, "HomeAgentAddressDiscoveryRequest": 144,
             "HomeAgentAddressDiscoveryReply": 145, "MobilePrefixSolicitation": 146,
             "MobilePrefixAdvertisement": 147, "DuplicateAddressRequestCodeSuffix": 157,
             "DuplicateAddressConfirmationCodeSuffix": 158, "ExtendedEchoRequest": 160,
             "ExtendedEchoReply": 161},
}


def parse_cilium_policy(doc: SourceDocument, namespace: str | None) -> Policy:
    """A CNP (``namespace`` given) or CCNP (``namespace`` None), already known to be cilium.io/v2.

    The document is read as the API server stores it: a null field is a missing one.
    """
    fail = doc.error
    kind = PolicyKind.CILIUM if namespace is not None else PolicyKind.CILIUM_CLUSTERWIDE
    ref = PolicyRef(kind, namespace, doc.name, doc.path, doc.index)
    body = f.without_nulls(doc.body)
    missing = missing_spec(doc, body)
    if missing is not None:
        raise missing
    entries: list[tuple[str, Any, str]] = []
    if "spec" in body:
        entries.append(("spec", body["spec"], ""))
    if "specs" in body:
        for i, raw in enumerate(f.sequence(body["specs"], "specs", fail)):
            entries.append((f"specs[{i}]", raw, f"specs[{i}]"))
    return Policy(ref, tuple(_parse_spec(raw, field_, label, ref, fail) for field_, raw, label in entries))


def _parse_spec(raw: Any, field_: str, label: str, ref: PolicyRef, fail: f.Fail) -> PolicySpec:
    body = f.mapping(raw, field_, fail)
    f.known_keys(body, field_, _SPEC_KEYS, fail)
    has_endpoint = body.get("endpointSelector") is not None
    has_node = body.get("nodeSelector") is not None
    if has_endpoint == has_node:
        raise fail(field_, "needs exactly one of: endpointSelector, nodeSelector")
    subject: LabelSelector | None = None
    if has_node:
        if ref.kind is PolicyKind.CILIUM:
            raise fail(f.join(field_, "nodeSelector"),
                       "nodeSelector can only be used in a CiliumClusterwideNetworkPolicy")
        parse_selector(body["nodeSelector"], f.join(field_, "nodeSelector"), fail, cilium_keys=True)
    else:
        subject = parse_selector(body["endpointSelector"], f.join(field_, "endpointSelector"), fail, cilium_keys=True)
        if ref.namespace is not None:
            subject = subject.without(K8S_SOURCE, NAMESPACE_LABEL).with_requirement(in_namespace(ref.namespace))
    if all(body.get(k) is None for k in ("ingress", "ingressDeny", "egress", "egressDeny")):
        raise fail(field_, "a rule needs at least one of: ingress, ingressDeny, egress, egressDeny")

    rules: list[Rule] = []
    directions: set[Direction] = set()
    for direction in Direction:
        for deny in (False, True):
            key = direction.value + ("Deny" if deny else "")
            raw_rules = body.get(key)
            if raw_rules is None:
                continue
            items = f.sequence(raw_rules, f.join(field_, key), fail)
            if items:
                directions.add(direction)
            for i, raw_rule in enumerate(items):
                rules.append(_parse_rule(raw_rule, f"{f.join(field_, key)}[{i}]", i, direction, deny, ref, label, fail))
    default_deny = set(directions)
    if body.get("enableDefaultDeny") is not None:
        dd_field = f.join(field_, "enableDefaultDeny")
        dd = f.mapping(body["enableDefaultDeny"], dd_field, fail)
        f.known_keys(dd, dd_field, ("ingress", "egress"), fail)
        for direction in Direction:
            if dd.get(direction.value) is not None:
                if f.boolean(dd[direction.value], f.join(dd_field, direction.value), fail):
                    default_deny.add(direction)
                else:
                    default_deny.discard(direction)
    default_deny &= directions  # a direction without rules has nothing to switch
    return PolicySpec(ref, subject, frozenset(directions), frozenset(default_deny), tuple(rules))


def _parse_rule(raw: Any, field_: str, index: int, direction: Direction, deny: bool, ref: PolicyRef, label: str,
                fail: f.Fail) -> Rule:
    body = f.optional_mapping(raw, field_, fail)
    l3_keys = _L3_KEYS[direction]
    allowed = [*l3_keys, "toPorts", "icmps"]
    if not deny:
        allowed.append("authentication")
    if deny:
        allowed = [k for k in allowed if k != "toFQDNs"]
    for key in body:
        if key in REMOVED_FIELDS:
            raise fail(f.join(field_, key), REMOVED_FIELDS[key])
    f.known_keys(body, field_, allowed, fail)
    present = [k for k in l3_keys if k in body and k in allowed]
    if len(present) > 1:
        raise fail(field_, f"combining {present[0]} and {present[1]} is not supported (one L3 peer kind per rule)")
    port_items = f.optional_sequence(body.get("toPorts"), f.join(field_, "toPorts"), fail)
    icmp_items = f.optional_sequence(body.get("icmps"), f.join(field_, "icmps"), fail)
    if port_items and icmp_items:
        raise fail(f.join(field_, "icmps"), "the icmps block may only be present without toPorts")

    peers: tuple[Peer, ...] = ()
    wildcard = False
    if present:
        key = present[0]
        peers = _parse_peers(key, body[key], f.join(field_, key), ref, fail)
    else:
        wildcard = bool(port_items or icmp_items)

    ports: tuple[PortRule, ...] | None = None
    if port_items:
        ports = tuple(_parse_port_rule(p, f"{field_}.toPorts[{i}]", direction, deny, fail)
                      for i, p in enumerate(port_items))
    icmps: tuple[IcmpSpec, ...] | None = None
    if icmp_items:
        icmps = tuple(_parse_icmps(icmp_items, f.join(field_, "icmps"), fail))
    unsupported: list[str] = []
    if body.get("authentication") is not None:
        auth_field = f.join(field_, "authentication")
        auth = f.mapping(body["authentication"], auth_field, fail)
        f.known_keys(auth, auth_field, ("mode",), fail)
        mode = f.string(auth.get("mode", "disabled"), f.join(auth_field, "mode"), fail)
        if mode not in ("disabled", "required", "test-always-fail"):
            raise fail(f.join(auth_field, "mode"), f"expected disabled, required or test-always-fail, got {mode!r}")
        if mode != "disabled":
            unsupported.append(f"mutual authentication (mode {mode})")
    return Rule(ref, direction, deny, index, peers=peers, wildcard_peers=wildcard, ports=ports,
                icmps=icmps, unsupported=tuple(unsupported), spec_label=label)


def _parse_peers(key: str, raw: Any, field_: str, ref: PolicyRef, fail: f.Fail) -> tuple[Peer, ...]:
    items = f.sequence(raw, field_, fail)
    peers: list[Peer] = []
    for i, item in enumerate(items):
        ifield = f.join(field_, i)
        if key in ("fromEndpoints", "toEndpoints"):
            selector = parse_selector(item, ifield, fail, cilium_keys=True)
            peers.append(SelectorPeer(_scope_peer_selector(selector, ref), f"{key}[{i}] {selector.describe()}"))
        elif key in ("fromEntities", "toEntities"):
            text = f.string(item, ifield, fail)
            try:
                peers.append(EntityPeer(Entity(text)))
            except ValueError:
                raise fail(ifield, f"unknown entity {text!r} (expected one of "
                                   f"{', '.join(e.value for e in Entity)})") from None
        elif key in ("fromCIDR", "toCIDR"):
            peers.append(CidrPeer(parse_cidr(item, ifield, fail)))
        elif key in ("fromCIDRSet", "toCIDRSet"):
            peers.append(_parse_cidr_set(item, ifield, fail))
        elif key == "toFQDNs":
            peers.append(_parse_fqdn(item, ifield, fail))
        else:
            peers.append(UnsupportedPeer(_UNSUPPORTED_PEERS[key]))
    return tuple(peers)


def _scope_peer_selector(selector: LabelSelector, ref: PolicyRef) -> LabelSelector:
    """Cilium's namespace injection for peer selectors (docs/semantics.md, "Namespace scoping")."""
    if selector.has_source(RESERVED_SOURCE) or selector.has_key(NAMESPACE_LABEL) \
            or selector.has_key_prefix(NAMESPACE_LABELS_PREFIX):
        return selector
    if ref.namespace is not None:
        return selector.with_requirement(in_namespace(ref.namespace))
    return selector.with_requirement(in_any_namespace())


def _parse_cidr_set(raw: Any, field_: str, fail: f.Fail) -> Peer:
    body = f.mapping(raw, field_, fail)
    f.known_keys(body, field_, ("cidr", "except", "cidrGroupRef", "cidrGroupSelector"), fail)
    if body.get("cidrGroupRef") is not None or body.get("cidrGroupSelector") is not None:
        return UnsupportedPeer("cidrGroupRef/cidrGroupSelector (CiliumCIDRGroup)")
    return parse_cidr_block(body, field_, fail, ip_block=False)


def _parse_fqdn(raw: Any, field_: str, fail: f.Fail) -> FqdnPeer:
    body = f.mapping(raw, field_, fail)
    f.known_keys(body, field_, ("matchName", "matchPattern"), fail)
    if (body.get("matchName") is None) == (body.get("matchPattern") is None):
        raise fail(field_, "needs exactly one of: matchName, matchPattern")
    if body.get("matchName") is not None:
        name = f.string(body["matchName"], f.join(field_, "matchName"), fail)
        return FqdnPeer(f"matchName {name}", dns_name_regex(name), name)
    pattern = f.string(body["matchPattern"], f.join(field_, "matchPattern"), fail)
    return FqdnPeer(f"matchPattern {pattern}", dns_pattern_regex(pattern))


def _parse_port_rule(raw: Any, field_: str, direction: Direction, deny: bool, fail: f.Fail) -> PortRule:
    body = f.mapping(raw, field_, fail)
    f.known_keys(body, field_, ("ports",) if deny else _PORT_RULE_KEYS, fail)
    items = f.optional_sequence(body.get("ports"), f.join(field_, "ports"), fail)
    specs = tuple(_parse_port(p, f"{field_}.ports[{i}]", fail) for i, p in enumerate(items))
    unsupported: str | None = None
    if not specs:
        unsupported = "a toPorts entry without ports"
    for key, what in (("listener", "listener (redirect to a CiliumEnvoyConfig)"),
                      ("serverNames", "serverNames (TLS SNI)"),
                      ("terminatingTLS", "TLS interception (terminatingTLS)"),
                      ("originatingTLS", "TLS interception (originatingTLS)")):
        if body.get(key) is not None:
            unsupported = unsupported or what
    l7 = None
    if body.get("rules") is not None:
        l7 = _parse_l7(body["rules"], f.join(field_, "rules"), direction, specs, fail)
    return PortRule(specs, l7, unsupported)


def _parse_port(raw: Any, field_: str, fail: f.Fail) -> PortSpec:
    body = f.mapping(raw, field_, fail)
    f.known_keys(body, field_, _PORT_KEYS, fail)
    number, name = (0, None)
    if body.get("port") is not None:
        number, name = port_value(body["port"], f.join(field_, "port"), fail)
    protocol = f.string(body.get("protocol") or "ANY", f.join(field_, "protocol"), fail).upper()
    if protocol not in _PORT_PROTOCOLS:
        raise fail(f.join(field_, "protocol"), f"expected one of {', '.join(_PORT_PROTOCOLS)}, got {protocol!r}")
    end_port = None
    if body.get("endPort") is not None:
        end_port = f.integer(body["endPort"], f.join(field_, "endPort"), fail, 0, 65535)
        if name is not None:
            end_port = None  # "Ignored for named ports" (docs/semantics.md, "Ports and named ports")
    return PortSpec(protocol, number, name, end_port)


def _parse_l7(raw: Any, field_: str, direction: Direction, specs: tuple[PortSpec, ...], fail: f.Fail) -> L7Rules:
    body = f.mapping(raw, field_, fail)
    f.known_keys(body, field_, _L7_KEYS, fail)
    kinds = [k for k in ("http", "dns", "kafka", "l7proto") if body.get(k) is not None]
    if len(kinds) > 1:
        raise fail(field_, f"multiple L7 protocol rule types specified in single rule ({', '.join(kinds)})")
    if not kinds:
        if body.get("l7") is not None:
            raise fail(f.join(field_, "l7"), "l7 rules need l7proto")
        return L7Rules()
    kind = kinds[0]
    for spec in specs:
        if spec.number == 0 and spec.name is None:
            raise fail(field_, "L7 rules can not be used when a port is 0")
        if kind != "dns" and spec.protocol not in ("TCP", "ANY"):
            raise fail(field_, f"L7 rules can only apply to TCP (not {spec.protocol}) except for DNS rules")
    if kind == "kafka":
        return L7Rules(unsupported="kafka rules")
    if kind == "l7proto":
        return L7Rules(unsupported="l7proto (generic L7 parser) rules")
    items = f.sequence(body[kind], f.join(field_, kind), fail)
    if kind == "dns":
        if direction is Direction.INGRESS:
            raise fail(f.join(field_, "dns"), "DNS rules are not allowed on ingress")
        if any(s.end_port is not None and s.end_port > s.number for s in specs):
            raise fail(field_, "DNS rules do not support port ranges")
        return L7Rules(dns=tuple(_parse_dns_rule(item, f"{field_}.dns[{i}]", fail) for i, item in enumerate(items)))
    return L7Rules(http=tuple(_parse_http_rule(item, f"{field_}.http[{i}]", fail) for i, item in enumerate(items)))


def _parse_dns_rule(raw: Any, field_: str, fail: f.Fail) -> DnsRule:
    peer = _parse_fqdn(raw, field_, fail)
    return DnsRule(peer.text, peer.pattern)


def _regex(raw: Any, field_: str, fail: f.Fail) -> HttpRegex:
    """An HTTP rule pattern, compiled as Envoy compiles it (RE2, docs/semantics.md, "HTTP rules"); one RE2
    refuses is a bad policy."""
    text = f.string(raw, field_, fail, allow_empty=True)
    try:
        return HttpRegex(text)
    except RegexError as exc:
        raise fail(field_, f"invalid regular expression {text!r}: RE2, the dialect Envoy evaluates HTTP rules "
                           f"in, refuses it ({exc})") from None


def _parse_http_rule(raw: Any, field_: str, fail: f.Fail) -> HttpRule:
    body = f.optional_mapping(raw, field_, fail)
    f.known_keys(body, field_, _HTTP_KEYS, fail)
    method = _regex(body["method"], f.join(field_, "method"), fail) if body.get("method") else None
    path = _regex(body["path"], f.join(field_, "path"), fail) if body.get("path") else None
    host = _regex(body["host"], f.join(field_, "host"), fail) if body.get("host") else None
    headers: list[tuple[str, str | None]] = []
    header_items = f.optional_sequence(body.get("headers"), f.join(field_, "headers"), fail)
    for i, item in enumerate(header_items):
        text = f.string(item, f"{field_}.headers[{i}]", fail)
        name, sep, value = text.partition(" ")
        headers.append((name.rstrip(":"), value.strip() if sep else None))
    matches: list[HeaderMatch] = []
    for i, item in enumerate(f.optional_sequence(body.get("headerMatches"), f.join(field_, "headerMatches"), fail)):
        mfield = f"{field_}.headerMatches[{i}]"
        hm = f.mapping(item, mfield, fail)
        f.known_keys(hm, mfield, ("name", "value", "secret", "mismatch"), fail)
        if "name" not in hm:
            raise fail(f.join(mfield, "name"), "missing required field")
        mismatch: str | None = None
        if hm.get("mismatch") is not None:
            mismatch = f.string(hm["mismatch"], f.join(mfield, "mismatch"), fail)
            if mismatch not in ("LOG", "ADD", "DELETE", "REPLACE"):
                raise fail(f.join(mfield, "mismatch"), f"expected LOG, ADD, DELETE or REPLACE, got {mismatch!r}")
        expected = f.string(hm["value"], f.join(mfield, "value"), fail, allow_empty=True) \
            if hm.get("value") is not None else None
        matches.append(HeaderMatch(f.string(hm["name"], f.join(mfield, "name"), fail), expected or None,
                                   hm.get("secret") is not None, mismatch))
    return HttpRule(method, path, host, tuple(headers), tuple(matches))


def _parse_icmps(items: list[Any], field_: str, fail: f.Fail) -> list[IcmpSpec]:
    out: list[IcmpSpec] = []
    for i, raw in enumerate(items):
        ifield = f.join(field_, i)
        body = f.mapping(raw, ifield, fail)
        f.known_keys(body, ifield, ("fields",), fail)
        for j, raw_field in enumerate(f.optional_sequence(body.get("fields"), f.join(ifield, "fields"), fail)):
            ffield = f"{ifield}.fields[{j}]"
            fb = f.mapping(raw_field, ffield, fail)
            f.known_keys(fb, ffield, ("family", "type"), fail)
            family = f.string(fb.get("family", "IPv4"), f.join(ffield, "family"), fail)
            if family not in ICMP_TYPES:
                raise fail(f.join(ffield, "family"), f"expected IPv4 or IPv6, got {family!r}")
            if "type" not in fb:
                raise fail(f.join(ffield, "type"), "missing required field")
            raw_type = fb["type"]
            if isinstance(raw_type, str) and not raw_type.isdigit():
                number = ICMP_TYPES[family].get(raw_type)
                out.append(IcmpSpec(family, number, f"{family} {raw_type}"))
            else:
                value = int(raw_type) if isinstance(raw_type, str) else raw_type
                number = f.integer(value, f.join(ffield, "type"), fail, 0, 255)
                out.append(IcmpSpec(family, number, f"{family} type {number}"))
    return out

