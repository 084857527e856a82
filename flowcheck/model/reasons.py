"""Reasons as text: the one place a ``Reason`` becomes the sentence users read.

The engine decides in data (``flowcheck.model.decision``); this module renders it, at the edge,
with the flow's names: ``render_reason(reason, flow)``. The sentences are part of what users and
scripts see (``plan``/``explain`` JSON, reports, failing suites), so their wording changes only on
purpose -- ``tests/model/test_decisions_unchanged.py`` holds every one of them on a fixed corpus.

``source``/``destination`` override the flow's own names: the engine renders a reason once per
distinct decision with stand-ins and fills the names in per flow, which keeps planning N x N flows
cheap.
"""

from __future__ import annotations

from collections.abc import Iterable

from flowcheck.model.decision import L7Filter, Reason, ReasonKind
from flowcheck.model.flows import Flow
from flowcheck.model.policy import Direction, DnsRule, HttpRule


def render_reasons(reasons: Iterable[Reason], flow: Flow) -> tuple[str, ...]:
    """Each reason's sentence for ``flow``, in order."""
    return tuple(render_reason(reason, flow) for reason in reasons)


def render_reason(reason: Reason, flow: Flow, *, source: str | None = None, destination: str | None = None) -> str:
    """The sentence for ``reason`` about ``flow`` (names from the flow unless given)."""
    src = flow.source.describe() if source is None else source
    dst = flow.destination.describe() if destination is None else destination
    kind = reason.kind
    direction = reason.direction.value if reason.direction is not None else ""
    if reason.direction is Direction.INGRESS:
        local, peer, to_from = dst, src, "from"
    else:
        local, peer, to_from = src, dst, "to"
    what = flow.transport()
    rule = reason.rule.describe() if reason.rule is not None else ""

    if kind is ReasonKind.SELF_FLOW:
        return (f"{src} reaches its own IP: the kernel delivers it inside the pod's network namespace, so no policy "
                "applies")
    if kind is ReasonKind.NOT_A_POD:
        return f"neither {src} nor {dst} is a pod Cilium enforces policy on"
    if kind is ReasonKind.NO_POLICY_SELECTS:
        return f"{local} {direction}: no policy selects it, {direction} is unrestricted"
    if kind is ReasonKind.DEFAULT_ALLOW:
        return (f"{local} {direction}: only policies with enableDefaultDeny.{direction}=false select it, so "
                f"{direction} stays default-allow (their L7 rules get an allow-all, Cilium >= 1.18)")
    if kind is ReasonKind.LOCALHOST:
        return f"{local} ingress: the host always reaches its local pods (Cilium's allow-localhost in Kubernetes mode)"
    if kind is ReasonKind.LOCALHOST_DENY:
        return (f"{rule}: denies the host, but the host always reaches local pods (allow-localhost); how the two "
                "interact is not documented")
    if kind is ReasonKind.DENY_RULE:
        return f"{rule}: denies {what} {to_from} {peer} (deny rules win over allows)"
    if kind is ReasonKind.ALLOW_RULE:
        return f"{rule}: allows {what} {to_from} {peer}"
    if kind is ReasonKind.ISOLATED_NO_RULE:
        isolating = ", ".join(ref.describe() for ref in reason.policies)
        if reason.unless_above:
            return (f"{isolating} {direction}: no other rule allows {what} {to_from} {peer} ({local} is isolated for "
                    f"{direction}), so it is dropped unless a rule above applies")
        return f"{isolating} {direction}: no rule allows {what} {to_from} {peer} ({local} is isolated for {direction})"
    if kind is ReasonKind.HOST_POLICY:
        names = ", ".join(ref.describe() for ref in reason.policies)
        return f"{names}: host policies (nodeSelector, host firewall) are not modelled and this flow touches a node"
    if kind in (ReasonKind.FQDN_NOT_LEARNT, ReasonKind.CIDR_BLOCKS):
        return reason.detail
    if kind in (ReasonKind.UNKNOWN_FEATURE, ReasonKind.MISSING_FACT, ReasonKind.UNDOCUMENTED) \
            and reason.rule is not None and reason.rule.deny:
        return f"{rule}: may deny ({reason.detail})"
    if kind in (ReasonKind.UNKNOWN_FEATURE, ReasonKind.MISSING_FACT, ReasonKind.UNDOCUMENTED,
                ReasonKind.NAMED_PORT_AMBIGUOUS, ReasonKind.FQDN_UNNAMED):
        return f"{rule}: {reason.detail}"
    return _render_l7(reason, flow, rule, f"{what} {to_from} {peer}")


def _render_l7(reason: Reason, flow: Flow, rule: str, what: str) -> str:
    kind = reason.kind
    rules_text = _rules_text(reason.l7)
    if kind is ReasonKind.L7_MATCH:
        if isinstance(reason.matched, HttpRule):
            return f"{rule}: {reason.matched.describe()} matched"
        if isinstance(reason.matched, DnsRule) and flow.dns is not None:
            return f"{rule}: dns {reason.matched.text} matched {flow.dns.query}"
    if kind is ReasonKind.L7_MISMATCH:
        if flow.http is not None:
            return f"{rule}: {flow.http.describe()} does not match {_own_rules(reason)} (Envoy answers 403)"
        if flow.dns is not None:
            return (f"{rule}: dns {flow.dns.query} does not match {_own_rules(reason)} "
                    "(the DNS proxy answers REFUSED)")
    if kind is ReasonKind.L7_MIXED:
        return (f"HTTP and DNS rules apply to the same port ({rules_text}); Cilium rejects mixing L7 types on one "
                "port")
    if kind is ReasonKind.L7_WRONG_KIND:
        if flow.http is not None:
            return f"DNS rules apply to this port ({rules_text}) but the flow is HTTP"
        return f"HTTP rules apply to this port ({rules_text}) but the flow is DNS"
    if kind is ReasonKind.L7_FILTERED:
        return (f"{rules_text}: allows {what} through Cilium's L7 proxy, which then filters each request (give the "
                "flow an http request or a dns query to judge one)")
    if kind is ReasonKind.L7_NO_QUERY:
        return f"{rules_text}: only a DNS query can be judged on {what}, and the flow carries none"
    raise ValueError(f"a {kind.value} reason cannot be rendered for {flow.describe()}: {reason!r}")


def _rules_text(l7: L7Filter | None) -> str:
    return l7.describe() if l7 is not None else ""


def _own_rules(reason: Reason) -> str:
    """The L7 rules of the rule an ``l7-mismatch`` names (``http GET``, ``dns matchName x``)."""
    return reason.l7.grants[0].rules.describe() if reason.l7 is not None and reason.l7.grants else ""
