"""L7: what Cilium's proxies (Envoy for HTTP, the DNS proxy for DNS) decide about a request.

Called for a side where allow rules match the flow's peer and port and every one of them carries
L7 rules (one without would let everything through: "L7 wildcarding", docs/semantics.md, "L7
rules"). Their rules are combined: a request passes if any HTTP rule matches it (Envoy's
full-string RE2 match of method, path and host, plus header conditions), a query if any DNS rule
matches its name; otherwise the request is ``l7-denied`` -- HTTP 403 from Envoy, DNS REFUSED from
the DNS proxy. HTTP and DNS rules on one port, or rules of the other kind than the flow's payload,
or an L7 kind the model does not evaluate, give ``unknown``.

A flow that carries no request (a port of a plan) is allowed at L4 through the proxy
(``l7-filtered``) -- over TCP, and over UDP to DNS rules, which the DNS proxy judges on either
transport; the returned ``L7Filter`` says what the proxy then lets through.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from flowcheck.model.decision import L7Filter, L7Grant, Reason, ReasonKind
from flowcheck.model.flows import Flow
from flowcheck.model.policy import Direction, Tri
from flowcheck.model.side_eval import Grant
from flowcheck.verdict import Verdict


@dataclass(frozen=True, slots=True)
class L7Judgement:
    """The L7 verdict of one side, its reasons, whether a DNS query went through the DNS proxy and was
    allowed (its answers are then learnt for toFQDNs), and what the proxy lets through."""

    verdict: Verdict
    reasons: tuple[Reason, ...]
    dns_proxied: bool
    passes: L7Filter | None


def judge_l7(grants: Sequence[Grant], flow: Flow, direction: Direction) -> L7Judgement:
    """The L7 rules of every allow matching (peer, port), combined, applied to the flow's request."""
    with_l7 = tuple(L7Grant(g.rule, g.l7) for g in grants if g.l7 is not None)
    passes = L7Filter(with_l7) if with_l7 else None

    def judged(verdict: Verdict, *reasons: Reason, dns_proxied: bool = False) -> L7Judgement:
        return L7Judgement(verdict, reasons, dns_proxied, passes)

    http = [(g, h) for g in grants if g.l7 is not None for h in g.l7.http]
    dns = [(g, d) for g in grants if g.l7 is not None for d in g.l7.dns]
    odd = [Reason(ReasonKind.UNKNOWN_FEATURE, direction, g.rule,
                  detail=f"{g.unsupported or (g.l7.unsupported if g.l7 else '')} is not modelled")
           for g in grants if g.unsupported or (g.l7 is not None and g.l7.unsupported)]
    if http and dns:
        return judged(Verdict.UNKNOWN, Reason(ReasonKind.L7_MIXED, direction, l7=passes))
    if flow.http is not None:
        if dns:
            return judged(Verdict.UNKNOWN, Reason(ReasonKind.L7_WRONG_KIND, direction, l7=passes))
        maybes: list[Reason] = []
        for g, h in http:
            tri, why = h.matches(flow.http)
            if tri is Tri.YES:
                return judged(Verdict.ALLOWED, Reason(ReasonKind.L7_MATCH, direction, g.rule, matched=h))
            if tri is Tri.MAYBE:
                maybes.append(Reason(ReasonKind.MISSING_FACT, direction, g.rule, detail=why))
        if maybes or odd:
            return judged(Verdict.UNKNOWN, *maybes, *odd)
        return judged(Verdict.L7_DENIED, *_mismatches(grants, direction))
    if flow.dns is not None:
        if http:
            return judged(Verdict.UNKNOWN, Reason(ReasonKind.L7_WRONG_KIND, direction, l7=passes))
        for g, d in dns:
            if d.matches(flow.dns.query):
                return judged(Verdict.ALLOWED, Reason(ReasonKind.L7_MATCH, direction, g.rule, matched=d),
                              dns_proxied=True)
        if odd:
            return judged(Verdict.UNKNOWN, *odd)
        return judged(Verdict.L7_DENIED, *_mismatches(grants, direction))
    if odd:
        return judged(Verdict.UNKNOWN, *odd)
    # A flow without a request reaches the proxy on TCP, and on UDP where the rules are DNS rules: the DNS
    # proxy serves both transports (docs/semantics.md, "DNS rules"), so 53/UDP and 53/TCP read alike.
    if flow.protocol == "TCP" or (flow.protocol == "UDP" and dns and not http):
        return judged(Verdict.ALLOWED, Reason(ReasonKind.L7_FILTERED, direction, l7=passes))
    return judged(Verdict.UNKNOWN, Reason(ReasonKind.L7_NO_QUERY, direction, l7=passes))


def _mismatches(grants: Sequence[Grant], direction: Direction) -> list[Reason]:
    """One ``l7-mismatch`` per allow with L7 rules: the request matches none of its rules."""
    return [Reason(ReasonKind.L7_MISMATCH, direction, g.rule, l7=L7Filter((L7Grant(g.rule, g.l7),)))
            for g in grants if g.l7 is not None]
