"""Hubble flows as a check of one observation: do the flows of a probe confirm what it saw, or contradict it?

A probe's observation (a timeout, an answer, Envoy's 403) is what the *client* saw; the Hubble flows
of its 5-tuple (``hubble.match``) are what the *datapath* did. cilium-cli turns each expectation of
its connectivity tests into flow requirements and fails an action whose flows do not meet them
(``connectivity/check/action.go``, ``GetEgressRequirements``): a drop expects the SYN and then a
drop record, with a SYN-ACK or a FIN as an exception that fails the action; a success expects
SYN, SYN-ACK and FIN with any L3/L4 drop (or RST) as the exception; an L7 denial expects an L7 record
with verdict DROPPED; a DNS denial by the proxy expects the denied request. ``judge`` does the same
for flowcheck's verdicts, with three outcomes:

- ``confirmed`` -- a flow shows what the observation says (a policy drop of the request for
  ``dropped``; a forwarded reply, or the proxy forwarding the request, for ``allowed``; the proxy's
  DROPPED request or its 403 response for ``l7-denied``);
- ``contradicted`` -- a flow shows something else happened (a forwarded reply to a probe that timed
  out; a drop, or a drop for a reason that is not policy, on a path that answered; an answer from
  the application behind a proxy denial). The harness reports such an observation as an error,
  never as a pass: one of the two views is wrong, and it cannot tell which;
- ``none`` -- no flow decides (none arrived in time, or those that did say nothing either way): the
  observation stands, and reports count it as "no evidence".

Record shapes (docs/live-evidence.md): a drop and a denied policy-verdict both carry
``drop_reason_desc`` (``POLICY_DENIED`` for default deny, ``POLICY_DENY`` for a deny rule) and no
``is_reply``; L7 records have ``Type: L7`` and no drop reason; an HTTP denial is a DROPPED REQUEST
and a FORWARDED 403 RESPONSE whose source and destination are swapped to the response direction;
a DNS denial is one DROPPED REQUEST. Direction is taken from the 5-tuple, not from ``is_reply``
(absent on every drop).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from flowcheck.cluster.hubble import FlowRecord, ProbeFacts
from flowcheck.verdict import Verdict

POLICY_DROP_REASONS = frozenset({"POLICY_DENIED", "POLICY_DENY"})
FORWARDED = "FORWARDED"
DROPPED = "DROPPED"


class EvidenceState(enum.StrEnum):
    """What a probe's Hubble flows say about its observation."""

    CONFIRMED = "confirmed"
    CONTRADICTED = "contradicted"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class EvidenceCheck:
    """The judgement, and the flow line that decided it (or why nothing did)."""

    state: EvidenceState
    detail: str
    policy_drop: bool = False
    """A policy drop of the request confirmed a ``dropped`` observation (so the drop is a verdict even
    where no other probe showed the destination reachable)."""


def is_l3l4_drop(flow: FlowRecord) -> bool:
    """A datapath drop with a known reason (cilium-cli's ``filters.Drop()``); L7 records carry no reason."""
    return flow.verdict == DROPPED and flow.flow_type != "L7" and bool(flow.drop_reason_desc)


def is_policy_drop(flow: FlowRecord) -> bool:
    return is_l3l4_drop(flow) and flow.drop_reason_desc in POLICY_DROP_REASONS


def is_l7(flow: FlowRecord) -> bool:
    return flow.flow_type == "L7" or flow.http is not None or flow.dns is not None


def judge(observed: Verdict, probe_kind: str, flows: Sequence[FlowRecord], facts: ProbeFacts) -> EvidenceCheck:
    """Judge one observation (``observed``, from a probe of ``probe_kind``: tcp, http, udp, dns) against
    the flows ``hubble.match`` found for its 5-tuple (``facts``)."""
    if not flows:
        return EvidenceCheck(EvidenceState.NONE, "no Hubble flow of this probe's 5-tuple arrived in time")
    requests = [f for f in flows if facts.is_request(f)]
    replies = [f for f in flows if facts.is_reply(f)]
    match observed:
        case Verdict.DROPPED:
            return _judge_dropped(requests, replies)
        case Verdict.ALLOWED:
            return _judge_allowed(requests, replies)
        case Verdict.L7_DENIED:
            return _judge_denied(probe_kind, requests, replies)
        case _:
            return EvidenceCheck(EvidenceState.NONE, f"{len(flows)} flow(s); a {observed.value} observation is "
                                                     "not judged against flows")


