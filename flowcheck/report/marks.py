"""How each verdict looks in a report, and how a mismatch is described -- one vocabulary for all formats.

Colours follow Hubble UI, which users already read: **green** for what went through (Hubble's
FORWARDED; our ``allowed``), **red** for what policy dropped at L3/L4 (Hubble's DROPPED; our
``dropped``), and **amber** for everything that is neither: ``l7-denied`` (the proxy answered 403 /
REFUSED -- a policy verdict, drawn solid amber) and ``unknown``, ``refused``, ``error`` (the model
could not decide, or the probe could not give a policy answer -- drawn amber with stripes in HTML,
because they are never a pass). Two cells say more than a verdict (``Shown``): **teal** ``L7: GET``
for a path allowed only through the L7 proxy, naming what it passes, and **grey** ``self`` for a
workload's own IP. Every mark also carries its word, so nothing depends on colour; a legend says
what a mark means as observed, or as the model predicts it when nothing was probed.

A cell is *mismatched* when intent and model disagree (``CheckedFlow.intent_mismatch``) or when the
cluster did something other than expected (``CheckedFlow.live_mismatch``); the table marks it
``!N`` and the mismatch list below the table explains entry N.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from flowcheck.report.records import CheckedFlow
from flowcheck.verdict import Verdict


class Shown(enum.StrEnum):
    """What a cell shows for one flow: its outcome, or one of the two things a bare outcome would hide.

    ``l7-filtered`` is an ``allowed`` path that goes through Cilium's L7 proxy, which passes only some
    requests (the cell names them); ``self`` is a workload reaching its own IP, which no policy
    governs -- shown, but not counted with the paths policy decides.
    """

    ALLOWED = "allowed"
    L7_FILTERED = "l7-filtered"
    DROPPED = "dropped"
    L7_DENIED = "l7-denied"
    UNKNOWN = "unknown"
    REFUSED = "refused"
    ERROR = "error"
    SELF = "self"


def shown(flow: CheckedFlow) -> Shown:
    """How a cell shows ``flow``: ``self`` for a workload's own IP (unless it mismatches: then what
    disagrees must show), ``l7-filtered`` for a port allowed only through the L7 proxy, else its outcome."""
    if flow.is_self and not flow.mismatch:
        return Shown.SELF
    if flow.outcome is Verdict.ALLOWED and flow.l7_passes and flow.request is None:
        return Shown.L7_FILTERED
    return Shown(flow.outcome.value)


def shown_text(flow: CheckedFlow) -> str:
    """The words a cell uses for ``flow``: ``allowed``, ``self``, ``L7: GET`` (what the proxy passes)."""
    kind = shown(flow)
    return f"{L7_PREFIX}{flow.l7_passes}" if kind is Shown.L7_FILTERED else kind.value


L7_PREFIX = "L7: "
"""How a cell of a path allowed only through the L7 proxy starts: ``L7: GET``, ``L7: dns *``."""


@dataclass(frozen=True, slots=True)
class Mark:
    """The presentation of one ``Shown``: its word, colour family, emoji (Markdown) and ANSI colour, and what it
    means -- as observed on a cluster (``meaning``) and as the model predicts it (``predicted``)."""

    word: str
    tone: str  # "green" | "red" | "amber" | "teal" | "grey"
    emoji: str
    ansi: str  # SGR parameters, e.g. "32" for green
    meaning: str
    predicted: str


MARKS: dict[Shown, Mark] = {
    Shown.ALLOWED: Mark("allowed", "green", "🟢", "32", "reached the server",
                        "the policies let it through (no L7 filter on the way)"),
    Shown.L7_FILTERED: Mark(f"{L7_PREFIX}…", "teal", "🔵", "36",
                            "reached the server through Cilium's L7 proxy, which passes only the requests named "
                            "(HTTP method and path, DNS name); others get HTTP 403 / DNS REFUSED",
                            "allowed into Cilium's L7 proxy, which passes only the requests named (HTTP method and "
                            "path, DNS name); others get HTTP 403 / DNS REFUSED"),
    Shown.DROPPED: Mark("dropped", "red", "🔴", "31", "dropped by policy at L3/L4 (client timed out)",
                        "the policies drop it at L3/L4 (a client would time out)"),
    Shown.L7_DENIED: Mark("l7-denied", "amber", "🟠", "33", "denied by the L7 proxy (HTTP 403 / DNS REFUSED)",
                          "the L7 proxy would deny the request (HTTP 403 / DNS REFUSED)"),
    Shown.UNKNOWN: Mark("unknown", "amber", "🟡", "33", "the model cannot decide (see its reasons)",
                        "the model cannot decide (see its reasons)"),
    Shown.REFUSED: Mark("refused", "amber", "🟡", "33", "connection refused: nothing listens (a set-up bug)",
                        "connection refused: nothing listens (a set-up bug)"),
    Shown.ERROR: Mark("error", "amber", "🟡", "33", "the probe itself failed", "the probe itself failed"),
    Shown.SELF: Mark("self", "grey", "⚪", "2", "a workload to its own IP: no policy applies; not counted",
                     "a workload to its own IP: no policy applies; not counted"),
}


def mark_of(verdict: Verdict) -> Mark:
    """The mark of a verdict (``allowed``, ``dropped``, ...)."""
    return MARKS[Shown(verdict.value)]


MISMATCH_MARK = "!"
"""Prefix of the mismatch reference in a cell (``dropped !2`` = mismatch 2 in the list below)."""

PREDICTED_MARK = "~"
"""Prefix of a cell the model predicted but nobody probed, in a run where other cells were probed."""

EMPTY_CELL = "-"
"""A source/destination pair no flow checked."""


def legend_meaning(kind: Shown, *, probed: bool) -> str:
    """What ``kind`` means in a table: as observed when the run probed (its ``~`` cells, only predicted, have
    a legend entry of their own), as the model predicts it when nothing was probed -- never "reached the
    server" for a table of predictions."""
    return MARKS[kind].meaning if probed else MARKS[kind].predicted