def _first(flows: Sequence[FlowRecord], test: Callable[[FlowRecord], bool]) -> FlowRecord | None:
    return next((f for f in flows if test(f)), None)


def _undecided(requests: Sequence[FlowRecord], replies: Sequence[FlowRecord]) -> EvidenceCheck:
    return EvidenceCheck(EvidenceState.NONE, f"{len(requests) + len(replies)} flow(s) of this probe, none of them "
                                             "deciding")


def _judge_dropped(requests: Sequence[FlowRecord], replies: Sequence[FlowRecord]) -> EvidenceCheck:
    reply = _first(replies, lambda f: f.verdict == FORWARDED)
    if reply is not None:
        return EvidenceCheck(EvidenceState.CONTRADICTED, f"the probe timed out, but Hubble shows a forwarded reply: "
                                                         f"{reply.summary()}")
    l7 = _first([*requests, *replies], is_l7)
    if l7 is not None:
        return EvidenceCheck(EvidenceState.CONTRADICTED, f"the probe timed out, but Cilium's proxy handled it: "
                                                         f"{l7.summary()}")
    drop = _first(requests, is_policy_drop)
    if drop is not None:
        return EvidenceCheck(EvidenceState.CONFIRMED, f"policy drop: {drop.summary()}", policy_drop=True)
    other = _first(requests, is_l3l4_drop)
    if other is not None:
        return EvidenceCheck(EvidenceState.CONTRADICTED, f"dropped, but not by policy ({other.drop_reason_desc}): "
                                                         f"{other.summary()}")
    return _undecided(requests, replies)


def _judge_allowed(requests: Sequence[FlowRecord], replies: Sequence[FlowRecord]) -> EvidenceCheck:
    drop = _first([*requests, *replies], is_l3l4_drop)
    if drop is not None:
        return EvidenceCheck(EvidenceState.CONTRADICTED, f"the probe was answered, but Hubble shows a drop: "
                                                         f"{drop.summary()}")
    denied = _first(requests, lambda f: is_l7(f) and f.verdict == DROPPED)
    if denied is not None:
        return EvidenceCheck(EvidenceState.CONTRADICTED, f"the probe was answered, but Cilium's proxy denied it: "
                                                         f"{denied.summary()}")
    reply = _first(replies, lambda f: f.verdict == FORWARDED)
    if reply is not None:
        return EvidenceCheck(EvidenceState.CONFIRMED, f"forwarded reply: {reply.summary()}")
    proxied = _first(requests, lambda f: is_l7(f) and f.verdict == FORWARDED)
    if proxied is not None:
        return EvidenceCheck(EvidenceState.CONFIRMED, f"forwarded by the proxy: {proxied.summary()}")
    return _undecided(requests, replies)


def _judge_denied(probe_kind: str, requests: Sequence[FlowRecord], replies: Sequence[FlowRecord]) -> EvidenceCheck:
    drop = _first([*requests, *replies], is_l3l4_drop)
    if drop is not None:
        return EvidenceCheck(EvidenceState.CONTRADICTED, f"the proxy's denial was seen, but Hubble shows the "
                                                         f"connection dropped: {drop.summary()}")
    if probe_kind == "http":
        answered = _first(replies, lambda f: f.http is not None and f.http.code not in (None, 403))
        if answered is not None:
            return EvidenceCheck(EvidenceState.CONTRADICTED, f"Cilium's 403 was seen, but Hubble shows another "
                                                             f"answer: {answered.summary()}")
        denial = (_first(requests, lambda f: f.http is not None and f.verdict == DROPPED)
                  or _first(replies, lambda f: f.http is not None and f.http.code == 403))
    else:
        passed = _first(requests, lambda f: f.dns is not None and f.verdict == FORWARDED)
        if passed is not None:
            return EvidenceCheck(EvidenceState.CONTRADICTED, f"the denial was seen, but Hubble shows the DNS proxy "
                                                             f"forwarding the query: {passed.summary()}")
        denial = _first(requests, lambda f: f.dns is not None and f.verdict == DROPPED)
    if denial is not None:
        return EvidenceCheck(EvidenceState.CONFIRMED, f"proxy denial: {denial.summary()}")
    return _undecided(requests, replies)