def cell_basis(probed: bool) -> str:
    """What the cells of a table show, for its legend."""
    return "the observed outcome where probed, else the model's verdict" if probed \
        else "the model's verdicts; nothing was probed"


def mismatch_kinds(flow: CheckedFlow) -> list[str]:
    """Plain-language statements of what disagrees, e.g. ``intent vs model: expected allowed, model dropped``."""
    kinds: list[str] = []
    if flow.intent_mismatch and flow.expected is not None:
        kinds.append(f"intent vs model: expected {flow.expected.value}, the model predicts {flow.model.value}")
    if flow.live_mismatch and flow.observed is not None:
        if flow.expected is not None:
            kinds.append(f"live vs expected: expected {flow.expected.value}, observed {flow.observed.value}")
        else:
            kinds.append(f"live vs model: the model predicts {flow.model.value}, observed {flow.observed.value}")
    return kinds


def expected_text(flow: CheckedFlow) -> str:
    """The stated intent, or ``(none stated)`` when the flow has none (a model plan)."""
    return "(none stated)" if flow.expected is None else flow.expected.value


def observed_text(flow: CheckedFlow) -> str:
    """``dropped (2 attempts)``, or ``not probed`` (+ why) when the flow was not probed."""
    if flow.observed is None:
        detail = flow.observed_detail
        if detail.startswith(("not probed", "not checked")):
            return detail  # it says so itself: "not probed: no Docker engine ..."
        return f"not probed ({detail})" if detail else "not probed"
    text = flow.observed.value
    extras = []
    if flow.attempts > 1:
        extras.append(f"{flow.attempts} attempts")
    if flow.observed_detail:
        extras.append(flow.observed_detail)
    if flow.probed_via:  # where: which probe pods, which placement (a path probed both ways has two records)
        nodes = f" (nodes {flow.source_node} -> {flow.destination_node})" if flow.source_node else ""
        extras.append(f"{flow.placement or 'probed'}: {flow.probed_via}{nodes}")
    return f"{text} ({'; '.join(extras)})" if extras else text
